"""codecpickle.convert: any readable source to a codecpickle file,
atomically, in memory bounded by about the largest array."""

from __future__ import annotations

import gzip
import json
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import joblib
import numpy as np
import pytest

import codecpickle
from tests.conftest import assert_same, unmapped

OBJ = {
    "big": np.arange(400_000, dtype=np.float64),
    "fortran": np.asfortranarray(np.arange(300_000, dtype=np.int32).reshape(500, 600)),
    "strided": np.arange(900_000.0)[::3],
    "dates": np.arange(200_000).astype("datetime64[ms]"),
    "objects": np.array(["x", 1, None], dtype=object),
    "small": np.arange(5),
    "meta": {"name": "model", "numbers": [1, 2.5]},
}
EXPECTED = {**OBJ, "strided": np.ascontiguousarray(OBJ["strided"])}


def _write_source(kind: str, path: Path) -> None:
    if kind.startswith("joblib"):
        joblib.dump(
            OBJ, path, compress={"joblib": 0, "joblib-zlib": 3, "joblib-lz4": ("lz4", 3)}[kind]
        )
    elif kind == "pickle-gzip":
        path.write_bytes(gzip.compress(pickle.dumps(OBJ, protocol=5)))
    elif kind == "pickle-4":
        path.write_bytes(pickle.dumps(OBJ, protocol=4))
    else:
        codecpickle.dump(OBJ, path, compress=None if kind == "codecpickle" else "lz4")


SOURCES = [
    "joblib",
    "joblib-zlib",
    "joblib-lz4",
    "pickle-gzip",
    "pickle-4",
    "codecpickle",
    "codecpickle-lz4",
]


@pytest.mark.parametrize("kind", SOURCES)
@pytest.mark.parametrize("compress", [None, "zstd:3"])
def test_every_source_converts(tmp_path, kind, compress):
    source = tmp_path / "source"
    _write_source(kind, source)
    target = tmp_path / "target.cpkl"
    codecpickle.convert(source, target, compress=compress)
    assert_same(codecpickle.load(target), EXPECTED)
    mapped = codecpickle.load(target, mmap_mode="r") if compress is None else None
    if mapped is not None:
        assert type(mapped["big"]) is np.memmap
        assert_same(unmapped(mapped), EXPECTED)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["source", "target.cpkl"]


def test_file_object_source_and_name_inferred_codec(tmp_path):
    source = tmp_path / "source.joblib"
    joblib.dump(OBJ, source, compress=3)
    with open(source, "rb") as file:
        codecpickle.convert(file, tmp_path / "target.cpkl.lz4")
    assert_same(codecpickle.load(tmp_path / "target.cpkl.lz4"), EXPECTED)
    with pytest.raises(codecpickle.InvalidOptionError, match="cpkl"):
        codecpickle.convert(source, tmp_path / "target.gz")


class Custom:
    pass


def test_safe_convert_refuses_what_is_not_admitted(tmp_path):
    source, target = tmp_path / "source.joblib", tmp_path / "target.cpkl"
    target.write_bytes(b"previous")
    joblib.dump({"a": np.arange(3), "c": Custom()}, source)
    with pytest.raises(codecpickle.ForbiddenGlobalError, match=r"test_convert\.Custom"):
        codecpickle.convert(source, target, safe=True)
    assert target.read_bytes() == b"previous"
    codecpickle.convert(source, target, allow=[Custom])
    assert type(codecpickle.load(target)["c"]) is Custom


def test_a_damaged_source_leaves_the_target_and_no_temporary_file(tmp_path):
    source, target = tmp_path / "source.joblib", tmp_path / "target.cpkl"
    joblib.dump(OBJ, source, compress=3)
    source.write_bytes(source.read_bytes()[:-100])
    target.write_bytes(b"previous")
    with pytest.raises(codecpickle.FileFormatError):
        codecpickle.convert(source, target)
    assert target.read_bytes() == b"previous"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["source.joblib", "target.cpkl"]


def test_destination_must_be_a_path(tmp_path):
    source = tmp_path / "source.pkl"
    source.write_bytes(pickle.dumps(1))
    with open(tmp_path / "x", "wb") as file, pytest.raises(codecpickle.InvalidOptionError):
        codecpickle.convert(source, file)


MiB = 1 << 20
ARRAYS, ARRAY_MIB = 6, 32

_MEASURE = textwrap.dedent(
    """
    import json, sys
    import codecpickle

    def rss(field):
        for line in open("/proc/self/status"):
            if line.startswith(field):
                return int(line.split()[1]) * 1024

    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = rss("VmRSS:")
    codecpickle.convert(sys.argv[1], sys.argv[2], compress=json.loads(sys.argv[3]))
    print(json.dumps({"extra": rss("VmHWM:") - before}))
    """
)


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize(
    ("kind", "compress"),
    # Not plain pickles: their arrays are bytes inside the opcode stream,
    # kept by the unpickler's memo until the end (docs/migrating-from-joblib.md).
    [("joblib-zlib", None), ("joblib", "zstd"), ("codecpickle", "lz4")],
)
def test_peak_memory_is_about_the_largest_array(tmp_path, kind, compress):
    count = ARRAY_MIB * MiB // 8
    obj = {f"a{i}": np.arange(i * count, (i + 1) * count, dtype=np.float64) for i in range(ARRAYS)}
    source = tmp_path / "source"
    if kind == "codecpickle":
        codecpickle.dump(obj, source)
    else:
        joblib.dump(obj, source, compress=3 if kind == "joblib-zlib" else 0)
    del obj
    target = tmp_path / "target.cpkl"
    result = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(source), str(target), json.dumps(compress)],
        capture_output=True,
        text=True,
        check=True,
    )
    extra = json.loads(result.stdout)["extra"]
    total = ARRAYS * ARRAY_MIB * MiB
    # One array being built, plus chunk buffers and the codec's state;
    # far from the whole file.
    assert extra <= ARRAY_MIB * MiB + 48 * MiB, (extra / MiB, kind)
    assert extra < total / 2
    loaded = codecpickle.load(target, mmap_mode="r" if compress is None else None)
    assert float(loaded["a5"][-1]) == ARRAYS * count - 1
