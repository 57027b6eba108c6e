"""Streaming decompression of the formats plain pickles and joblib files
come wrapped in.

Each opener returns a binary reader over the decompressed bytes that
decompresses as it is read, a bounded piece at a time: nothing reads the
whole input or holds the whole output.  Errors are translated by the
caller (``_stream.py``), which knows where in the stream it was.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zlib
from collections.abc import Callable
from typing import Any, BinaryIO

import lz4.frame
import zstandard

from .._format import MIN_CHUNK_SIZE
from ._detect import Kind

__all__ = ["DECOMPRESSION_ERRORS", "open_decompressed"]

# Compressed bytes read from the input per step.
_INPUT_PIECE = 128 << 10

#: Exceptions the readers raise on damaged input (truncation is EOFError).
DECOMPRESSION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # gzip.BadGzipFile, bz2 "Invalid data stream"
    zlib.error,
    lzma.LZMAError,
    RuntimeError,  # lz4.frame
    ValueError,
    zstandard.ZstdError,
)


class _ZlibReader(io.RawIOBase):
    """A zlib stream (RFC 1950, as joblib's ``compress="zlib"`` writes it)
    decompressed as it is read; the standard library has no file class for
    it.  ``max_length`` bounds each step's output to what was asked for."""

    def __init__(self, file: BinaryIO) -> None:
        super().__init__()
        self._file = file
        self._decompressor = zlib.decompressobj()
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        out = memoryview(buffer).cast("B")
        decompressor = self._decompressor
        while not decompressor.eof:
            if not self._pending:
                self._pending = self._file.read(_INPUT_PIECE)
                if not self._pending:
                    raise EOFError("the zlib stream ends before its end-of-stream marker")
            data = decompressor.decompress(self._pending, out.nbytes)
            self._pending = decompressor.unconsumed_tail
            if data:
                out[: len(data)] = data
                return len(data)
        return 0


def _zstd(file: BinaryIO) -> BinaryIO:
    reader = zstandard.ZstdDecompressor().stream_reader(
        file, read_size=_INPUT_PIECE, read_across_frames=True, closefd=False
    )
    return io.BufferedReader(_ZstdAdapter(reader), MIN_CHUNK_SIZE)


class _ZstdAdapter(io.RawIOBase):
    """zstandard's reader as a raw stream; a stream that stops short of a
    frame's end reads as truncated, not as a clean end."""

    def __init__(self, reader: Any) -> None:
        super().__init__()
        self._reader = reader

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return int(self._reader.readinto(buffer))


def _lz4(file: BinaryIO) -> BinaryIO:
    return lz4.frame.LZ4FrameFile(file, mode="rb")  # type: ignore[no-any-return]


# The readers wrap a file the caller owns and closes; they hold no other
# resource, so they are not closed themselves.
_OPENERS: dict[Kind, Callable[[BinaryIO], BinaryIO]] = {
    Kind.GZIP: lambda file: gzip.GzipFile(fileobj=file, mode="rb"),  # type: ignore[dict-item]
    Kind.BZ2: lambda file: bz2.BZ2File(file, mode="rb"),  # type: ignore[dict-item]
    Kind.XZ: lambda file: lzma.LZMAFile(  # type: ignore[dict-item]  # noqa: SIM115
        file, mode="rb", format=lzma.FORMAT_XZ
    ),
    Kind.LZMA: lambda file: lzma.LZMAFile(  # type: ignore[dict-item]  # noqa: SIM115
        file, mode="rb", format=lzma.FORMAT_ALONE
    ),
    Kind.ZLIB: lambda file: io.BufferedReader(_ZlibReader(file), MIN_CHUNK_SIZE),
    Kind.ZSTD: _zstd,
    Kind.LZ4: _lz4,
}


def open_decompressed(kind: Kind, file: BinaryIO) -> BinaryIO:
    """A reader of the decompressed bytes of ``file``, which holds a stream
    in the compression format ``kind``."""
    return _OPENERS[kind](file)
