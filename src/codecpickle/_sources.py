"""Exact reads from the two kinds of input a reader consumes.

``StreamSource`` wraps a binary file object (file, pipe, socket) and never
reads past what it is asked for, so a stream holding several objects can be
read one object at a time.  ``MemorySource`` wraps bytes already in memory
(``loads``) or a memory map (``mmap_mode``) and can hand out zero-copy views.
Both track the offset from the start of the stream for error messages.
"""

from __future__ import annotations

import io
import os
import stat
import tempfile
from typing import Any

import numpy as np

from .errors import EmptyInputError, InvalidOptionError, SizeLimitError, TruncatedFileError

# Large reads go straight into their destination in pieces of this size so
# a short read from a pipe costs one more call, not a copy.
_READ_PIECE = 16 << 20

# Where the physical memory size cannot be read (Windows): 64 GiB.
_FALLBACK_BUFFER_LIMIT = 64 << 30


def allocate(nbytes: int, what: str, offset: int) -> np.ndarray:
    """A fresh, writable byte buffer of ``nbytes``.

    numpy (not ``bytearray``) because large numpy allocations get
    transparent huge pages and are not zero-filled eagerly.
    """
    try:
        return np.empty(nbytes, dtype=np.uint8)
    except (MemoryError, ValueError) as exc:
        raise SizeLimitError(
            f"{what} at offset {offset} declares {nbytes} bytes, which cannot be allocated"
        ) from exc


def default_buffer_limit() -> int:
    """The default ``max_buffer_size``: this machine's physical memory.

    A size declared by the input beyond it cannot be a file worth loading,
    even from a stream whose length is unknown (pipes, sockets), so it is
    refused before any allocation.  Inputs of known size are also bounded
    by what their remaining bytes can hold.
    """
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return _FALLBACK_BUFFER_LIMIT


def raise_truncated(what: str, offset: int, wanted: int, got: int) -> None:
    """Report input that ends early; no input at all is :class:`EmptyInputError`."""
    if offset + got == 0:
        raise EmptyInputError("the input is empty: expected a codecpickle stream")
    raise TruncatedFileError(
        f"the input ends inside {what} at offset {offset + got}: "
        f"expected {wanted} bytes, got {got}"
    )


def real_fileno(file: Any) -> int | None:
    """The descriptor whose bytes ``file`` reads unchanged, or None.

    Only a plain file (``io.FileIO``) or a buffered reader or random-access
    file directly over one qualifies: their bytes *are* the descriptor's.
    Anything else may transform what it reads (``gzip.open``, ``bz2.open``,
    ``lzma.open``, zip members, fsspec's ``compression=``: their
    ``fileno()`` is the *compressed* file underneath) or have side effects
    on ``fileno()`` (``SpooledTemporaryFile`` rolls over to disk), so it is
    read as a stream, without knowing its size and without mapping it.
    """
    file = _unwrap_named_temporary(file)
    if isinstance(file, io.BufferedReader | io.BufferedRandom):
        file = file.raw
    if not isinstance(file, io.FileIO) or file.closed:
        return None
    try:
        return file.fileno()
    except (OSError, ValueError):
        return None


def _unwrap_named_temporary(file: Any) -> Any:
    # tempfile.NamedTemporaryFile returns a thin delegating wrapper around
    # the real file object, which it exposes as ``.file``.
    wrapper = getattr(tempfile, "_TemporaryFileWrapper", None)
    if wrapper is not None and isinstance(file, wrapper):
        return file.file
    return file


def size_of(file: Any) -> int | None:
    """Bytes from the current position to the end of ``file``, when it is
    a regular file read unchanged (see :func:`real_fileno`); else None."""
    fileno = real_fileno(file)
    if fileno is None:
        return None
    try:
        status = os.fstat(fileno)
        if not stat.S_ISREG(status.st_mode):
            return None
        return status.st_size - int(file.tell())
    except (AttributeError, OSError, ValueError):
        return None


class ReadintoReader:
    """``read`` for an input that only has ``readinto`` (and whatever else
    it has, passed through), for code that reads with ``read``."""

    def __init__(self, file: Any) -> None:
        self._file = file
        self.read = _checked_read(file)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)


def readable(file: Any) -> Any:
    """``file``, or a :class:`ReadintoReader` over it when it has
    ``readinto`` but no ``read``."""
    return file if callable(getattr(file, "read", None)) else ReadintoReader(file)


_TEXT_MODE_HINT = (
    "load() needs a file opened in binary mode: open the file with 'rb', not 'r'"
)


class StreamSource:
    """Exact reads from a binary file object (anything with ``read`` or
    ``readinto``)."""

    zero_copy = False

    def __init__(self, file: Any, size: int | None = None) -> None:
        self._readinto = getattr(file, "readinto", None)
        self._read = _checked_read(file)
        self._file = file
        self.offset = 0
        #: Bytes the stream holds from its start, when known (regular files).
        self.size = size

    def remaining(self) -> int | None:
        return None if self.size is None else self.size - self.offset

    def read_upto(self, nbytes: int) -> bytes:
        """Read up to ``nbytes``; fewer only at the end of the input."""
        parts: list[bytes] = []
        got = 0
        while got < nbytes:
            more = self._read(nbytes - got)
            if not more:
                break
            parts.append(more)
            got += len(more)
        self.offset += got
        return b"".join(parts)

    def read_exact(self, nbytes: int, what: str) -> bytes:
        """Read exactly ``nbytes`` or raise :class:`TruncatedFileError`."""
        data = self._read(nbytes)
        if data is None:
            data = b""
        if len(data) != nbytes:
            parts = [data]
            got = len(data)
            while got < nbytes:
                more = self._read(nbytes - got)
                if not more:
                    self._truncated(what, nbytes, got)
                parts.append(more)
                got += len(more)
            data = b"".join(parts)
        self.offset += nbytes
        return data

    def readinto_exact(self, out: memoryview, what: str) -> None:
        """Fill ``out`` completely or raise :class:`TruncatedFileError`."""
        total = out.nbytes
        if self._readinto is None:
            pos = 0
            while pos < total:
                step = min(_READ_PIECE, total - pos)
                out[pos : pos + step] = self.read_exact(step, what)
                pos += step
            return
        got = 0
        while got < total:
            count = self._readinto(out[got : got + _READ_PIECE])
            if not count:
                self._truncated(what, total, got)
            got += count
        self.offset += total

    def view(self, nbytes: int, what: str) -> memoryview:
        """The next ``nbytes`` as a buffer (a copy for streams)."""
        return memoryview(self.read_exact(nbytes, what))

    def skip(self, nbytes: int, what: str) -> None:
        """Step over the next ``nbytes``: one seek when the file can seek
        and its size is known (so running past the end is caught), else a
        read-through in bounded pieces."""
        remaining = self.remaining()
        if remaining is not None and _seekable(self._file):
            if nbytes > remaining:
                self._truncated(what, nbytes, remaining)
            self._file.seek(nbytes, io.SEEK_CUR)
            self.offset += nbytes
            return
        scratch = np.empty(min(nbytes, _SKIP_PIECE), dtype=np.uint8).data
        left = nbytes
        while left:
            step = min(left, len(scratch))
            self.readinto_exact(scratch[:step], what)
            left -= step

    def _truncated(self, what: str, wanted: int, got: int) -> None:
        raise_truncated(what, self.offset, wanted, got)


def _seekable(file: Any) -> bool:
    try:
        return bool(file.seekable())
    except (AttributeError, OSError, ValueError):
        return False


# Read-through step over bytes a stream cannot seek past.
_SKIP_PIECE = 1 << 20


def _checked_read(file: Any) -> Any:
    """``file.read``, made from ``readinto`` when there is no ``read``, and
    refusing text: a text-mode file gives ``str`` or fails to decode."""
    read = getattr(file, "read", None)
    if not callable(read):
        readinto = file.readinto

        def read(size: int) -> bytes:
            buffer = bytearray(size)
            count = readinto(memoryview(buffer))
            return bytes(buffer[: count or 0])

    def checked(size: int) -> bytes:
        try:
            data = read(size)
        except UnicodeDecodeError as exc:
            raise InvalidOptionError(f"{_TEXT_MODE_HINT} (reading it gave: {exc})") from None
        if isinstance(data, str):
            raise InvalidOptionError(f"{_TEXT_MODE_HINT} (its read() returned str)")
        return data if data is not None else b""

    return checked


class MemorySource:
    """Exact reads from a buffer in memory or a memory map."""

    def __init__(self, data: Any, *, zero_copy: bool = False) -> None:
        self._data = memoryview(data).cast("B")
        self.offset = 0
        self.size = self._data.nbytes
        #: Hand out views of the underlying memory instead of copies
        #: (memory maps); payload checksums are then not verified on load.
        self.zero_copy = zero_copy

    def remaining(self) -> int:
        return self.size - self.offset

    def view(self, nbytes: int, what: str) -> memoryview:
        if nbytes > self.size - self.offset:
            raise_truncated(what, self.offset, nbytes, self.size - self.offset)
        start = self.offset
        self.offset += nbytes
        return self._data[start : start + nbytes]

    def read_upto(self, nbytes: int) -> bytes:
        return self.view(min(nbytes, self.size - self.offset), "").tobytes()

    def read_exact(self, nbytes: int, what: str) -> bytes:
        return self.view(nbytes, what).tobytes()

    def readinto_exact(self, out: memoryview, what: str) -> None:
        out[:] = self.view(out.nbytes, what)
