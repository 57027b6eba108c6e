"""The ``lzma`` codec: LZMA2 in the xz container, from the standard library."""

from __future__ import annotations

import lzma
from typing import ClassVar

from ._bounded import DecompressorCodec

__all__ = ["LzmaCodec"]

# The decoder allocates the dictionary size declared in the stream header.
# Preset 9 needs 65 MiB; a hostile header may claim 1.5 GiB.  Refusing more
# than any preset uses keeps a damaged file from exhausting memory.
_DECODER_MEMLIMIT = 128 << 20


class LzmaCodec(DecompressorCodec):
    """xz-format LZMA2 with presets 0 (fast) to 9 (strongest, slowest)."""

    name: ClassVar[str] = "lzma"
    default_level: ClassVar[int] = 6
    min_level: ClassVar[int] = 0
    max_level: ClassVar[int] = 9
    # LZMA's dictionary (8 MiB at preset 6, 64 MiB at preset 9) only pays off
    # when a chunk is long enough to fill it; 4 MiB chunks would cut every
    # match window short and cost several percent of ratio.
    chunk_size: ClassVar[int] = 16 << 20

    def encode(self, data: memoryview, itemsize: int = 1) -> bytes:
        """Compress one chunk into an xz stream (``itemsize`` is ignored)."""
        return lzma.compress(data, format=lzma.FORMAT_XZ, preset=self.level)

    def new_decompressor(self) -> lzma.LZMADecompressor:
        """An xz decompressor for one chunk, its dictionary capped at 128 MiB."""
        return lzma.LZMADecompressor(format=lzma.FORMAT_XZ, memlimit=_DECODER_MEMLIMIT)
