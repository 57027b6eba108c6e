"""The zstd codec: the contract, in-place decoding, frame sizes, thread-local contexts."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import zstandard

from codecpickle.codecs import ZstdCodec
from codecpickle.errors import CorruptDataError
from codecpickle.testing import CodecContractTests, sample_data


class TestZstdCodec(CodecContractTests):
    codec_class = ZstdCodec


def test_level_range_covers_negative_levels() -> None:
    assert (ZstdCodec.min_level, ZstdCodec.max_level) == (-131072, 22)
    data = memoryview(sample_data("smooth", 100_000))
    for level in (-131072, -5, 22):
        encoded = ZstdCodec(level=level).encode(data)
        assert bytes(ZstdCodec().decode(memoryview(encoded), len(data))) == data


def test_decode_into_fills_the_callers_buffer() -> None:
    array = np.sin(np.linspace(0, 50, 250_000)).astype(np.float64)
    encoded = memoryview(ZstdCodec().encode(memoryview(array).cast("B"), 8))
    target = np.empty_like(array)
    ZstdCodec().decode_into(encoded, memoryview(target))  # a 'd'-format view is accepted
    np.testing.assert_array_equal(target, array)


def test_frames_record_their_content_size() -> None:
    data = sample_data("text", 10_000)
    encoded = ZstdCodec().encode(memoryview(data))
    assert zstandard.frame_content_size(encoded) == len(data)


def test_declared_size_mismatch_is_refused_before_decoding() -> None:
    data = sample_data("text", 10_000)
    encoded = memoryview(ZstdCodec().encode(memoryview(data)))
    with pytest.raises(CorruptDataError, match="more than its declared 100 bytes"):
        ZstdCodec().decode(encoded, 100)


def test_frames_without_content_size_still_decode_bounded() -> None:
    data = sample_data("text", 10_000)
    encoded = memoryview(zstandard.ZstdCompressor(write_content_size=False).compress(data))
    assert bytes(ZstdCodec().decode(encoded, len(data))) == data
    with pytest.raises(CorruptDataError):
        ZstdCodec().decode(encoded, len(data) - 1)


def test_contexts_are_per_thread() -> None:
    codec = ZstdCodec()
    seen = []

    def grab() -> None:
        seen.append(codec._compressor())

    threads = [threading.Thread(target=grab) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(compressor) for compressor in seen}) == 4
    assert codec._compressor() is codec._compressor()
