"""The ``lz4`` codec: the LZ4 frame format through the ``lz4`` package."""

from __future__ import annotations

from typing import ClassVar

import lz4.frame

from ._base import Codec
from ._bounded import decompress_exactly

__all__ = ["Lz4Codec"]


class Lz4Codec(Codec):
    """LZ4 frames: the fastest built-in codec, with a modest ratio.

    Levels follow ``lz4.frame``: 0 to 2 are the fast compressor (all the
    same), 3 and above the high-compression (HC) one, up to 16.  Every call
    builds its own frame context, so the codec is thread-safe.
    """

    name: ClassVar[str] = "lz4"
    default_level: ClassVar[int] = 0
    min_level: ClassVar[int] = lz4.frame.COMPRESSIONLEVEL_MIN
    max_level: ClassVar[int] = lz4.frame.COMPRESSIONLEVEL_MAX

    def encode(self, data: memoryview, itemsize: int = 1) -> bytes:
        """Compress one chunk into one LZ4 frame (``itemsize`` is ignored)."""
        # The container checksums every chunk already; lz4's own content
        # checksum would only add a second hash over the same bytes.
        return lz4.frame.compress(data, compression_level=self.level, store_size=True)

    def decode(self, data: memoryview, raw_size: int) -> bytes:
        """Decompress one LZ4 frame, producing at most ``raw_size + 1`` bytes."""
        return decompress_exactly(lz4.frame.LZ4FrameDecompressor(), data, raw_size, self.name)
