"""Arrays numpy would copy whole (strided views, memmaps, datetime64) are
streamed in bounded pieces, and loads decode into the final memory.

Measured with tracemalloc, which sees numpy's buffers and Python bytes, in
this process: cheap enough for the unit tests (whole-process RSS is measured
by tests/test_api_memory.py and the benchmarks)."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import codecpickle
from tests.conftest import CountingSink

MiB = 1 << 20
CHUNK = MiB


def _peak(action: Callable[[], Any]) -> tuple[int, Any]:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        result = action()
        return tracemalloc.get_traced_memory()[1], result
    finally:
        tracemalloc.stop()


def _strided() -> np.ndarray:
    base = np.arange(8 * MiB, dtype=np.float64).reshape(2048, 4096)  # 64 MiB
    return base[:, ::2]  # 32 MiB view, not contiguous


def _datetimes() -> np.ndarray:
    return np.arange(4 * MiB).astype("datetime64[s]")  # 32 MiB


def _memmap(tmp_path: Any) -> np.memmap:
    array = np.memmap(tmp_path / "m.dat", dtype=np.int64, mode="w+", shape=(4 * MiB,))
    array[:] = np.arange(4 * MiB)
    return array


@pytest.mark.parametrize("compress", [None, "zstd", "lz4"])
@pytest.mark.parametrize("make", [_strided, _datetimes, "memmap"])
def test_dump_memory_is_bounded(tmp_path, compress, make):
    array = _memmap(tmp_path) if make == "memmap" else make()
    sink = CountingSink()
    peak, _ = _peak(
        lambda: codecpickle.dump(array, sink, compress=compress, threads=2, chunk_size=CHUNK)
    )
    assert sink.size > 0
    # A few chunks in flight (raw pieces and their encodings), never the array.
    assert peak < 12 * CHUNK < array.nbytes


@pytest.mark.parametrize("compress", [None, "zstd", "zlib"])
def test_load_decodes_into_the_final_memory(compress):
    array = np.repeat(np.arange(2 * MiB, dtype=np.int64), 2)  # 32 MiB, compressible
    data = codecpickle.dumps(array, compress=compress, chunk_size=CHUNK)
    peak, loaded = _peak(lambda: codecpickle.loads(data, threads=2))
    np.testing.assert_array_equal(loaded, array)
    assert peak < array.nbytes + 8 * CHUNK
