"""The ``lz4`` codec: the LZ4 frame format through the ``lz4`` package."""

from __future__ import annotations

from typing import ClassVar

import lz4.frame

from ._bounded import DecompressorCodec

__all__ = ["Lz4Codec"]


class Lz4Codec(DecompressorCodec):
    """LZ4 frames: the fastest built-in codec, with a modest ratio.

    Levels follow ``lz4.frame``: 0 to 2 are the fast compressor (all the
    same), 3 and above the high-compression (HC) one, up to 16.  Every call
    builds its own frame context, so the codec is thread-safe.
    """

    name: ClassVar[str] = "lz4"
    default_level: ClassVar[int] = 0
    min_level: ClassVar[int] = lz4.frame.COMPRESSIONLEVEL_MIN
    max_level: ClassVar[int] = lz4.frame.COMPRESSIONLEVEL_MAX
    fast_level: ClassVar[int | None] = lz4.frame.COMPRESSIONLEVEL_MINHC - 1

    def encode(self, data: memoryview, itemsize: int = 1) -> bytes:
        """Compress one chunk into one LZ4 frame (``itemsize`` is ignored)."""
        # The container checksums every chunk already; lz4's own content
        # checksum would only add a second hash over the same bytes.
        return lz4.frame.compress(data, compression_level=self.level, store_size=True)

    def new_decompressor(self) -> lz4.frame.LZ4FrameDecompressor:
        """A decompressor for one LZ4 frame."""
        return lz4.frame.LZ4FrameDecompressor()
