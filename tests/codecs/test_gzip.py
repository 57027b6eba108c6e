"""The gzip codec: the contract, standard gzip members, byte-for-byte determinism."""

from __future__ import annotations

import gzip
import zlib

import pytest

from codecpickle.codecs import GzipCodec
from codecpickle.testing import CodecContractTests, sample_data


class TestGzipCodec(CodecContractTests):
    codec_class = GzipCodec


@pytest.mark.parametrize("level", [0, 1, 6, 9])
def test_chunks_are_standard_gzip_members(level: int) -> None:
    data = sample_data("text", 100_000)
    assert gzip.decompress(GzipCodec(level=level).encode(memoryview(data))) == data


def test_output_is_deterministic() -> None:
    data = memoryview(sample_data("smooth", 100_000))
    first = GzipCodec().encode(data)
    assert GzipCodec().encode(data) == first
    # No time stamp, no OS byte (255 = unknown), no optional fields.
    assert first[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"


def test_a_damaged_crc_is_refused() -> None:
    data = sample_data("smooth", 10_000)
    encoded = bytearray(GzipCodec().encode(memoryview(data)))
    encoded[-5] ^= 0xFF  # last byte of the CRC-32 trailer field
    with pytest.raises(zlib.error):
        GzipCodec().decode(memoryview(encoded), len(data))
