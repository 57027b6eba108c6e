"""The ``zstd`` codec: Zstandard through the ``zstandard`` package (the default codec)."""

from __future__ import annotations

import threading
from typing import ClassVar

import zstandard

from ._base import Codec
from ._bounded import check_exact_output

__all__ = ["ZstdCodec"]


class ZstdCodec(Codec):
    """Zstandard frames, levels -131072 (fastest) to 22 (strongest).

    The best speed/ratio balance of the built-ins, hence the default.  It
    decompresses straight into the caller's buffer (:meth:`decode_into`), so
    loading a compressed array costs no extra copy.
    """

    name: ClassVar[str] = "zstd"
    default_level: ClassVar[int] = 3
    min_level: ClassVar[int] = -(1 << 17)  # ZSTD_minCLevel(): zstd's fastest level
    max_level: ClassVar[int] = zstandard.MAX_COMPRESSION_LEVEL

    def __init__(self, level: int | None = None) -> None:
        super().__init__(level)
        # zstandard's (de)compression contexts must not be shared between
        # threads; one per thread keeps reuse (contexts are costly to build)
        # without a lock.
        self._local = threading.local()

    def _compressor(self) -> zstandard.ZstdCompressor:
        try:
            return self._local.compressor
        except AttributeError:
            self._local.compressor = zstandard.ZstdCompressor(level=self.level)
            return self._local.compressor

    def _decompressor(self) -> zstandard.ZstdDecompressor:
        try:
            return self._local.decompressor
        except AttributeError:
            self._local.decompressor = zstandard.ZstdDecompressor()
            return self._local.decompressor

    def encode(self, data: memoryview, itemsize: int = 1) -> bytes:
        """Compress one chunk into one frame that records its content size."""
        return self._compressor().compress(data)

    def decode(self, data: memoryview, raw_size: int) -> bytearray:
        """Decompress one frame into a new buffer of exactly ``raw_size`` bytes."""
        # Not ZstdDecompressor.decompress: it allocates whatever size the
        # frame header claims, which a damaged or hostile file chooses.
        out = bytearray(raw_size)
        self.decode_into(data, memoryview(out))
        return out

    def decode_into(self, data: memoryview, out: memoryview) -> None:
        """Decompress one frame straight into ``out`` (no intermediate copy)."""
        out = out.cast("B") if out.format != "B" or out.ndim != 1 else out
        declared = zstandard.frame_content_size(data)
        if declared not in (-1, out.nbytes):  # -1: the frame does not say
            check_exact_output(self.name, declared, out.nbytes)
        reader = self._decompressor().stream_reader(data, read_across_frames=False)
        with reader:
            filled = 0
            while filled < out.nbytes:
                count = reader.readinto(out[filled:])
                if count == 0:
                    break
                filled += count
            check_exact_output(self.name, filled, out.nbytes)
            # Anything still readable is output beyond the declared size.
            check_exact_output(self.name, filled + len(reader.read(1)), out.nbytes)
