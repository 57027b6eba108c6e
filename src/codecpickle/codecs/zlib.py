"""The ``zlib`` codec: DEFLATE in a zlib wrapper (RFC 1950), from the standard library."""

from __future__ import annotations

import zlib
from typing import ClassVar

from ._bounded import DecompressorCodec

__all__ = ["ZlibCodec"]


class ZlibCodec(DecompressorCodec):
    """DEFLATE with a zlib header and Adler-32 trailer; levels 0 (store) to 9.

    Always available and widely readable, but slower and weaker than zstd.
    Stateless apart from ``level``, so it is thread-safe; zlib releases the
    GIL while it works, so chunks compress in parallel.
    """

    name: ClassVar[str] = "zlib"
    default_level: ClassVar[int] = 6
    min_level: ClassVar[int] = 0
    max_level: ClassVar[int] = 9

    def encode(self, data: memoryview, itemsize: int = 1) -> bytes:
        """Compress one chunk (``itemsize`` is ignored)."""
        return zlib.compress(data, self.level)

    def new_decompressor(self) -> zlib._Decompress:
        """A zlib-format decompressor for one chunk."""
        return zlib.decompressobj()
