"""Chunks on a thread pool: identical output whatever the thread count,
bounded work in flight, the incompressible-chunk probe, and the opcode
read-ahead on load.  Behaviour only: timings belong in benchmarks/."""

from __future__ import annotations

import io
import threading
from typing import Any, ClassVar

import numpy as np
import pytest

import codecpickle
from codecpickle import _filters, _probe
from codecpickle import _format as fmt
from codecpickle.codecs.zlib import ZlibCodec
from codecpickle.errors import CorruptDataError, TruncatedFileError
from tests.conftest import CountingSink, assert_same

MiB = 1 << 20


def _mixed_object() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    return {
        "noise": rng.standard_normal(300_000),  # stored raw by the probe
        "ints": rng.integers(0, 50, 400_000),  # compresses well
        "strided": rng.standard_normal((600, 800))[:, ::3],
        "records": [{"id": i, "name": f"n{i}", "x": i / 7} for i in range(20_000)],
    }


@pytest.mark.parametrize("compress", [None, "zstd", ("zlib", 1), "lz4"])
def test_output_is_identical_whatever_the_thread_count(compress):
    obj = _mixed_object()
    outputs = {
        threads: codecpickle.dumps(obj, compress=compress, threads=threads, chunk_size=MiB)
        for threads in (1, 2, 3, 8)
    }
    assert len(set(outputs.values())) == 1
    for threads in (1, 2, 8):
        assert_same(codecpickle.loads(outputs[1], threads=threads), obj)


class _CountingZlib(ZlibCodec):
    """zlib that records the sizes it was asked to encode and the most
    encode calls running at once."""

    name: ClassVar[str] = "zlib"
    lock = threading.Lock()

    def __init__(self, level: int | None = None) -> None:
        super().__init__(level)
        self.sizes: list[int] = []
        self.running = 0
        self.most_running = 0

    def encode(self, data: memoryview, itemsize: int = 1) -> bytes:
        with self.lock:
            self.sizes.append(data.nbytes)
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        try:
            return super().encode(data, itemsize)
        finally:
            with self.lock:
                self.running -= 1


def test_incompressible_chunks_are_stored_raw_after_a_small_sample():
    codec = _CountingZlib(3)
    noise = np.random.default_rng(1).integers(0, 256, 8 * MiB, dtype=np.uint8)
    data = codecpickle.dumps(noise, compress=codec, threads=1, chunk_size=2 * MiB)
    # Only samples were compressed, never a whole chunk.
    assert max(codec.sizes) <= _probe.SAMPLE_PIECES * _probe.SAMPLE_PIECE
    assert len(data) > noise.nbytes
    assert_same(codecpickle.loads(data), noise)


def test_compressible_chunks_are_still_compressed():
    codec = _CountingZlib(3)
    smooth = np.repeat(np.arange(1 << 20, dtype=np.int64), 2)  # 16 MiB
    data = codecpickle.dumps(smooth, compress=codec, threads=1, chunk_size=2 * MiB)
    assert max(codec.sizes) == 2 * MiB
    assert len(data) < smooth.nbytes // 4
    assert_same(codecpickle.loads(data), smooth)


def test_each_chunk_is_judged_on_its_own():
    rng = np.random.default_rng(2)
    half = 4 * MiB
    mixed = np.concatenate([rng.integers(0, 256, half, dtype=np.uint8),
                            np.zeros(half, dtype=np.uint8)])
    data = codecpickle.dumps(mixed, compress="zstd", chunk_size=MiB)
    assert half < len(data) < half + MiB
    assert_same(codecpickle.loads(data), mixed)


@pytest.mark.parametrize("itemsize", [1, 3, 8, 24])
def test_probe_samples_whole_elements(itemsize):
    codec = _CountingZlib(3)
    raw = memoryview(np.zeros(_probe.MIN_PROBED_CHUNK + 5, dtype=np.uint8))
    options = _filters.candidates(itemsize)
    assert _probe.choose(codec, raw, itemsize, options, _filters.ScratchPool(0)) == _filters.NONE
    # The screen, then (to pick among several options) the whole sample.
    assert len(codec.sizes) == (2 * len(options) if len(options) > 1 else 1)
    assert all(size % itemsize == 0 for size in codec.sizes)


def test_small_chunks_are_not_probed():
    codec = _CountingZlib(3)
    raw = memoryview(np.random.default_rng(3).integers(0, 256, 4096, dtype=np.uint8))
    only = (_filters.NONE,)
    assert _probe.choose(codec, raw, 1, only, _filters.ScratchPool(0)) == _filters.NONE
    assert codec.sizes == []


def test_work_in_flight_is_bounded_by_the_thread_count():
    codec = _CountingZlib(1)
    array = np.repeat(np.arange(4 * MiB // 16, dtype=np.int64), 2)  # 8 MiB, compressible
    codecpickle.dump(array, CountingSink(), compress=codec, threads=2, chunk_size=64 << 10)
    assert 1 <= codec.most_running <= 2


@pytest.mark.parametrize("threads", [1, 2])
def test_many_compressed_opcode_chunks_round_trip(threads):
    obj = [{"id": i, "text": f"value {i}" * (i % 5)} for i in range(30_000)]
    data = codecpickle.dumps(obj, compress="zstd", threads=threads, chunk_size=fmt.MIN_CHUNK_SIZE)
    assert codecpickle.loads(data, threads=threads) == obj


def test_read_ahead_stops_at_each_stream_end():
    first = [list(range(i, i + 20)) for i in range(3_000)]
    second = {"a": np.arange(100_000), "b": ["x"] * 5_000}
    stream = io.BytesIO()
    for obj in (first, second, first):
        codecpickle.dump(obj, stream, compress="lz4", threads=2, chunk_size=fmt.MIN_CHUNK_SIZE)
    stream.seek(0)
    assert codecpickle.load(stream, threads=2) == first
    assert_same(codecpickle.load(stream, threads=2), second)
    assert codecpickle.load(stream, threads=2) == first
    assert stream.read() == b""


def test_read_ahead_reports_truncation_where_the_stream_ends():
    obj = [str(i) * 3 for i in range(20_000)]
    data = codecpickle.dumps(obj, compress="zstd", threads=2, chunk_size=fmt.MIN_CHUNK_SIZE)
    for cut in (len(data) - 5, len(data) // 2):
        with pytest.raises((TruncatedFileError, CorruptDataError)):
            codecpickle.loads(data[:cut], threads=2)
