"""Bounded one-shot decompression shared by the stream-object codecs.

zlib, bz2, lzma and lz4.frame all offer a decompressor object whose
``decompress(data, max_length)`` stops producing output at ``max_length``.
Asking for one byte more than the declared raw size bounds what a hostile
chunk can make us allocate (a decompression bomb stops at ``raw_size + 1``)
while still telling "too much output" apart from "exactly right".
"""

from __future__ import annotations

from typing import Any, Protocol

from ..errors import CorruptDataError


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
