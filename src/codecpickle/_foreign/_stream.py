"""The decompressed bytes of a foreign input, as the unpicklers read them.

:class:`ForeignStream` serves a pickle stream to either unpickler: the C
one (``read``/``readinto``/``readline``, and no ``peek``, so that it reads
exactly what each opcode needs and never past the array data joblib writes
between opcodes) and the pure-Python ones (``readinto1`` under a buffered
reader).  It counts the bytes it hands out, bounds every size the input
declares, and turns the decompressors' and the file's failures into
codecpickle errors that say where they happened.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from .._sources import default_buffer_limit
from ..errors import CodecPickleError, CorruptDataError, SizeLimitError, TruncatedFileError
from ._decompress import DECOMPRESSION_ERRORS

__all__ = ["CountingReader", "ForeignStream"]


class ForeignStream:
    """Reads from ``reader`` (the decompressed bytes, or the file itself for
    an uncompressed input); ``what`` names the input in messages.

    ``size`` is the number of bytes the input holds when it is an
    uncompressed regular file (declared sizes beyond it are refused early);
    ``seekable`` says whether ``reader`` may be sought (uncompressed files),
    which lets :meth:`unread` give back bytes read ahead and :meth:`skip`
    jump over mapped array data.
    """

    def __init__(
        self,
        reader: BinaryIO,
        what: str,
        *,
        size: int | None = None,
        seekable: bool = False,
        max_buffer_size: int | None = None,
        input_read: Callable[[], int] | None = None,
    ) -> None:
        self._reader = reader
        self._what = what
        self._size = size
        self._seekable = seekable
        self._max_buffer = default_buffer_limit() if max_buffer_size is None else max_buffer_size
        #: The bounds restricted loads read (as from a container reader).
        self.max_buffer_size = self._max_buffer
        self.requested_max_buffer_size = max_buffer_size
        self._input_read = input_read
        #: Bytes of the (decompressed) stream consumed so far.
        self.position = 0
        #: Of those, array data joblib writes between opcodes.
        self.array_bytes = 0

    @property
    def input_offset(self) -> int:
        """Input bytes read so far, for a restricted load's opcode budget
        (opcodes may be a bounded multiple of the input): the compressed
        bytes for a compressed stream, plus array data, which is not
        opcodes."""
        if self._input_read is None:
            return self.position
        return self._input_read() + self.array_bytes

    # -- the C unpickler's file interface ----------------------------------

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            raise CorruptDataError(f"the pickle stream in {self._what} asked to read to the end")
        self.check_declared_size(size, "a pickled object", self.position)
        data = self._call(self._reader.read, size)
        self.position += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        self.check_declared_size(view.nbytes, "a pickled object", self.position)
        filled = 0
        while filled < view.nbytes:
            count = self._call(self._reader.readinto, view[filled:])
            if not count:
                break
            filled += count
        self.position += filled
        return filled

    def readline(self) -> bytes:
        line = self._call(self._reader.readline)
        self.position += len(line)
        return line

    # -- the pure-Python unpicklers' interface -------------------------------

    def readinto1(self, buffer: Any) -> int:
        """Up to ``len(buffer)`` bytes (0 only at the end of the input)."""
        count = self._call(self._reader.readinto, memoryview(buffer).cast("B"))
        self.position += count
        return count

    def unread(self, count: int) -> None:
        """Give back ``count`` bytes read ahead past the end of the pickle,
        so a file object is left just after it (when it can be sought)."""
        if count and self._seekable:
            self._call(self._reader.seek, -count, os.SEEK_CUR)
            self.position -= count

    def skip(self, count: int) -> None:
        """Move ``count`` bytes forward without reading them (mapped array
        data); only for seekable inputs."""
        self._check_available(count, "array data")
        self._call(self._reader.seek, count, os.SEEK_CUR)
        self.position += count

    def check_declared_size(self, nbytes: int, what: str, position: int | None = None) -> None:
        """Refuse a size the input declares before anything is allocated:
        over the buffer bound, or (given ``position``, where its bytes
        start) over what an uncompressed input has left."""
        if nbytes > self._max_buffer:
            at = self.position if position is None else position
            raise SizeLimitError(
                f"{what} at offset {at} of {self._what} declares {nbytes} bytes, "
                f"over the limit of {self._max_buffer} bytes; if the input is trusted and the "
                "memory exists, raise it with load(..., max_buffer_size=...)"
            )
        if position is not None:
            self._check_available(nbytes, what, position)

    def _check_available(self, nbytes: int, what: str, position: int | None = None) -> None:
        position = self.position if position is None else position
        if self._size is not None and nbytes > self._size - position:
            raise TruncatedFileError(
                f"{what} at offset {position} of {self._what} declares {nbytes} bytes "
                f"but only {self._size - position} are left"
            )

    def buffers(self) -> Iterator[Any]:
        """Out-of-band buffers: a file holds none."""
        raise CorruptDataError(
            f"the pickle stream in {self._what} refers to out-of-band data, which a file "
            "cannot carry"
        )
        yield  # pragma: no cover - makes this a generator

    def finish(self) -> None:
        """Read a compressed stream to its end: its trailer is checked, and
        data after the pickle's STOP opcode is refused."""
        extra = self._call(self._reader.read, 1 << 16)
        if extra:
            raise CorruptDataError(
                f"{len(extra)} or more bytes follow the pickle's STOP opcode at decompressed "
                f"offset {self.position} of {self._what}"
            )

    # -- errors -----------------------------------------------------------

    def _call(self, method: Any, *args: Any) -> Any:
        try:
            return method(*args)
        except CodecPickleError:
            raise
        except EOFError as exc:
            raise TruncatedFileError(
                f"{self._what} ends before its end-of-stream marker (after {self.position} "
                f"decompressed bytes): {exc}"
            ) from exc
        except DECOMPRESSION_ERRORS as exc:
            raise CorruptDataError(
                f"{self._what} cannot be read past decompressed offset {self.position}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc


class CountingReader:
    """A binary file's ``read``/``readinto``, counting the bytes read (the
    compressed input a decompressor consumes)."""

    def __init__(self, file: Any) -> None:
        self._file = file
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._file.read(size)
        self.count += len(data or b"")
        return data or b""

    def readinto(self, buffer: Any) -> int:
        readinto = getattr(self._file, "readinto", None)
        if readinto is None:
            view = memoryview(buffer).cast("B")
            data = self._file.read(view.nbytes) or b""
            view[: len(data)] = data
            count = len(data)
        else:
            count = readinto(buffer) or 0
        self.count += count
        return count
