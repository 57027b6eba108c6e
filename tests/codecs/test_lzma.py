"""The lzma codec: the contract, xz streams, the decoder's memory limit."""

from __future__ import annotations

import lzma

import pytest

from codecpickle.codecs import LzmaCodec
from codecpickle.codecs import lzma as lzma_module
from codecpickle.testing import CodecContractTests, sample_data


class TestLzmaCodec(CodecContractTests):
    codec_class = LzmaCodec


def test_chunks_are_xz_streams() -> None:
    data = sample_data("text", 100_000)
    encoded = LzmaCodec(level=0).encode(memoryview(data))
    assert encoded.startswith(b"\xfd7zXZ\x00")
    assert lzma.decompress(encoded, format=lzma.FORMAT_XZ) == data


def test_chunks_are_larger_than_the_default() -> None:
    # A long window needs long chunks to pay off.
    assert LzmaCodec.chunk_size == 16 << 20


def test_decoder_memory_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    data = sample_data("smooth", 100_000)
    encoded = LzmaCodec(level=9).encode(memoryview(data))  # declares a 64 MiB dictionary
    monkeypatch.setattr(lzma_module, "_DECODER_MEMLIMIT", 1 << 20)
    with pytest.raises(lzma.LZMAError, match=r"[Mm]emory"):
        LzmaCodec().decode(memoryview(encoded), len(data))
