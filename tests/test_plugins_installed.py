"""The two plugins in plugins/, installed: end to end across processes.

CI installs both (``pip install -e . -e plugins/codecpickle-brotli -e
plugins/codecpickle-blosc2``); without them this module is skipped.  Each
test writes a file here and reads it in a fresh interpreter, which finds the
codec through its entry point, or, with the plugin hidden, must explain
what to install.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

codecpickle_brotli = pytest.importorskip(
    "codecpickle_brotli", reason="plugins/codecpickle-brotli is not installed"
)
codecpickle_blosc2 = pytest.importorskip(
    "codecpickle_blosc2", reason="plugins/codecpickle-blosc2 is not installed"
)

import codecpickle  # noqa: E402  (after the skips, on purpose)

# Prints a digest of what a loaded object holds, so that two processes can
# compare objects without pickling them to each other.
DIGEST = """
import hashlib, json
import numpy as np

def digest(obj):
    out = {}
    for key, value in sorted(obj.items()):
        if isinstance(value, np.ndarray):
            out[key] = [str(value.dtype), list(value.shape), bool(value.flags.f_contiguous),
                        hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()]
        else:
            out[key] = repr(value)
    return out
"""

LOAD_AND_DIGEST = DIGEST + """
import sys, codecpickle
print(json.dumps(digest(codecpickle.load(sys.argv[1]))))
"""

# Hides codecpickle_brotli from the import system: the entry point is still
# installed, but its module cannot be imported (like a missing dependency).
BLOCK_IMPORT = """
import sys

class BlockBrotliPlugin:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "codecpickle_brotli":
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)")
        return None

sys.meta_path.insert(0, BlockBrotliPlugin())
"""

# Also hides the entry point: to importlib.metadata the plugin is not installed.
HIDE_ENTRY_POINT = BLOCK_IMPORT + """
import importlib.metadata as metadata

_entry_points = metadata.entry_points

def entry_points(**selection):
    found = _entry_points(**selection)
    return metadata.EntryPoints(ep for ep in found if ep.name != "brotli")

metadata.entry_points = entry_points
"""

REPORT_LOAD_ERROR = """
import json, sys, codecpickle
try:
    codecpickle.load(sys.argv[1])
except Exception as exc:
    cause = exc.__cause__
    print(json.dumps({
        "type": type(exc).__name__,
        "message": str(exc),
        "cause": None if cause is None else type(cause).__name__,
        "is_unknown_codec": isinstance(exc, codecpickle.UnknownCodecError),
    }))
else:
    print(json.dumps({"type": None}))
"""


def sample_object() -> dict[str, Any]:
    smooth = np.sin(np.linspace(0, 100, 2_000_000)).astype(np.float32)
    return {
        "smooth": smooth,
        "ints": np.arange(1_000_000, dtype=np.int64),
        "fortran": np.asfortranarray(np.linspace(0, 1, 600 * 400).reshape(600, 400)),
        "meta": {"model": "ridge", "alphas": [0.1, 1.0, 10.0], "fitted": True},
    }


def run_python(script: str, *args: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout)


def local_digest(obj: dict[str, Any]) -> dict[str, Any]:
    namespace: dict[str, Any] = {"hashlib": hashlib, "json": json, "np": np}
    exec(DIGEST, namespace)
    return json.loads(json.dumps(namespace["digest"](obj)))


@pytest.mark.parametrize(
    "compress",
    [
        ("brotli", 7),
        codecpickle_brotli.BrotliCodec(level=3, lgwin=18),
        "blosc2",
        codecpickle_blosc2.Blosc2Codec(level=9, codec="lz4", shuffle="bitshuffle"),
    ],
    ids=["brotli-7", "brotli-lgwin18", "blosc2", "blosc2-lz4-bitshuffle"],
)
def test_dump_here_load_in_a_fresh_process(compress: object, tmp_path: Path) -> None:
    obj = sample_object()
    path = tmp_path / "object.cpkl"
    codecpickle.dump(obj, path, compress=compress)
    assert run_python(LOAD_AND_DIGEST, str(path)) == local_digest(obj)


def test_dumps_records_the_plugin_distribution(tmp_path: Path) -> None:
    data = codecpickle.dumps(sample_object(), compress="brotli")
    assert b"codecpickle-brotli" in data[:4096]


def test_load_where_the_plugin_fails_to_import(tmp_path: Path) -> None:
    path = tmp_path / "brotli.cpkl"
    codecpickle.dump(sample_object(), path, compress=("brotli", 5))
    report = run_python(BLOCK_IMPORT + REPORT_LOAD_ERROR, str(path))
    assert report["type"] == "CodecUnavailableError"
    assert report["is_unknown_codec"]
    assert report["cause"] == "ModuleNotFoundError"
    assert "'brotli'" in report["message"]
    assert "codecpickle-brotli 0.1.0" in report["message"]
    assert "codecpickle_brotli" in report["message"]


def test_load_where_the_plugin_is_not_installed(tmp_path: Path) -> None:
    path = tmp_path / "brotli.cpkl"
    codecpickle.dump(sample_object(), path, compress=("brotli", 5))
    report = run_python(HIDE_ENTRY_POINT + REPORT_LOAD_ERROR, str(path))
    assert report["type"] == "UnknownCodecError"
    message = report["message"]
    assert "'brotli'" in message
    assert "not installed" in message
    assert "'codecpickle.codecs'" in message
    assert "pip install codecpickle-brotli" in message


def test_other_codecs_load_while_a_plugin_is_broken(tmp_path: Path) -> None:
    obj = sample_object()
    path = tmp_path / "zstd.cpkl"
    codecpickle.dump(obj, path, compress=("zstd", 3))
    assert run_python(BLOCK_IMPORT + LOAD_AND_DIGEST, str(path)) == local_digest(obj)


def test_available_codecs_lists_both_plugins() -> None:
    infos = codecpickle.available_codecs()
    assert list(infos)[:6] == ["zlib", "gzip", "bz2", "lzma", "lz4", "zstd"]
    for name, distribution in (("brotli", "codecpickle-brotli"), ("blosc2", "codecpickle-blosc2")):
        assert infos[name] == codecpickle.CodecInfo(name, distribution, "0.1.0", True, None)
