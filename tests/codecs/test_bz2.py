"""The bz2 codec: the contract and real bzip2 streams."""

from __future__ import annotations

import bz2

from codecpickle.codecs import Bz2Codec
from codecpickle.testing import CodecContractTests, sample_data


class TestBz2Codec(CodecContractTests):
    codec_class = Bz2Codec


def test_chunks_are_plain_bzip2_streams() -> None:
    data = sample_data("text", 100_000)
    assert bz2.decompress(Bz2Codec(level=1).encode(memoryview(data))) == data
