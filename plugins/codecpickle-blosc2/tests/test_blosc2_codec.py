"""Blosc2Codec against codecpickle's codec contract, plus its own parameters."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest
from codecpickle_blosc2 import INNER_CODECS, SHUFFLES, Blosc2Codec

from codecpickle.codecs import ZstdCodec, codec_provider, get_codec
from codecpickle.errors import CorruptDataError, InvalidOptionError
from codecpickle.testing import CodecContractTests


class TestBlosc2Codec(CodecContractTests):
    codec_class = Blosc2Codec
    invalid_params = (
        {"codec": "brotli"},
        {"codec": "ZSTD"},
        {"codec": 5},
        {"shuffle": "delta"},
        {"shuffle": True},
    )


class TestBlosc2BitshuffleLz4(TestBlosc2Codec):
    codec_params: ClassVar[dict[str, Any]] = {"codec": "lz4", "shuffle": "bitshuffle"}


class TestBlosc2NoshuffleBlosclz(TestBlosc2Codec):
    codec_params: ClassVar[dict[str, Any]] = {"codec": "blosclz", "shuffle": "noshuffle"}


def test_found_through_its_entry_point() -> None:
    assert get_codec("blosc2") is Blosc2Codec
    assert codec_provider("blosc2") == {"distribution": "codecpickle-blosc2", "version": "0.1.0"}


@pytest.mark.parametrize("codec", INNER_CODECS)
@pytest.mark.parametrize("shuffle", SHUFFLES)
def test_every_combination_round_trips_and_rebuilds(codec: str, shuffle: str) -> None:
    blosc = Blosc2Codec(level=5, codec=codec, shuffle=shuffle)
    assert Blosc2Codec.from_params(blosc.params) == blosc
    array = np.cumsum(np.random.default_rng(0).normal(size=100_000)).astype(np.float64)
    encoded = blosc.encode(memoryview(array).cast("B"), 8)
    assert bytes(blosc.decode(memoryview(encoded), array.nbytes)) == array.tobytes()


def test_errors_name_the_accepted_values() -> None:
    with pytest.raises(InvalidOptionError, match="'blosclz', 'lz4', 'lz4hc', 'zlib', 'zstd'"):
        Blosc2Codec(codec="snappy")
    with pytest.raises(InvalidOptionError, match="'shuffle', 'bitshuffle', 'noshuffle'"):
        Blosc2Codec(shuffle="yes")


def test_itemsize_drives_the_shuffle() -> None:
    smooth = np.sin(np.linspace(0, 100, 1_000_000)).astype(np.float32)
    view = memoryview(smooth).cast("B")
    blosc = Blosc2Codec()
    assert len(blosc.encode(view, 4)) < 0.8 * len(blosc.encode(view, 1))


def test_shuffle_beats_plain_zstd_on_smooth_floats() -> None:
    smooth = memoryview(np.sin(np.linspace(0, 100, 1_000_000)).astype(np.float32)).cast("B")
    assert len(Blosc2Codec().encode(smooth, 4)) < len(ZstdCodec().encode(smooth, 4))


def test_a_chunk_declaring_another_size_is_refused_before_decoding() -> None:
    data = bytes(1000)
    encoded = memoryview(Blosc2Codec().encode(memoryview(data), 1))
    with pytest.raises(CorruptDataError, match="declares 1000 bytes, expected 10"):
        Blosc2Codec().decode(encoded, 10)
