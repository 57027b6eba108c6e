"""The ``bz2`` codec: the Burrows-Wheeler compressor from the standard library."""

from __future__ import annotations

import bz2
from typing import ClassVar

from ._bounded import DecompressorCodec

__all__ = ["Bz2Codec"]


class Bz2Codec(DecompressorCodec):
    """bzip2 with block sizes of 100 kB (level 1) to 900 kB (level 9).

    Strong on text-like data, slow on everything.  Each call uses its own
    (de)compressor object, so the codec is thread-safe.
    """

    name: ClassVar[str] = "bz2"
    default_level: ClassVar[int] = 9
    min_level: ClassVar[int] = 1
    max_level: ClassVar[int] = 9

    def encode(self, data: memoryview, itemsize: int = 1) -> bytes:
        """Compress one chunk (``itemsize`` is ignored)."""
        return bz2.compress(data, self.level)

    def new_decompressor(self) -> bz2.BZ2Decompressor:
        """A decompressor for one chunk; a second concatenated stream is refused."""
        return bz2.BZ2Decompressor()
