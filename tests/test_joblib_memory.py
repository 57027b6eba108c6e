"""joblib.Memory(location, backend="codecpickle"): joblib's own Memory API
(cache, hit, clear, reduce_size) on a store written by codecpickle."""

from __future__ import annotations

import subprocess
import sys

import joblib
import numpy as np
import pytest

from codecpickle import _format as fmt
from codecpickle._reader import read_header_meta
from codecpickle._sources import StreamSource
from codecpickle.joblib import BACKEND_NAME  # importing registers the backend

CALLS: list[int] = []


def compute(n):
    CALLS.append(n)
    return {"array": np.arange(n, dtype=np.float64), "n": n}


def _outputs(location):
    return sorted(location.rglob("output.pkl"))


def test_backend_is_registered_under_its_name():
    assert BACKEND_NAME == "codecpickle"


def test_cache_hit_is_memory_mapped_and_stored_by_codecpickle(tmp_path):
    CALLS.clear()
    memory = joblib.Memory(tmp_path, backend=BACKEND_NAME, verbose=0)
    cached = memory.cache(compute)
    first = cached(100_000)
    again = cached(100_000)
    assert CALLS == [100_000]  # the second call is a hit
    np.testing.assert_array_equal(again["array"], np.arange(100_000, dtype=np.float64))
    assert type(again["array"]) is np.memmap
    assert again["array"].mode == "r"
    assert first["n"] == again["n"] == 100_000
    (output,) = _outputs(tmp_path)
    assert output.read_bytes().startswith(fmt.MAGIC)
    assert again["array"].filename == str(output.resolve())


def test_compressed_store_with_threads(tmp_path):
    CALLS.clear()
    memory = joblib.Memory(
        tmp_path,
        backend=BACKEND_NAME,
        verbose=0,
        compress="zstd:3",
        backend_options={"threads": 2},
    )
    cached = memory.cache(compute)
    cached(50_000)
    hit = cached(50_000)
    assert CALLS == [50_000]
    assert type(hit["array"]) is np.ndarray
    (output,) = _outputs(tmp_path)
    with open(output, "rb") as file:
        meta = read_header_meta(StreamSource(file))[1]
    assert meta["codec"] == "zstd"


def test_memory_compress_means_zstd_and_memory_map_can_be_turned_off(tmp_path):
    memory = joblib.Memory(
        tmp_path, backend=BACKEND_NAME, verbose=0, backend_options={"memory_map": False}
    )
    assert type(memory.cache(compute)(10) and memory.cache(compute)(10)["array"]) is np.ndarray
    compressed = joblib.Memory(tmp_path / "z", backend=BACKEND_NAME, verbose=0, compress=3)
    assert compressed.store_backend.codec.name == "zstd"
    assert compressed.store_backend.codec.level == 3


def test_clear_and_reduce_size(tmp_path):
    CALLS.clear()
    memory = joblib.Memory(tmp_path, backend=BACKEND_NAME, verbose=0)
    cached = memory.cache(compute)
    for n in (10_000, 20_000, 30_000):
        cached(n)
    assert len(_outputs(tmp_path)) == 3
    memory.reduce_size(items_limit=1)
    assert len(_outputs(tmp_path)) == 1
    memory.reduce_size(bytes_limit=1)
    assert _outputs(tmp_path) == []
    cached(10_000)
    cached.clear()
    CALLS.clear()
    cached(10_000)
    assert CALLS == [10_000]  # recomputed after clear
    memory.clear(warn=False)
    assert _outputs(tmp_path) == []


def test_unknown_backend_options_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown backend_options"):
        joblib.Memory(tmp_path, backend=BACKEND_NAME, backend_options={"colour": 1})


def test_importing_codecpickle_does_not_import_joblib():
    code = "import sys, codecpickle; assert 'joblib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
