"""``inspect``/``untrusted_types`` on the other files ``load`` reads: plain
pickles (every protocol, bare and compressed) and joblib files (every
version of tests/data/joblib, compressed or not), and the complete list of
refused globals a restricted load of a joblib file gives."""

from __future__ import annotations

import bz2
import collections
import contextlib
import fractions
import gzip
import io
import json
import lzma
import pathlib
import pickle
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import lz4.frame
import numpy as np
import pytest
import zstandard

import codecpickle
from codecpickle._foreign._joblib import WRAPPER_NAMES
from codecpickle._scan import JOBLIB_WRAPPERS
from tests.test_fuzz import NonSeekable

DATA = Path(__file__).parent / "data" / "joblib"
GOLDEN = sorted(DATA.glob("joblib-*.joblib"))

COMPRESSORS = {
    "none": lambda data: data,
    "gzip": gzip.compress,
    "zlib": zlib.compress,
    "bz2": bz2.compress,
    "xz": lzma.compress,
    "lzma": lambda data: lzma.compress(data, format=lzma.FORMAT_ALONE),
    "zstd": lambda data: zstandard.ZstdCompressor().compress(data),
    "lz4": lz4.frame.compress,
}

ARRAYS = {
    "c": np.arange(12, dtype=np.float32).reshape(3, 4),
    "f": np.asfortranarray(np.arange(60, dtype=">i4").reshape(6, 10)),
    "records": np.array([(1, 2.0)], dtype=[("a", "<i4"), ("b", "<f8")]),
    "dates": np.arange(4).astype("datetime64[ms]"),
}
FORBIDDEN = {
    "path": pathlib.PurePosixPath("/a"),
    "fraction": fractions.Fraction(1, 3),
    "user_dict": collections.UserDict({"k": 1}),
}
FORBIDDEN_NAMES = ["collections.UserDict", "fractions.Fraction", "pathlib.PurePosixPath"]


def test_the_scanner_and_the_loader_know_the_same_wrapper():
    assert JOBLIB_WRAPPERS == WRAPPER_NAMES


def _described(array: np.ndarray) -> tuple[tuple[int, ...], str, str]:
    order = "F" if array.flags.f_contiguous and not array.flags.c_contiguous else "C"
    return array.shape, array.dtype.str, order


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize("compress", sorted(COMPRESSORS))
def test_plain_pickles_of_every_protocol_and_compression(protocol: int, compress: str):
    obj = {**ARRAYS, **FORBIDDEN}
    data = COMPRESSORS[compress](pickle.dumps(obj, protocol=protocol))
    found = codecpickle.inspect(data)
    (info,) = found.objects
    assert info.format == "pickle"
    assert info.format_version == 0
    assert info.codec == compress
    assert info.pickle_protocol == (protocol if protocol >= 2 else None)
    assert info.stored_bytes == len(data)
    # Protocols 0-1 also name copyreg's helpers for these classes.
    assert set(FORBIDDEN_NAMES) <= set(found.untrusted)
    assert codecpickle.untrusted_types(data) == found.untrusted
    # The arrays numpy's own reductions describe, each with its layout.
    scanned = sorted((a.shape, a.dtype, a.order) for a in info.arrays)
    expected = sorted(_described(a) for a in ARRAYS.values())
    assert [(s, o) for s, _, o in scanned] == [(s, o) for s, _, o in expected]
    assert {d.replace("|", "") for _, d, _ in scanned} >= {"<f4", ">i4", "<M8[ms]"}
    assert all(a.raw_bytes == ARRAYS_BY_SHAPE[a.shape].nbytes for a in info.arrays)
    # What inspect says is what a restricted load refuses, and allows.
    with pytest.raises(codecpickle.ForbiddenGlobalError) as refused:
        codecpickle.loads(data, safe=True)
    assert sorted(refused.value.names) == found.untrusted
    loaded = codecpickle.loads(data, allow=found.untrusted)
    assert loaded["fraction"] == FORBIDDEN["fraction"]


ARRAYS_BY_SHAPE = {array.shape: array for array in ARRAYS.values()}


def _walk_arrays(obj: Any) -> list[np.ndarray]:
    if isinstance(obj, np.ndarray):
        return [obj]
    if isinstance(obj, dict):
        return [a for value in obj.values() for a in _walk_arrays(value)]
    if isinstance(obj, list | tuple):
        return [a for value in obj for a in _walk_arrays(value)]
    return []


@pytest.mark.parametrize("path", GOLDEN, ids=lambda path: path.name)
def test_joblib_golden_files_of_every_version(path: Path):
    found = codecpickle.inspect(path)
    (info,) = found.objects
    assert info.format == "joblib"
    compress = path.stem.rpartition("-")[2]
    assert info.codec == {"none": "none", "xz": "xz", "lzma": "lzma"}.get(compress, compress)
    # Every global is one a restricted load admits (the files load safely).
    assert found.untrusted == []
    assert any(g.name in WRAPPER_NAMES and g.allowed for g in info.globals)
    # Every array joblib wrapped is listed with its shape, dtype and order.
    loaded = codecpickle.load(path, safe=True)
    expected = sorted(
        (a.shape, a.dtype.str.replace("|", "")) for a in _walk_arrays(loaded)
    )
    scanned = sorted((a.shape, a.dtype.replace("|", "").split(" ")[0]) for a in info.arrays)
    assert [s for s, _ in scanned] == [s for s, _ in expected]
    plain = [a for a in info.arrays if not a.dtype.endswith("O8")]
    assert sum(a.raw_bytes for a in plain) <= info.payload_raw_bytes
    assert info.opcode_raw_bytes + info.payload_raw_bytes == info.raw_bytes


JOBLIB_COMPRESS = [0, 3, ("zlib", 3), ("gzip", 1), ("bz2", 1), ("xz", 1), ("lzma", 1), ("lz4", 1)]


def _joblib_file(tmp_path: Path, obj: Any, compress: Any) -> Path:
    joblib = pytest.importorskip("joblib")
    path = tmp_path / "file.joblib"
    joblib.dump(obj, path, compress=compress)
    return path


@pytest.mark.parametrize("compress", JOBLIB_COMPRESS, ids=str)
def test_joblib_files_with_several_forbidden_classes(tmp_path: Path, compress: Any):
    # Forbidden classes before, between and after large arrays, and inside
    # an array of objects (joblib writes an inner pickle for it).
    obj = {
        "path": FORBIDDEN["path"],
        "big": np.arange(300_000.0),
        "objects": np.array([FORBIDDEN["fraction"], None], dtype=object),
        "fortran": np.asfortranarray(np.ones((300, 200), dtype=np.int16)),
        "user_dict": FORBIDDEN["user_dict"],
        "after": np.zeros(50_000),
    }
    path = _joblib_file(tmp_path, obj, compress)
    data = path.read_bytes()
    found = codecpickle.inspect(path)
    assert found.objects[0].format == "joblib"
    assert found.untrusted == FORBIDDEN_NAMES
    shapes = sorted(a.shape for a in found.objects[0].arrays)
    assert shapes == sorted([(300_000,), (2,), (300, 200), (50_000,)])
    fortran = next(a for a in found.objects[0].arrays if a.shape == (300, 200))
    assert (fortran.order, fortran.dtype, fortran.raw_bytes) == ("F", "<i2", 120_000)
    # A restricted load names every one, from a path, a file object, bytes
    # and a stream that cannot seek.
    for source in (lambda: path, lambda: io.BytesIO(data), lambda: NonSeekable(data)):
        with pytest.raises(codecpickle.ForbiddenGlobalError) as refused:
            codecpickle.load(source(), safe=True)
        assert sorted(refused.value.names) == FORBIDDEN_NAMES, source
        assert "could not be scanned" not in str(refused.value)
    with pytest.raises(codecpickle.ForbiddenGlobalError) as refused:
        codecpickle.loads(data, safe=True)
    assert sorted(refused.value.names) == FORBIDDEN_NAMES
    loaded = codecpickle.load(path, allow=found.untrusted)
    assert loaded["user_dict"] == obj["user_dict"]
    np.testing.assert_array_equal(loaded["after"], obj["after"])


def test_first_refusal_inside_an_array_of_objects(tmp_path: Path):
    obj = {
        "objects": np.array([FORBIDDEN["fraction"]], dtype=object),
        "big": np.arange(300_000.0),
        "path": FORBIDDEN["path"],
    }
    path = _joblib_file(tmp_path, obj, 0)
    expected = ["fractions.Fraction", "pathlib.PurePosixPath"]
    for source in (lambda: path, lambda: io.BytesIO(path.read_bytes())):
        with pytest.raises(codecpickle.ForbiddenGlobalError) as refused:
            codecpickle.load(source(), safe=True)
        assert list(refused.value.names) == expected
    # A stream that cannot seek cannot be walked again from its start: the
    # list is as complete as the rest of the stream allows, and says so.
    with pytest.raises(codecpickle.ForbiddenGlobalError) as refused:
        codecpickle.load(NonSeekable(path.read_bytes()), safe=True)
    assert refused.value.names[0] == "fractions.Fraction"
    assert set(refused.value.names) <= set(expected)
    if len(refused.value.names) < 2:
        assert "could not be scanned" in str(refused.value)


def test_several_pickles_in_one_file_and_pipes():
    buffer = io.BytesIO()
    pickle.dump({"a": np.arange(3)}, buffer, protocol=4)
    pickle.dump(FORBIDDEN["path"], buffer, protocol=2)
    data = buffer.getvalue()
    for source in (data, io.BytesIO(data), NonSeekable(data)):
        found = codecpickle.inspect(source)
        assert [o.pickle_protocol for o in found.objects] == [4, 2]
        assert found.objects[1].offset == len(pickle.dumps({"a": np.arange(3)}, protocol=4))
        assert found.untrusted == ["pathlib.PurePosixPath"]
        assert [a.shape for a in found.objects[0].arrays] == [(3,)]


def test_nothing_from_the_file_is_imported(tmp_path: Path):
    module = tmp_path / "side_effect_for_foreign_inspect.py"
    marker = tmp_path / "imported"
    module.write_text(
        f"open({str(marker)!r}, 'w').close()\n"
        "class Gadget:\n    pass\n"
    )
    target = tmp_path / "g.joblib"
    script = (
        f"import sys, joblib, numpy; sys.path.insert(0, {str(tmp_path)!r}); "
        "import side_effect_for_foreign_inspect as m; "
        f"joblib.dump([numpy.arange(10**5), m.Gadget()], {str(target)!r}, compress=3)"
    )
    subprocess.run([sys.executable, "-c", script], check=True)
    marker.unlink()
    sys.path.insert(0, str(tmp_path))
    try:
        assert codecpickle.untrusted_types(target) == ["side_effect_for_foreign_inspect.Gadget"]
        with pytest.raises(codecpickle.ForbiddenGlobalError):
            codecpickle.load(target, safe=True)
    finally:
        sys.path.remove(str(tmp_path))
    assert not marker.exists()
    assert "side_effect_for_foreign_inspect" not in sys.modules


def test_cli_inspect_on_joblib_and_pickle_files(tmp_path: Path):
    path = _joblib_file(tmp_path, {"a": np.arange(10), "p": FORBIDDEN["path"]}, 3)
    run = [sys.executable, "-m", "codecpickle", "inspect"]
    shown = subprocess.run([*run, str(path)], capture_output=True, text=True, check=True)
    assert "a joblib file, zlib-compressed" in shown.stdout
    assert "REFUSED pathlib.PurePosixPath" in shown.stdout
    untrusted = subprocess.run([*run, "--untrusted", str(path)], capture_output=True, text=True,
                               check=True)
    assert untrusted.stdout.split() == ["pathlib.PurePosixPath"]
    plain = tmp_path / "p.pkl.xz"
    plain.write_bytes(lzma.compress(pickle.dumps([np.arange(3), FORBIDDEN["fraction"]])))
    report = json.loads(subprocess.run([*run, "--json", str(plain)], capture_output=True,
                                       text=True, check=True).stdout)
    (obj,) = report["objects"]
    assert (obj["format"], obj["codec"]) == ("pickle", "xz")
    assert [g["name"] for g in obj["globals"] if not g["allowed"]] == ["fractions.Fraction"]


def test_damaged_and_unknown_foreign_files(tmp_path: Path):
    path = _joblib_file(tmp_path, {"a": np.arange(10_000), "p": FORBIDDEN["path"]}, 0)
    data = path.read_bytes()
    for cut in (5, len(data) // 2, len(data) - 1):
        with pytest.raises(codecpickle.CodecPickleError):
            codecpickle.inspect(data[:cut])
    with pytest.raises(codecpickle.FileFormatError, match=r"joblib < 0\.9\.3"):
        codecpickle.inspect(b"ZF0x10\n" + zlib.compress(b"x"))
    rng = np.random.default_rng(0)
    for _ in range(200):  # flipped bytes: refused or described, never anything else
        damaged = bytearray(data)
        damaged[rng.integers(len(damaged))] ^= 1 << rng.integers(8)
        with contextlib.suppress(codecpickle.CodecPickleError):
            codecpickle.inspect(bytes(damaged))


class _Reduces:
    """Pickles as the reduction it is given (nothing of it ever runs)."""

    def __init__(self, reduction: Any) -> None:
        self.reduction = reduction

    def __reduce__(self) -> Any:
        return self.reduction


def test_hostile_shapes_cost_no_time():
    import time

    from joblib.numpy_pickle import NumpyArrayWrapper

    # A joblib wrapper declaring more data than exists: refused at once.
    state = {"subclass": np.ndarray, "shape": (2**62, 2**62), "order": "C",
             "dtype": np.dtype("f8"), "allow_mmap": False}
    wrapper = _Reduces((NumpyArrayWrapper, (np.ndarray, (1,), "C", np.dtype("f8")), state))
    with pytest.raises(codecpickle.CorruptDataError, match="more array data"):
        codecpickle.inspect(pickle.dumps(wrapper, protocol=4))
    # numpy reductions whose shape is 64 ints of 4000 digits, memoized and
    # used 3000 times: the size is not multiplied out.
    huge = tuple([10**4000] * 64)
    from numpy._core.multiarray import _reconstruct as reconstruct
    item = _Reduces((reconstruct, (np.ndarray, (0,), b"b"),
                     (1, huge, np.dtype("f8"), False, "x")))
    data = pickle.dumps([_Reduces(item.reduction) for _ in range(3000)], protocol=4)
    start = time.perf_counter()
    found = codecpickle.inspect(data)
    assert time.perf_counter() - start < 10
    assert all(a.raw_bytes == 0 for a in found.objects[0].arrays)


def test_urls_and_standard_input(tmp_path: Path):
    fsspec = pytest.importorskip("fsspec")
    data = gzip.compress(pickle.dumps({"a": np.arange(5), "p": FORBIDDEN["path"]}, protocol=5))
    with fsspec.open("memory://foreign-inspect/p.pkl.gz", "wb") as handle:
        handle.write(data)
    found = codecpickle.inspect("memory://foreign-inspect/p.pkl.gz")
    assert (found.objects[0].format, found.objects[0].codec) == ("pickle", "gzip")
    assert found.untrusted == ["pathlib.PurePosixPath"]
    shown = subprocess.run(
        [sys.executable, "-m", "codecpickle", "inspect", "--untrusted", "-"],
        input=data, capture_output=True, check=True,
    )
    assert shown.stdout.decode().split() == ["pathlib.PurePosixPath"]
