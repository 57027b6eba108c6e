"""The ``gzip`` codec: DEFLATE in a gzip member (RFC 1952), written deterministically."""

from __future__ import annotations

import struct
import zlib
from typing import ClassVar

from ._bounded import DecompressorCodec

__all__ = ["GzipCodec"]

# ID1 ID2, CM=8 (deflate), FLG=0 (no name, no comment), MTIME=0, XFL=0, OS=255
# ("unknown").  zlib's own gzip wrapper writes the building platform's OS byte
# and Python's gzip module a time stamp; both would make identical inputs give
# different files, so the header is fixed here.
_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
_RAW_DEFLATE = -zlib.MAX_WBITS
_GZIP_ONLY = 16 + zlib.MAX_WBITS


class GzipCodec(DecompressorCodec):
    """One gzip member per chunk; levels 0 (store) to 9.

    Each chunk is a valid ``.gz`` member, byte-identical on every run and
    platform (no time stamp, no OS byte).  Slower than zlib by one CRC-32 per
    chunk; prefer zlib unless a gzip tool must read the chunks.
    """

    name: ClassVar[str] = "gzip"
    default_level: ClassVar[int] = 6
    min_level: ClassVar[int] = 0
    max_level: ClassVar[int] = 9

    def encode(self, data: memoryview, itemsize: int = 1) -> bytes:
        """Compress one chunk into a gzip member (``itemsize`` is ignored)."""
        deflate = zlib.compressobj(self.level, zlib.DEFLATED, _RAW_DEFLATE)
        trailer = struct.pack("<II", zlib.crc32(data), data.nbytes & 0xFFFFFFFF)
        return b"".join((_HEADER, deflate.compress(data), deflate.flush(), trailer))

    def new_decompressor(self) -> zlib._Decompress:
        """A gzip-member decompressor (zlib verifies the CRC-32 and size)."""
        return zlib.decompressobj(_GZIP_ONLY)
