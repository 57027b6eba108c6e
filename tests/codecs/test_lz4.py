"""The lz4 codec: the contract, lz4.frame's level range, real LZ4 frames."""

from __future__ import annotations

import lz4.frame
import numpy as np
import pytest

from codecpickle.codecs import Lz4Codec
from codecpickle.testing import CodecContractTests, sample_data


class TestLz4Codec(CodecContractTests):
    codec_class = Lz4Codec


def test_level_range_is_lz4_frames() -> None:
    assert (Lz4Codec.min_level, Lz4Codec.max_level) == (
        lz4.frame.COMPRESSIONLEVEL_MIN,
        lz4.frame.COMPRESSIONLEVEL_MAX,
    )
    assert Lz4Codec.default_level == 0


@pytest.mark.parametrize("level", [0, lz4.frame.COMPRESSIONLEVEL_MINHC, 16])
def test_chunks_are_lz4_frames_recording_their_size(level: int) -> None:
    data = sample_data("text", 100_000)
    encoded = Lz4Codec(level=level).encode(memoryview(data))
    assert lz4.frame.get_frame_info(encoded)["content_size"] == len(data)
    assert lz4.frame.decompress(encoded) == data


def test_high_compression_levels_compress_better() -> None:
    # Bytes from a 4-letter alphabet: short repeats everywhere, which the HC
    # compressor's deeper search finds more of.
    data = memoryview(np.random.default_rng(0).integers(0, 4, 1 << 20, dtype=np.uint8))
    assert len(Lz4Codec(level=12).encode(data)) < len(Lz4Codec(level=0).encode(data))
