"""joblib files load through codecpickle.load without joblib: every
compressor joblib offers, memory-mapped when uncompressed, and under
safe=True through codecpickle's own checks.  (joblib writes the files here;
tests/test_joblib_golden.py covers files written by older versions.)"""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
import warnings

import joblib
import numpy as np
import pytest
from joblib.numpy_pickle import NumpyArrayWrapper

import codecpickle
from tests.conftest import assert_same

OBJ = {
    "float64": np.linspace(0.0, 1.0, 5000),
    "fortran": np.asfortranarray(np.arange(600, dtype=np.int16).reshape(20, 30)),
    "big_endian": np.arange(50, dtype=">f4"),
    "zero_d": np.array(7),
    "empty": np.empty((3, 0)),
    "structured": np.array([(1, b"ab")], dtype=[("n", "<i8"), ("s", "S2")]),
    "objects": np.array([{"k": 1}, "text", 2.5], dtype=object),
    "strided": np.arange(200.0).reshape(20, 10)[::2, ::3],
    "matrix": np.arange(4.0).reshape(2, 2).view(np.matrix),
    "plain": ["text", 1, (2.5, None), {"nested": np.arange(4, dtype=np.uint8)}],
}

COMPRESS_OPTIONS = [
    0,
    1,
    3,
    9,
    True,
    ("zlib", 3),
    ("gzip", 3),
    ("bz2", 3),
    ("lzma", 3),
    ("xz", 3),
    ("lz4", 3),
    ("lz4", 0),
]


def _expected(obj):
    """What joblib itself loads (strided views come back contiguous)."""
    return {key: (np.ascontiguousarray(v) if key == "strided" else v) for key, v in obj.items()}


@pytest.mark.parametrize("compress", COMPRESS_OPTIONS, ids=str)
@pytest.mark.parametrize("safe", [False, True])
def test_every_compress_option_loads(tmp_path, compress, safe):
    path = tmp_path / "data.joblib"
    joblib.dump(OBJ, path, compress=compress)
    loaded = codecpickle.load(path, safe=safe)
    assert_same(loaded, _expected(OBJ))
    assert type(loaded["matrix"]) is np.matrix
    assert loaded["fortran"].flags.f_contiguous
    assert loaded["big_endian"].dtype == np.dtype(">f4")
    with open(path, "rb") as file:
        assert_same(codecpickle.load(file, safe=safe), _expected(OBJ))
    assert_same(codecpickle.loads(path.read_bytes(), safe=safe), _expected(OBJ))


@pytest.mark.parametrize("compress", [0, 3, ("lz4", 3)], ids=str)
def test_joblib_file_from_a_pipe(compress):
    buffer = io.BytesIO()
    joblib.dump(OBJ, buffer, compress=compress)
    data = buffer.getvalue()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child writes and leaves
        os.close(read_end)
        with os.fdopen(write_end, "wb") as sink:
            sink.write(data)
        os._exit(0)
    os.close(write_end)
    try:
        with os.fdopen(read_end, "rb", buffering=0) as pipe:
            assert_same(codecpickle.load(pipe), _expected(OBJ))
    finally:
        os.waitpid(pid, 0)


def test_file_object_is_left_after_the_joblib_stream(tmp_path):
    buffer = io.BytesIO()
    joblib.dump(OBJ, buffer)
    buffer.write(b"after")
    buffer.seek(0)
    assert_same(codecpickle.load(buffer), _expected(OBJ))
    assert buffer.read() == b"after"


@pytest.mark.parametrize("mode", ["r", "r+", "c"])
def test_mmap_mode_maps_uncompressed_joblib_arrays(tmp_path, mode):
    path = tmp_path / "data.joblib"
    joblib.dump(OBJ, path)
    loaded = codecpickle.load(path, mmap_mode=mode)
    reference = joblib.load(path, mmap_mode=mode)
    for key in ("float64", "fortran", "big_endian", "structured"):
        array, expected = loaded[key], reference[key]
        assert isinstance(array, np.memmap), key
        assert array.filename == os.path.abspath(path)
        assert array.mode == mode
        assert array.offset == expected.offset, key  # the same bytes as joblib maps
        assert array.offset % 16 == 0  # joblib >= 1.2 aligns its arrays
        assert_same(np.asarray(array), np.asarray(OBJ[key]))
    assert loaded["fortran"].flags.f_contiguous
    assert not isinstance(loaded["objects"], np.memmap)  # joblib never maps objects
    if mode == "r":
        assert not loaded["float64"].flags.writeable
    else:
        loaded["float64"][0] = 42.0
        loaded["float64"].flush()
        again = codecpickle.load(path)["float64"][0]
        assert again == (42.0 if mode == "r+" else 0.0)


def test_mmap_mode_on_a_compressed_joblib_file_warns_and_loads(tmp_path):
    path = tmp_path / "data.joblib"
    joblib.dump(OBJ, path, compress=3)
    with pytest.warns(UserWarning, match="mmap_mode is ignored.*zlib"):
        loaded = codecpickle.load(path, mmap_mode="r")
    assert not isinstance(loaded["float64"], np.memmap)
    assert_same(loaded, _expected(OBJ))


def test_mmap_mode_on_an_unnamed_file_object_warns(tmp_path):
    buffer = io.BytesIO()
    joblib.dump(OBJ, buffer)
    buffer.seek(0)
    with pytest.warns(UserWarning, match="mmap_mode is ignored"):
        assert_same(codecpickle.load(buffer, mmap_mode="r"), _expected(OBJ))


class Custom:
    def __init__(self, value):
        self.value = value


@pytest.mark.parametrize("compress", [0, 3], ids=str)
def test_safe_load_refuses_what_is_not_admitted(tmp_path, compress):
    path = tmp_path / "data.joblib"
    joblib.dump({"array": np.arange(3), "custom": Custom(1)}, path, compress=compress)
    with pytest.raises(codecpickle.ForbiddenGlobalError, match=r"test_foreign_joblib\.Custom"):
        codecpickle.load(path, safe=True)
    loaded = codecpickle.load(path, allow=[Custom])
    assert loaded["custom"].value == 1


def test_safe_load_of_a_memmap_dump(tmp_path):
    source = np.memmap(tmp_path / "raw.dat", dtype=np.float32, mode="w+", shape=(100,))
    source[:] = np.arange(100)
    path = tmp_path / "data.joblib"
    joblib.dump({"m": source}, path)
    loaded = codecpickle.load(path, safe=True)["m"]
    assert type(loaded) is np.ndarray
    assert_same(loaded, np.arange(100, dtype=np.float32))


def test_loading_never_imports_joblib(tmp_path):
    path = tmp_path / "data.joblib"
    joblib.dump(OBJ, path, compress=3)
    code = (
        "import sys, codecpickle\n"
        f"codecpickle.load({str(path)!r})\n"
        f"codecpickle.load({str(path)!r}, safe=True)\n"
        "assert not [m for m in sys.modules if m.startswith('joblib')], 'joblib imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- damaged and forged files ---------------------------------------------------


def _forged(state: dict, data: bytes, protocol: int = 3) -> bytes:
    """A joblib-style stream: one wrapper with ``state``, then ``data``."""
    wrapper = NumpyArrayWrapper.__new__(NumpyArrayWrapper)
    wrapper.__dict__.update(state)
    stream = pickle.dumps(wrapper, protocol=protocol)
    assert stream.endswith(b"b.")  # BUILD, STOP
    return stream[:-1] + data + b"."


GOOD_STATE = {
    "subclass": np.ndarray,
    "shape": (4,),
    "order": "C",
    "dtype": np.dtype("<i4"),
    "allow_mmap": True,
}


def test_forged_wrapper_round_trip_is_valid():
    data = np.arange(4, dtype="<i4").tobytes()
    for safe in (False, True):
        loaded = codecpickle.loads(_forged(GOOD_STATE, data), safe=safe)
        assert_same(loaded, np.arange(4, dtype="<i4"))


@pytest.mark.parametrize(
    "change",
    [
        {"shape": (-1,)},
        {"shape": [4]},
        {"shape": (4.0,)},
        {"order": "K"},
        {"dtype": "i4"},
        {"allow_mmap": "yes"},
        {"numpy_array_alignment_bytes": 0},
        {"subclass": int},
        {"extra": 1},
    ],
    ids=str,
)
@pytest.mark.parametrize("safe", [False, True])
def test_forged_wrapper_states_are_refused(change, safe):
    state = {**GOOD_STATE, **change}
    with pytest.raises(codecpickle.CorruptDataError, match="joblib array wrapper"):
        codecpickle.loads(_forged(state, np.arange(4, dtype="<i4").tobytes()), safe=safe)


@pytest.mark.parametrize("safe", [False, True])
def test_huge_declared_arrays_are_refused_before_allocation(safe):
    state = {**GOOD_STATE, "shape": (1 << 40,)}
    with pytest.raises(codecpickle.FileFormatError):
        codecpickle.loads(_forged(state, b"\0" * 16), safe=safe)
    with pytest.raises(codecpickle.SizeLimitError):
        codecpickle.load(io.BytesIO(_forged(state, b"\0" * 16)), max_buffer_size=1 << 20)


@pytest.mark.parametrize("compress", [0, 3, ("lz4", 3), ("bz2", 3)], ids=str)
def test_truncated_joblib_files_are_reported(tmp_path, compress):
    path = tmp_path / "data.joblib"
    joblib.dump(OBJ, path, compress=compress)
    data = path.read_bytes()
    for cut in (len(data) // 3, len(data) // 2, len(data) - 20):
        path.write_bytes(data[:cut])
        for safe in (False, True):
            with pytest.raises(codecpickle.FileFormatError):
                codecpickle.load(path, safe=safe)


def test_legacy_multi_file_wrappers_are_named(tmp_path):
    stream = b"\x80\x02cjoblib.numpy_pickle_compat\nZNDArrayWrapper\nq\x00)\x81q\x01}q\x02b."
    for safe in (False, True):
        with pytest.raises(codecpickle.FileFormatError, match=r"joblib < 0\.10"):
            codecpickle.loads(stream, safe=safe)
    with pytest.raises(codecpickle.FileFormatError, match=r"joblib < 0\.9\.3"):
        codecpickle.loads(b"ZF0x" + b"0" * 20)


def test_no_warnings_on_a_clean_load(tmp_path):
    path = tmp_path / "data.joblib"
    joblib.dump(OBJ, path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        codecpickle.load(path)
        codecpickle.load(path, mmap_mode="r")
