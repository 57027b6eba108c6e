"""Reading what users already have: plain pickles and joblib files.

``codecpickle.load`` looks at an input's first bytes (never its name): the
codecpickle magic goes to the container reader; a pickle stream, bare or
wrapped in gzip, zlib, bz2, xz, lzma, zstd or lz4, comes here.  joblib
files are such streams with array data between the opcodes, so one loader
reads both, without importing joblib:

* ``_detect.py``: the magic numbers;
* ``_decompress.py``: streaming decompressors, one per format;
* ``_stream.py``: the decompressed bytes as the unpicklers read them, with
  size bounds and errors that say where;
* ``_joblib.py``: joblib's array wrappers, checked and rebuilt;
* ``_unpicklers.py``: the C unpickler for plain pickles, pure-Python ones
  for joblib streams and restricted loads.
"""

from __future__ import annotations

import copyreg
import io
import os
import pickle
import stat
import struct
import warnings
from typing import Any, BinaryIO

from .._array_hooks import ArrayHook
from ..errors import (
    CodecPickleError,
    CorruptDataError,
    FileFormatError,
    ForbiddenGlobalError,
    SizeLimitError,
    TruncatedFileError,
)
from ._decompress import open_decompressed
from ._detect import HEAD_SIZE, Kind, detect
from ._joblib import MapTarget
from ._stream import CountingReader, ForeignStream
from ._unpicklers import FastUnpickler, JoblibStreamFound, JoblibUnpickler, SafeJoblibUnpickler

__all__ = ["Kind", "detect", "load_foreign", "load_foreign_bytes", "sniff"]

_MAGIC_START = b"\x89CPK"


def sniff(file: Any) -> tuple[Any, Kind | None]:
    """Look at the first bytes of ``file`` without consuming them.

    Returns the file to read from (``file`` itself, sought back, or for
    inputs that cannot be sought a wrapper that serves the bytes looked at
    first) and the foreign kind, or None for a codecpickle stream or an
    input of no known kind (which the container reader then reports).
    """
    seekable = _seekable(file)
    start = file.tell() if seekable else 0
    head = _read_head(file)
    if seekable:
        file.seek(start)
    else:
        file = _Prefixed(head, file)
    if head.startswith(_MAGIC_START[: len(head)]):
        return file, None
    return file, detect(head)


def load_foreign(
    file: Any,
    kind: Kind,
    *,
    mmap_mode: str | None = None,
    allowed: frozenset[str] | None = None,
    max_buffer_size: int | None = None,
    array_hook: ArrayHook | None = None,
) -> Any:
    """Load the pickle (or joblib) stream ``file`` holds; ``kind`` as
    :func:`sniff` found it.  Options as for ``codecpickle.load``;
    ``array_hook`` sees every array built (see ``_array_hooks.py``)."""
    if kind is Kind.JOBLIB_ZFILE:
        raise FileFormatError(
            "this is a joblib < 0.9.3 compressed file ('ZF' header), a format joblib >= 0.10 "
            "no longer writes and codecpickle does not read; load it once with joblib.load "
            "and dump it again"
        )
    what = _describe(kind)
    seekable = _seekable(file)
    start = file.tell() if seekable else 0
    target = _map_target(file, kind, mmap_mode, start)

    def open_stream() -> ForeignStream:
        if seekable:
            file.seek(start)
        if kind.compressed:
            counted = CountingReader(file)
            reader = open_decompressed(kind, counted)  # type: ignore[arg-type]
            return ForeignStream(
                reader,
                what,
                max_buffer_size=max_buffer_size,
                input_read=lambda: counted.count,
            )
        return ForeignStream(
            file,
            what,
            size=_size_of(file),
            seekable=seekable,
            max_buffer_size=max_buffer_size,
        )

    def load() -> Any:
        if allowed is not None:
            stream = open_stream()
            unpickler = SafeJoblibUnpickler(stream, allowed, target)
            try:
                result = _hooked(unpickler, array_hook).load()
            except ForbiddenGlobalError as refused:
                if not refused.names:
                    raise
                # Every refused global, from a walk of the whole stream that
                # steps over joblib's array data (see _inspect_foreign).
                from .._inspect_foreign import complete_refusal

                if seekable:
                    file.seek(start)
                    raise complete_refusal(refused, file, kind, unpickler.admits) from None
                if unpickler.refused_in_inner_pickle:
                    raise complete_refusal(refused, None, kind, unpickler.admits) from None
                raise
        else:
            result, stream = _load_unrestricted(
                open_stream, target, array_hook, restartable=seekable
            )
        if kind.compressed:
            # Read the compressed stream to its end, so that its own
            # checks (length, checksum) run and nothing is left unread.
            stream.finish()
        return result

    return _translate_errors(load, what, unrestricted=allowed is None)


def load_foreign_bytes(
    data: Any,
    kind: Kind,
    *,
    allowed: frozenset[str] | None = None,
    max_buffer_size: int | None = None,
) -> Any:
    """:func:`load_foreign` for a bytes-like object (``loads``)."""
    source = io.BytesIO(data if isinstance(data, bytes) else memoryview(data).cast("B"))
    return load_foreign(source, kind, allowed=allowed, max_buffer_size=max_buffer_size)


# -- helpers -----------------------------------------------------------------


def _load_unrestricted(
    open_stream: Any, target: MapTarget | None, array_hook: ArrayHook | None, *, restartable: bool
) -> tuple[Any, ForeignStream]:
    if restartable:
        # The C unpickler first: plain pickles load at its speed, and a
        # joblib stream is recognised at its first array wrapper.
        stream = open_stream()
        try:
            return _hooked(FastUnpickler(stream), array_hook).load(), stream
        except JoblibStreamFound:
            pass
    stream = open_stream()
    return _hooked(JoblibUnpickler(stream, target), array_hook).load(), stream


def _hooked(unpickler: Any, array_hook: ArrayHook | None) -> Any:
    if array_hook is not None:
        array_hook.attach(unpickler)
        unpickler._array_hook = array_hook  # joblib's arrays
    return unpickler


def _describe(kind: Kind) -> str:
    if kind is Kind.PICKLE:
        return "the pickle stream"
    return f"the {kind.value}-compressed stream"


def _translate_errors(load: Any, what: str, *, unrestricted: bool) -> Any:
    try:
        return load()
    except CodecPickleError:
        raise
    except MemoryError as exc:
        raise SizeLimitError(f"{what} asks for more memory than exists: {exc}") from exc
    except EOFError as exc:
        raise TruncatedFileError(f"{what} ends before its STOP opcode") from exc
    except pickle.UnpicklingError as exc:
        if "truncated" in str(exc):
            raise TruncatedFileError(f"{what} ends early: {exc}") from exc
        raise CorruptDataError(f"{what} is damaged: {exc}") from exc
    except (struct.error, IndexError) as exc:
        raise CorruptDataError(f"{what} is damaged: {exc}") from exc
    except Exception as exc:
        if unrestricted and _raised_by_named_code(exc):
            raise  # the file's own code failed: its exception is the caller's to see
        # Foreign streams carry no checksums: damage shows up as whatever
        # the unpickler (or a C constructor it was sent to) trips over.
        raise CorruptDataError(f"{what} does not unpickle: {type(exc).__name__}: {exc}") from exc


# Frames that belong to the unpicklers themselves, not to code a file names.
_MACHINERY_FILES = (
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),  # codecpickle
    os.path.abspath(pickle.__file__),
    os.path.abspath(copyreg.__file__),
    "<frozen importlib",
)


def _raised_by_named_code(exc: BaseException) -> bool:
    """Whether ``exc`` was raised in Python code other than the unpickler's
    own: a class or function the file names (its ``__setstate__``, a
    reconstructor) rather than the unpickler meeting damaged bytes."""
    traceback = exc.__traceback__
    if traceback is None:
        return False
    while traceback.tb_next is not None:
        traceback = traceback.tb_next
    filename = traceback.tb_frame.f_code.co_filename
    return not filename.startswith(_MACHINERY_FILES)


def _map_target(file: Any, kind: Kind, mmap_mode: str | None, start: int) -> MapTarget | None:
    """Where joblib arrays are mapped from, or None (with a warning when
    ``mmap_mode`` was asked for but cannot be honoured)."""
    if mmap_mode is None:
        return None
    if kind.compressed:
        _warn_not_mapped(f"the file is {kind.value}-compressed")
        return None
    name = getattr(file, "name", None)
    if isinstance(name, os.PathLike):
        name = os.fspath(name)
    if not isinstance(name, str) or not _seekable(file) or not os.path.isfile(name):
        _warn_not_mapped(f"{type(file).__name__} is not a named, seekable file")
        return None
    return MapTarget(os.path.abspath(name), mmap_mode, start)


def _warn_not_mapped(reason: str) -> None:
    warnings.warn(
        f"mmap_mode is ignored: {reason}; the data is loaded into memory",
        UserWarning,
        stacklevel=5,
    )


def _seekable(file: Any) -> bool:
    try:
        return bool(file.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def _size_of(file: Any) -> int | None:
    try:
        status = os.fstat(file.fileno())
        if stat.S_ISREG(status.st_mode):
            return status.st_size - file.tell()
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        pass
    if isinstance(file, io.BytesIO):
        return len(file.getbuffer()) - file.tell()
    return None


def _read_head(file: Any) -> bytes:
    parts = []
    got = 0
    while got < HEAD_SIZE:
        more = file.read(HEAD_SIZE - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


class _Prefixed:
    """A non-seekable binary file whose first bytes were already read:
    serves them again, then reads on."""

    def __init__(self, head: bytes, file: BinaryIO) -> None:
        self._head = memoryview(head)
        self._file = file

    def read(self, size: int = -1) -> bytes:
        if not self._head:
            return self._file.read(size)
        if size < 0:
            rest = self._file.read()
            data, self._head = self._head.tobytes() + (rest or b""), memoryview(b"")
            return data
        data, self._head = self._head[:size].tobytes(), self._head[size:]
        return data

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if not self._head:
            readinto = getattr(self._file, "readinto", None)
            if readinto is not None:
                return int(readinto(view) or 0)
            data = self._file.read(view.nbytes)
            view[: len(data)] = data
            return len(data)
        count = min(view.nbytes, self._head.nbytes)
        view[:count] = self._head[:count]
        self._head = self._head[count:]
        return count

    def readline(self, size: int = -1) -> bytes:
        if not self._head:
            return self._file.readline(size)
        head = self._head.tobytes()
        end = head.find(b"\n")
        if end >= 0:
            self._head = self._head[end + 1 :]
            return head[: end + 1]
        self._head = memoryview(b"")
        return head + self._file.readline()

    def seekable(self) -> bool:
        return False
