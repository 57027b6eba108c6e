"""BrotliCodec against codecpickle's codec contract, plus its own parameter."""

from __future__ import annotations

from typing import Any, ClassVar

import brotli
import pytest
from codecpickle_brotli import BrotliCodec

from codecpickle.codecs import codec_provider, get_codec
from codecpickle.errors import InvalidOptionError
from codecpickle.testing import CodecContractTests, sample_data


class TestBrotliCodec(CodecContractTests):
    codec_class = BrotliCodec
    invalid_params = ({"lgwin": 9}, {"lgwin": 25}, {"lgwin": 22.0}, {"lgwin": True})
    # Quality 11 on a 4 MiB chunk takes seconds; the level loop covers it on small data.
    large_size_level = 1


class TestBrotliCodecSmallWindow(TestBrotliCodec):
    codec_params: ClassVar[dict[str, Any]] = {"lgwin": 16}


def test_found_through_its_entry_point() -> None:
    assert get_codec("brotli") is BrotliCodec
    assert codec_provider("brotli") == {"distribution": "codecpickle-brotli", "version": "0.1.0"}


def test_params_record_the_window() -> None:
    assert BrotliCodec().params == {"level": 5, "lgwin": 22}
    assert BrotliCodec.from_params({"level": 9, "lgwin": 18}) == BrotliCodec(9, lgwin=18)


def test_chunks_are_plain_brotli_streams() -> None:
    data = sample_data("text", 100_000)
    assert brotli.decompress(BrotliCodec(level=9).encode(memoryview(data))) == data


def test_lgwin_error_names_the_range() -> None:
    with pytest.raises(InvalidOptionError, match="from 10 to 24"):
        BrotliCodec(lgwin=30)
