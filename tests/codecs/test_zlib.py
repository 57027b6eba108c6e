"""The zlib codec: the contract, and real zlib streams."""

from __future__ import annotations

import zlib

from codecpickle.codecs import ZlibCodec
from codecpickle.testing import CodecContractTests, sample_data


class TestZlibCodec(CodecContractTests):
    codec_class = ZlibCodec


def test_chunks_are_plain_zlib_streams() -> None:
    data = sample_data("text", 100_000)
    assert zlib.decompress(ZlibCodec(level=9).encode(memoryview(data))) == data


def test_level_zero_stores() -> None:
    data = sample_data("zeros", 100_000)
    assert len(ZlibCodec(level=0).encode(memoryview(data))) > len(data)
