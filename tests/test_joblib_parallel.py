"""mmap_mode loads give np.memmap arrays (filename, offset, mode), so
joblib.Parallel sends them to worker processes by reference: each worker
maps the same file instead of receiving a pickled copy."""

from __future__ import annotations

import os

import joblib
import numpy as np
import pytest

import codecpickle

# Small enough that joblib's own automatic memmapping (arrays over 1 MB are
# dumped to a temporary folder) does not apply: what a worker receives is
# what joblib's reducers made of the array we pass.
OBJ = {
    "c_order": np.arange(20_000, dtype=np.float64),
    "fortran": np.asfortranarray(np.arange(600, dtype=np.int32).reshape(20, 30)),
    "objects": np.array(["a", 1], dtype=object),
}


def describe(array):
    """Runs in a worker: how the array arrived."""
    return {
        "type": type(array).__name__,
        "filename": getattr(array, "filename", None),
        "offset": getattr(array, "offset", None),
        "pid": os.getpid(),
        "sum": float(np.asarray(array, dtype=float).sum()),
    }


@pytest.mark.parametrize("safe", [False, True])
@pytest.mark.parametrize("mode", ["r", "r+", "c"])
def test_codecpickle_mmap_load_gives_memmaps(tmp_path, mode, safe):
    path = tmp_path / "data.cpkl"
    codecpickle.dump(OBJ, path)
    loaded = codecpickle.load(path, mmap_mode=mode, safe=safe)
    raw = path.read_bytes()
    for key in ("c_order", "fortran"):
        array = loaded[key]
        assert type(array) is np.memmap, key
        assert array.filename == str(path.resolve())
        assert array.mode == mode
        # offset is where the array's bytes are in the file
        stored = raw[array.offset : array.offset + array.nbytes]
        assert stored == OBJ[key].tobytes(order="A"), key
        np.testing.assert_array_equal(array, OBJ[key])
    assert loaded["fortran"].flags.f_contiguous
    assert type(loaded["objects"]) is np.ndarray
    assert loaded["c_order"].flags.writeable == (mode != "r")


def test_compressed_or_unnamed_inputs_keep_plain_arrays(tmp_path):
    path = tmp_path / "data.cpkl"
    codecpickle.dump(OBJ, path, compress="zstd")
    with pytest.warns(UserWarning, match="mmap_mode is ignored"):
        assert type(codecpickle.load(path, mmap_mode="r")["c_order"]) is np.ndarray


@pytest.mark.parametrize("writer", ["codecpickle", "joblib"])
def test_parallel_workers_receive_memmaps_of_the_same_file(tmp_path, writer):
    path = tmp_path / f"data.{writer}"
    if writer == "codecpickle":
        codecpickle.dump(OBJ, path)
    else:
        joblib.dump(OBJ, path)
    loaded = codecpickle.load(path, mmap_mode="r")
    arrays = [loaded["c_order"], loaded["fortran"]]
    results = joblib.Parallel(n_jobs=2, backend="loky")(
        joblib.delayed(describe)(array) for array in arrays
    )
    assert {result["pid"] for result in results} != {os.getpid()}
    for array, result in zip(arrays, results, strict=True):
        assert result["type"] == "memmap"
        assert result["filename"] == str(path.resolve())
        assert result["offset"] == array.offset
        assert result["sum"] == float(np.asarray(array, dtype=float).sum())


def test_without_mmap_mode_workers_receive_copies(tmp_path):
    path = tmp_path / "data.cpkl"
    codecpickle.dump(OBJ, path)
    loaded = codecpickle.load(path)
    (result,) = joblib.Parallel(n_jobs=2, backend="loky")(
        [joblib.delayed(describe)(loaded["c_order"])]
    )
    assert result["type"] == "ndarray"
