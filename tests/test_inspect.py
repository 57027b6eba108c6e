"""codecpickle.inspect / untrusted_types, and ForbiddenGlobalError listing
every refused global: nothing from the file runs or is imported."""

from __future__ import annotations

import fractions
import gzip
import io
import json
import os
import pathlib
import pickle
import signal
import struct
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import codecpickle
from codecpickle import _format as fmt
from codecpickle import _inspect, _reader
from codecpickle._index import read_index
from codecpickle._scan import ARRAY_CONSTRUCTORS
from tests.test_fuzz import FUZZ, SAMPLES, NonSeekable, Sample, hang_guard  # noqa: F401
from tests.test_safe import container


class Point:
    """A user class, importable from this test module."""

    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)


POINT = f"{Point.__module__}.Point"

ARRAYS = {
    "c": np.arange(300_000, dtype=np.float64),
    "f": np.asfortranarray(np.arange(60_000, dtype=">i4").reshape(200, 300)),
    "small": np.arange(10, dtype=np.int16),
    "point": Point(1, 2),
}


def _dump(obj: Any, path: Path, compress: Any = "zstd", **options: Any) -> Path:
    codecpickle.dump(obj, path, compress=compress, **options)
    return path


@pytest.mark.parametrize("compress", [None, "zstd", "lz4"])
def test_arrays_sizes_and_globals(tmp_path: Path, compress: Any) -> None:
    path = _dump(ARRAYS, tmp_path / "a.cpkl", compress)
    found = codecpickle.inspect(path)
    assert found.path == str(path)
    (obj,) = found.objects
    assert (obj.offset, obj.format_version, obj.pickle_protocol) == (0, fmt.VERSION, 5)
    assert obj.codec == (compress or "none")
    assert obj.codec_params == ({} if compress is None else obj.header["params"])
    assert obj.stored_bytes == path.stat().st_size
    assert obj.raw_bytes == obj.opcode_raw_bytes + obj.payload_raw_bytes
    assert obj.ratio == pytest.approx(obj.raw_bytes / obj.stored_bytes)
    assert obj.payload_raw_bytes == sum(p.raw_bytes for p in obj.payloads)
    shapes = {(a.shape, a.dtype, a.order, a.raw_bytes) for a in obj.arrays}
    assert shapes == {
        ((300_000,), "<f8", "C", 2_400_000),
        ((200, 300), ">i4", "F", 240_000),
        ((10,), "<i2", "C", 20),
    }
    for array in obj.arrays:
        if array.payload is None:  # in-band: small arrays of compressed streams
            assert compress is not None
            assert array.stored_bytes is None
        else:
            assert array.stored_bytes == obj.payloads[array.payload].stored_bytes
    assert [(g.name, g.allowed) for g in obj.globals][-1] == (POINT, False)
    assert all(g.allowed for g in obj.globals[:-1])
    assert {a.constructor for a in obj.arrays} <= set(ARRAY_CONSTRUCTORS)
    assert found.untrusted == [POINT]
    assert obj.manifest == read_index(path).manifest
    assert isinstance(obj.manifest, dict)


def test_every_object_of_a_multi_object_stream(tmp_path: Path) -> None:
    path = tmp_path / "many.cpkl"
    with open(path, "wb") as out:
        for obj, compress in (([1, 2], None), (ARRAYS, "zstd"), (fractions.Fraction(1, 3), "lz4")):
            codecpickle.dump(obj, out, compress=compress)
    found = codecpickle.inspect(path)
    assert [o.codec for o in found.objects] == ["none", "zstd", "lz4"]
    assert found.objects[1].offset == found.objects[0].stored_bytes
    assert sum(o.stored_bytes for o in found.objects) == path.stat().st_size
    assert found.untrusted == sorted(["fractions.Fraction", POINT])
    data = path.read_bytes()
    via_pipe = codecpickle.inspect(NonSeekable(data))
    via_bytes = codecpickle.inspect(data)
    assert via_pipe.to_dict() == via_bytes.to_dict() == {**found.to_dict(), "path": None}
    with open(path, "rb") as handle:
        assert codecpickle.inspect(handle).to_dict() == via_bytes.to_dict()
        assert handle.tell() == len(data)


def test_file_objects_that_cannot_seek_from_the_end(tmp_path: Path) -> None:
    path = tmp_path / "a.cpkl.gz"
    with gzip.open(path, "wb") as out:
        codecpickle.dump(ARRAYS, out)
        codecpickle.dump([1], out)
    with gzip.open(path, "rb") as handle:
        found = codecpickle.inspect(handle)
    assert [len(o.arrays) for o in found.objects] == [3, 0]


def test_payload_data_is_neither_read_nor_decoded(tmp_path: Path, monkeypatch: Any) -> None:
    data = np.random.default_rng(0).integers(0, 4, 8 << 20, dtype=np.uint8)
    path = _dump({"d": data}, tmp_path / "big.cpkl", "zlib", chunk_size=1 << 16)
    decoded = []
    original = _reader._decode
    for module in (_reader, _inspect):  # the read-through and the indexed paths
        monkeypatch.setattr(
            module, "_decode", lambda codec, stored, out, offset: decoded.append(out.nbytes)
            or original(codec, stored, out, offset)
        )

    class Counting(io.FileIO):
        read_bytes = 0

        def readinto(self, buffer: Any) -> int:
            count = super().readinto(buffer)
            Counting.read_bytes += count or 0
            return count or 0

    with io.BufferedReader(Counting(path, "rb")) as handle:
        (obj,) = codecpickle.inspect(handle).objects
    assert obj.payloads[0].chunks == 128
    assert sum(decoded) <= obj.opcode_raw_bytes  # at most the opcode chunk, no payload chunk
    # The trailer's index, the opcode chunk, and the buffered reader's blocks.
    assert Counting.read_bytes < 64 << 10, Counting.read_bytes
    decoded.clear()
    codecpickle.inspect(NonSeekable(path.read_bytes()))
    assert sum(decoded) <= obj.opcode_raw_bytes  # a pipe is read through, still not decoded


def test_urls() -> None:
    pytest.importorskip("fsspec")
    url = "memory://inspect/a.cpkl"
    codecpickle.dump(ARRAYS, url, compress="zstd")
    found = codecpickle.inspect(url)
    assert found.path == url
    assert found.untrusted == [POINT]
    assert codecpickle.untrusted_types(url) == [POINT]
    assert codecpickle.load(url, allow=codecpickle.untrusted_types(url))["point"] == Point(1, 2)
    with pytest.raises(codecpickle.InvalidOptionError):
        codecpickle.inspect(b"x", storage_options={"anon": True})


GOLDEN = Path(__file__).parent / "data"


@pytest.mark.parametrize("version", [1, 2])
def test_golden_files(version: int) -> None:
    for path in sorted((GOLDEN / f"v{version}").glob("*.cpkl")):
        found = codecpickle.inspect(path)
        via_pipe = codecpickle.inspect(NonSeekable(path.read_bytes()))
        assert via_pipe.to_dict() == {**found.to_dict(), "path": None}, path.name
        (obj,) = found.objects
        assert obj.format_version == version
        assert obj.codec == path.stem.rpartition("-")[2]  # filters-zstd.cpkl: zstd
        assert (obj.manifest is None) == (version == 1)
        assert obj.arrays, path.name
        assert obj.stored_bytes == path.stat().st_size
        if version == 1:  # the writer's first array form
            assert {a.constructor for a in obj.arrays if a.payload is not None} == {
                "numpy.ndarray"
            }
            # Arrays of objects went through numpy's own reduction.
            assert {a.constructor for a in obj.arrays if a.payload is None} <= {
                "numpy.ndarray", "numpy._core.multiarray._reconstruct"
            }


def test_to_dict_is_json_and_stable(tmp_path: Path) -> None:
    found = codecpickle.inspect(_dump(ARRAYS, tmp_path / "a.cpkl"))
    document = json.loads(json.dumps(found.to_dict()))
    assert set(document) == {"schema", "path", "objects"}
    assert document["schema"] == 1
    (obj,) = document["objects"]
    assert set(obj) == {
        "offset", "format_version", "codec", "codec_params", "chunk_size", "header",
        "stored_bytes", "raw_bytes", "opcode_raw_bytes", "opcode_stored_bytes",
        "payload_raw_bytes", "payload_stored_bytes", "ratio", "pickle_protocol",
        "payloads", "arrays", "globals", "extension_codes", "unresolved_globals", "manifest",
        "format",
    }
    assert obj["format"] == "codecpickle"
    assert set(obj["arrays"][0]) == {
        "shape", "dtype", "order", "raw_bytes", "stored_bytes", "payload", "constructor"
    }
    assert set(obj["globals"][0]) == {"name", "module", "qualname", "allowed", "opcode", "count"}
    assert set(obj["payloads"][0]) == {
        "index", "offset", "kind", "raw_bytes", "stored_bytes", "chunks"
    }
    text = str(found)
    assert "codec zstd (level=3)" in text
    assert f"REFUSED {POINT}" in text
    assert "<f8 (300000,) order C" in text


def test_allow_marks_globals_allowed(tmp_path: Path) -> None:
    path = _dump(ARRAYS, tmp_path / "a.cpkl")
    assert codecpickle.untrusted_types(path, allow=[Point]) == []
    assert codecpickle.untrusted_types(path, allow=[POINT]) == []
    (obj,) = codecpickle.inspect(path, allow=[Point]).objects
    assert all(g.allowed for g in obj.globals)
    with pytest.raises(codecpickle.InvalidOptionError):
        codecpickle.inspect(path, allow=POINT)
    with pytest.raises(codecpickle.InvalidOptionError):
        codecpickle.inspect(12)  # type: ignore[arg-type]


def test_untrusted_types_then_load_is_one_reviewed_step(tmp_path: Path) -> None:
    obj = {"points": [Point(1, 2), Point(3, 4)], "frac": fractions.Fraction(2, 3)}
    path = _dump(obj, tmp_path / "p.cpkl")
    untrusted = codecpickle.untrusted_types(path)
    assert untrusted == sorted(["fractions.Fraction", POINT])
    with pytest.raises(codecpickle.ForbiddenGlobalError) as refused:
        codecpickle.load(path, safe=True)
    assert sorted(refused.value.names) == untrusted
    assert codecpickle.load(path, allow=untrusted) == obj


# -- nothing from the file is imported or run ----------------------------------------

_MODULE = '''
import pathlib
pathlib.Path({marker!r}).write_text("imported")

class Gadget:
    def __init__(self, n):
        self.n = n

    def __reduce__(self):
        return (Gadget, (self.n,))
'''


def test_classes_from_unimportable_and_side_effect_modules(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "sideeffect_mod_for_inspect.py").write_text(_MODULE.format(marker=str(marker)))
    target = tmp_path / "g.cpkl"
    script = textwrap.dedent(
        f"""
        import sys, codecpickle
        sys.path.insert(0, {str(package)!r})
        import sideeffect_mod_for_inspect as m
        codecpickle.dump([m.Gadget(1), m.Gadget(2)], {str(target)!r})
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True)
    assert marker.exists()
    marker.unlink()
    # Here the module is not importable at all; with it on sys.path, its
    # import would write the marker.  Neither matters: nothing is imported.
    for on_path in (False, True):
        if on_path:
            sys.path.insert(0, str(package))
        try:
            found = codecpickle.inspect(target)
            assert found.untrusted == ["sideeffect_mod_for_inspect.Gadget"]
            assert codecpickle.untrusted_types(target) == found.untrusted
            with pytest.raises(codecpickle.ForbiddenGlobalError) as refused:
                codecpickle.load(target, safe=True)
            assert refused.value.names == ("sideeffect_mod_for_inspect.Gadget",)
        finally:
            if on_path:
                sys.path.remove(str(package))
        assert not marker.exists()
        assert "sideeffect_mod_for_inspect" not in sys.modules


# -- ForbiddenGlobalError lists every refused global --------------------------------

REFUSED = [
    fractions.Fraction(1, 3),
    np.arange(200_000.0),  # a payload record between the refused globals
    pathlib.PurePosixPath("/a"),
    {"again": fractions.Fraction(2, 3), "win": pathlib.PureWindowsPath("c:/x")},
    Point(5, 6),
]
EXPECTED = [
    "fractions.Fraction",
    "pathlib.PurePosixPath",
    "pathlib.PureWindowsPath",  # its module string is fetched from the memo
    POINT,
]


@pytest.mark.parametrize("compress", [None, "zstd"])
@pytest.mark.parametrize("loader", ["loads", "BytesIO", "path", "stream"])
def test_every_refused_global_is_listed(loader: str, compress: Any) -> None:
    data = codecpickle.dumps(REFUSED, compress=compress)
    with pytest.raises(codecpickle.ForbiddenGlobalError) as refused:
        _restricted(loader, data)
    assert list(refused.value.names) == EXPECTED
    for name in EXPECTED:
        assert repr(name) in str(refused.value)
    assert "4 globals" in str(refused.value)


def _restricted(loader: str, data: bytes) -> Any:
    if loader == "loads":
        return codecpickle.loads(data, safe=True)
    if loader == "BytesIO":
        return codecpickle.load(io.BytesIO(data), safe=True)
    if loader == "stream":
        return codecpickle.load(NonSeekable(data), safe=True)
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"refused-{os.getpid()}.cpkl"
    path.write_bytes(data)
    try:
        return codecpickle.load(path, safe=True)
    finally:
        path.unlink()


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_every_refused_global_in_any_protocol(protocol: int) -> None:
    # INST and OBJ (protocols 0 and 1), GLOBAL, STACK_GLOBAL.
    objects = [fractions.Fraction(1, 3), pathlib.PurePosixPath("/a"), Point(1, 2)]
    data = container(pickle.dumps(objects, protocol=protocol))
    with pytest.raises(codecpickle.ForbiddenGlobalError) as refused:
        codecpickle.loads(data, safe=True)
    names = set(refused.value.names)
    assert {"fractions.Fraction", "pathlib.PurePosixPath", POINT} <= names
    assert names == set(codecpickle.untrusted_types(data))


def test_first_refusal_in_each_opcode_then_more() -> None:
    tail = b"cos\nsystem\n0cfractions\nFraction\n0N."
    streams = {
        "GLOBAL": b"(cpathlib\nPath\n0" + tail[:-2] + b"1N.",
        "INST": b"(S'x'\nipathlib\nPath\n0" + tail,
        "STACK_GLOBAL": b"\x80\x04\x8c\x07pathlib\x8c\x04Path\x930" + tail,
        "getattr": b"\x80\x04cbuiltins\ngetattr\nccollections\nCounter\n\x8c\x04copy\x86R0" + tail,
        "getattr OBJ": b"(cbuiltins\ngetattr\nccollections\nCounter\nS'copy'\no0" + tail,
    }
    for opcode, opcodes in streams.items():
        with pytest.raises(codecpickle.ForbiddenGlobalError) as refused:
            codecpickle.loads(container(opcodes), safe=True)
        first = "collections.Counter.copy" if "getattr" in opcode else "pathlib.Path"
        assert refused.value.names == (first, "os.system", "fractions.Fraction"), opcode


def test_nothing_refused_runs_and_damage_after_the_refusal_is_noted(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    opcodes = (
        b"cfractions\nFraction\n0cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR"
    )
    with pytest.raises(codecpickle.ForbiddenGlobalError) as refused:
        codecpickle.loads(container(opcodes + b"."), safe=True)
    assert refused.value.names == ("fractions.Fraction", "os.system")
    with pytest.raises(codecpickle.ForbiddenGlobalError) as refused:
        codecpickle.loads(container(opcodes + b"\xff."), safe=True)
    assert refused.value.names == ("fractions.Fraction", "os.system")
    assert "could not be scanned" in str(refused.value)
    assert not marker.exists()


def test_foreign_pickles_list_every_refused_global_too(tmp_path: Path) -> None:
    objects = [fractions.Fraction(1, 3), np.arange(5), pathlib.PurePosixPath("/a")]
    for protocol in (2, 5):
        with pytest.raises(codecpickle.ForbiddenGlobalError) as refused:
            codecpickle.load(io.BytesIO(pickle.dumps(objects, protocol)), safe=True)
        assert refused.value.names == ("fractions.Fraction", "pathlib.PurePosixPath")
    joblib = pytest.importorskip("joblib")
    path = tmp_path / "j.pkl"
    # joblib's own wrapper globals are admitted, and not listed.
    joblib.dump({"a": np.arange(100), "f": objects[0], "p": objects[2]}, path)
    with pytest.raises(codecpickle.ForbiddenGlobalError) as refused:
        codecpickle.load(path, safe=True)
    assert refused.value.names == ("fractions.Fraction", "pathlib.PurePosixPath")
    # An array after the refusal: its bytes sit inside the pickle stream,
    # and the scan steps over them (tests/test_inspect_foreign.py has more).
    joblib.dump({"f": objects[0], "a": np.arange(100), "p": objects[2]}, path)
    with pytest.raises(codecpickle.ForbiddenGlobalError) as refused:
        codecpickle.load(path, safe=True)
    assert refused.value.names == ("fractions.Fraction", "pathlib.PurePosixPath")
    assert "could not be scanned" not in str(refused.value)


def test_error_constructor_is_backward_compatible() -> None:
    plain = codecpickle.ForbiddenGlobalError("no")
    assert plain.args == ("no",)
    assert plain.names == ()
    named = codecpickle.ForbiddenGlobalError("no", names=["a.b"])
    again = pickle.loads(pickle.dumps(named))
    assert (again.args, again.names) == (("no",), ("a.b",))
    assert isinstance(again, pickle.UnpicklingError)


# -- damaged and hostile containers ------------------------------------------------


def _inspect_or_fail(data: bytes) -> None:
    for make in (lambda: data, lambda: io.BytesIO(data), lambda: NonSeekable(data)):
        signal.alarm(20)
        try:
            codecpickle.inspect(make())  # type: ignore[arg-type]
        except codecpickle.CodecPickleError:
            pass
        finally:
            signal.alarm(0)


samples = st.sampled_from(SAMPLES)


@FUZZ
@given(sample=samples, data=st.data())
def test_damaged_containers(sample: Sample, data: st.DataObject) -> None:
    mutated = bytearray(sample.data)
    operation = data.draw(st.sampled_from(["flip", "truncate", "size"]))
    if operation == "truncate":
        del mutated[data.draw(st.integers(0, len(mutated) - 1)) :]
    elif operation == "flip":
        mutated[data.draw(st.integers(0, len(mutated) - 1))] ^= 1 << data.draw(st.integers(0, 7))
    else:
        offset, _, kind = data.draw(st.sampled_from(sample.records))
        field = 4 if kind in (2, 3, 0) else data.draw(st.sampled_from([2, 6]))
        layout = "<Q" if kind in (2, 3) else "<I"
        value = data.draw(st.sampled_from([0, 1, 2**31, 2**32 - 1]) | st.integers(0, 2**32 - 1))
        struct.pack_into(layout, mutated, offset + field, value)
    _inspect_or_fail(bytes(mutated))


def test_genuine_samples_inspect() -> None:
    for sample in SAMPLES:
        found = codecpickle.inspect(sample.data)
        assert found.objects[0].stored_bytes == len(sample.data)
