"""Bounded decompression shared by the stream-object codecs.

zlib, bz2, lzma and lz4.frame all offer a decompressor object whose
``decompress(data, max_length)`` stops producing output at ``max_length``.
Asking for one byte more than the declared raw size bounds what a hostile
chunk can make us allocate (a decompression bomb stops at ``raw_size + 1``)
while still telling "too much output" apart from "exactly right".
"""

from __future__ import annotations

import abc
from typing import Any, Protocol

from ..errors import CorruptDataError
from ._base import Codec

#: Output produced per call by :func:`decompress_into`.  One multi-MiB
#: ``bytes`` per chunk is mapped fresh by the allocator and page-faulted
#: every time; pieces of this size are recycled.  Measured here (64 chunks of
#: 4 MiB of small int64s, one thread, after freeing 512 MiB): lz4 0.362 s in
#: one piece, 0.222 s in 64 KiB pieces (python-lz4's per-call overhead),
#: 0.133 s in 1 MiB pieces; zlib 0.46 s either way.
OUTPUT_PIECE = 1 << 20


class _Decompressor(Protocol):
    eof: bool
    unused_data: Any

    def decompress(self, data: Any, max_length: int, /) -> bytes: ...


def decompress_exactly(
    decompressor: _Decompressor, data: memoryview, raw_size: int, codec_name: str
) -> bytes:
    """Decompress one complete stream that must hold exactly ``raw_size`` bytes.

    ``raw_size + 1`` is never 0, which matters for zlib, where a ``max_length``
    of 0 means "unlimited".
    """
    out = decompressor.decompress(data, raw_size + 1)
    check_exact_output(codec_name, len(out), raw_size)
    if not decompressor.eof:
        raise CorruptDataError(f"codec {codec_name!r}: the compressed stream is truncated")
    if decompressor.unused_data:
        raise CorruptDataError(
            f"codec {codec_name!r}: unexpected bytes after the compressed stream"
        )
    return out


def check_exact_output(codec_name: str, produced: int, raw_size: int) -> None:
    """Raise :class:`~codecpickle.errors.CorruptDataError` unless a decoder
    produced exactly the declared raw size."""
    if produced > raw_size:
        raise CorruptDataError(
            f"codec {codec_name!r}: the chunk decodes to more than its declared {raw_size} bytes"
        )
    if produced < raw_size:
        raise CorruptDataError(
            f"codec {codec_name!r}: the chunk decodes to {produced} bytes, "
            f"expected {raw_size}"
        )


def decompress_into(
    decompressor: _Decompressor, data: memoryview, out: memoryview, codec_name: str
) -> None:
    """Decompress one complete stream straight into ``out``, which it must
    fill exactly, in pieces of at most :data:`OUTPUT_PIECE` bytes."""
    total = out.nbytes
    filled = 0
    pending: Any = data
    # zlib keeps the input it has not consumed in ``unconsumed_tail``; the
    # others buffer it internally and take empty input to go on.
    keeps_tail = hasattr(decompressor, "unconsumed_tail")
    while not decompressor.eof:
        # One byte more than fits tells "too much output" from "exactly".
        piece = decompressor.decompress(pending, min(OUTPUT_PIECE, total - filled + 1))
        pending = decompressor.unconsumed_tail if keeps_tail else b""  # type: ignore[attr-defined]
        if filled + len(piece) > total:
            check_exact_output(codec_name, filled + len(piece), total)
        out[filled : filled + len(piece)] = piece
        filled += len(piece)
        if not piece and (not pending if keeps_tail else decompressor.needs_input):
            break  # out of input before the end of the stream
    check_exact_output(codec_name, filled, total)
    if not decompressor.eof:
        raise CorruptDataError(f"codec {codec_name!r}: the compressed stream is truncated")
    if decompressor.unused_data:
        raise CorruptDataError(
            f"codec {codec_name!r}: unexpected bytes after the compressed stream"
        )


class DecompressorCodec(Codec):
    """A codec whose backend decompresses through a decompressor object with
    ``decompress(data, max_length)`` (zlib, gzip, bz2, lzma, lz4 frames):
    :meth:`decode` and :meth:`decode_into` both come from
    :meth:`new_decompressor`, bounded by the chunk's raw size."""

    @abc.abstractmethod
    def new_decompressor(self) -> Any:
        """A fresh decompressor for one chunk (never shared between threads)."""

    def decode(self, data: memoryview, raw_size: int) -> bytes:
        """Decompress one chunk, producing at most ``raw_size + 1`` bytes."""
        return decompress_exactly(self.new_decompressor(), data, raw_size, self.name)

    def decode_into(self, data: memoryview, out: memoryview) -> None:
        """Decompress one chunk into ``out`` in small pieces."""
        out = out.cast("B") if out.format != "B" or out.ndim != 1 else out
        decompress_into(self.new_decompressor(), data, out, self.name)
