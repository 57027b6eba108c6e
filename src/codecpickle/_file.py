"""``codecpickle.open``: a file kept open to load objects lazily from it.

:class:`File` wraps a path or a *seekable* binary file object (a local
file, an ``io.BytesIO``, an fsspec file, which reads with range requests)
and loads its streams one after another.  With ``lazy=True`` the arrays of
a loaded object are :class:`~codecpickle.LazyArray` objects that read
their data from the file when used, so the file stays open until
:meth:`File.close` (or the end of a ``with`` block)::

    import io
    import numpy as np
    import codecpickle

    buffer = io.BytesIO()
    codecpickle.dump({"x": np.arange(1_000_000)}, buffer, compress="zstd")
    buffer.seek(0)
    with codecpickle.open(buffer) as f:
        obj = f.load(lazy=True)
        assert obj["x"].shape == (1_000_000,)
        assert obj["x"][10:13].tolist() == [10, 11, 12]
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import threading
import warnings
import weakref
from collections.abc import Mapping
from typing import Any

from . import _format as fmt
from ._index import StreamIndex, read_index
from ._lazy import ChunkCache, LazyUnpickler, read_chunk
from ._manifest import writer_environment
from ._progress import Reporter, reporting
from ._sources import StreamSource
from .codecs import Codec, codec_from_header
from .errors import (
    CodecPickleError,
    CorruptDataError,
    InvalidOptionError,
    SizeLimitError,
    TruncatedFileError,
)

__all__ = ["File", "open"]

_builtin_open = open


def open(
    file: Any, *, storage_options: Mapping[str, Any] | None = None
) -> File:
    """Open ``file`` for loading, lazily or not; see :class:`File`.

    ``file`` is a path, a URL (any fsspec protocol, with
    ``storage_options``: read with one range request per read) or a
    seekable binary file object.  Paths and URLs are opened here and closed
    by :meth:`File.close`; file objects are left open.
    """
    from . import _remote

    file, remote = _remote.route(file, storage_options)
    if remote is not None:
        fs, path = _remote._filesystem(remote)
        # No read-ahead cache: a lazy array fetches exactly its chunks.
        return File(fs.open(path, "rb", cache_type="none"), owned=True)
    if isinstance(file, str | os.PathLike):
        return File(_builtin_open(file, "rb"), owned=True)
    return File(file, owned=False)


class File:
    """An open codecpickle file: :meth:`load` reads its streams one after
    another, from where the file object was when it was opened.

    Lazy arrays loaded from it read through it: they work until it is
    closed.  Reads are serialised by a lock, so arrays may be read from
    several threads.
    """

    def __init__(self, file: Any, *, owned: bool = False) -> None:
        if not callable(getattr(file, "read", None)) or not _seekable(file):
            raise InvalidOptionError(
                "codecpickle.open() expects a path or a seekable binary file object. "
                f"Got {type(file).__name__}, which cannot seek: use codecpickle.load() instead."
            )
        self._file = file
        self._owned = owned
        self._lock = threading.Lock()
        self._position = file.tell()
        self._size = file.seek(0, io.SEEK_END)
        file.seek(self._position)
        #: Decoded chunks shared by this file's lazy arrays (a small LRU).
        self.cache = ChunkCache()
        self._closer = weakref.finalize(self, file.close) if owned else None

    # -- reading -------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return bool(getattr(self._file, "closed", False))

    def read_at(self, offset: int, size: int) -> bytes:
        """Exactly ``size`` bytes at ``offset`` of the file."""
        if offset < 0 or offset + size > self._size:
            raise TruncatedFileError(
                f"{size} bytes at offset {offset} reach past the end of the file ({self._size})"
            )
        if self.closed:
            raise ValueError("read from a closed codecpickle.File (its lazy arrays need it open)")
        with self._lock:
            self._file.seek(offset)
            return StreamSource(self._file).read_exact(size, "data")

    def index(self) -> StreamIndex:
        """The index of the next stream (see :func:`codecpickle._index.read_index`)."""
        with self._lock:
            self._file.seek(self._position)
            return read_index(self._file, offset=self._position)

    # -- loading -------------------------------------------------------------

    def load(self, *, lazy: bool = False, **options: Any) -> Any:
        """Load the next object.

        ``lazy=True`` returns it with every out-of-band array payload as a
        :class:`~codecpickle.LazyArray`, reading only the opcode chunks now
        (see the guide, "Lazy arrays", for which objects keep lazy arrays and
        which get real ones).  Otherwise, and for the other ``options``
        (``threads``, ``verify``, ``safe``, ``allow``, ``max_buffer_size``,
        ``mmap_mode``, ``progress``), as :func:`codecpickle.load`; a lazy
        load's ``progress`` counts the opcode chunks read, out of their total.
        """
        if not lazy:
            return self._load_eagerly(options)
        _check_lazy_options(options)
        index = self.index()
        meta = index.meta
        codec: Codec | None = None
        if meta["codec"] != fmt.NO_CODEC:
            codec = codec_from_header(meta["codec"], meta.get("params", {}), meta.get("provider"))
        total = sum(chunk.end - chunk.offset for chunk in index.opcode_chunks)
        with reporting(options.get("progress"), total, "load") as reporter:
            opcodes = _Opcodes(self, index, codec, reporter)
            unpickler = LazyUnpickler(self, opcodes, index, codec)
            with writer_environment(index.manifest, None):
                try:
                    result = unpickler.load()
                except CodecPickleError:
                    raise
                except MemoryError as exc:
                    raise SizeLimitError(
                        f"the pickle stream asks for too much memory: {exc}"
                    ) from exc
                except (pickle.UnpicklingError, EOFError, struct.error, IndexError) as exc:
                    raise CorruptDataError(f"the pickle stream is damaged: {exc}") from exc
            opcodes.finish()
        if unpickler.used != len(index.payloads):
            raise CorruptDataError(
                f"{len(index.payloads) - unpickler.used} payload record(s) were never used by "
                "the pickle stream"
            )
        if unpickler.unclaimed():
            warnings.warn(
                "lazy=True: an array payload of this stream reached a callable codecpickle does "
                "not know how to keep lazy; the object was loaded eagerly",
                UserWarning,
                stacklevel=2,
            )
            return self._load_eagerly({})
        self._position = index.end
        with self._lock:
            self._file.seek(self._position)  # just past the stream, as load() leaves it
        return result

    def _load_eagerly(self, options: dict[str, Any]) -> Any:
        from ._api import load

        with self._lock:
            self._file.seek(self._position)
            try:
                return load(self._file, **options)
            finally:
                self._position = self._file.tell()

    # -- closing -------------------------------------------------------------

    def close(self) -> None:
        """Close the file if :func:`open` opened it (a path); lazy arrays
        loaded from it can no longer be read."""
        if self._closer is not None:
            self._closer()

    def __enter__(self) -> File:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Opcodes:
    """The opcode chunks of one stream as the file the unpickler reads,
    each read, checked and decoded when the unpickler gets to it."""

    def __init__(
        self, file: File, index: StreamIndex, codec: Codec | None, reporter: Reporter | None
    ) -> None:
        self._file = file
        self._chunks = list(index.opcode_chunks)
        self._codec = codec
        self._reporter = reporter
        self._next = 0
        self._data = memoryview(b"")
        self._pos = 0

    def _load(self) -> None:
        if self._next >= len(self._chunks):
            raise CorruptDataError("the pickle stream ends before its STOP opcode")
        chunk = self._chunks[self._next]
        self._next += 1
        self._data = memoryview(read_chunk(self._file, chunk, self._codec, 0))
        self._pos = 0
        if self._reporter is not None:
            self._reporter.advance(chunk.end - chunk.offset)

    def _take(self, limit: int) -> memoryview:
        while self._pos >= len(self._data):
            self._load()
        start = self._pos
        self._pos = min(len(self._data), start + limit)
        return self._data[start : self._pos]

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            raise CorruptDataError("the pickle stream asked to read to the end")
        parts = []
        while size:
            piece = self._take(size)
            parts.append(piece.tobytes())
            size -= len(piece)
        return b"".join(parts)

    def readinto(self, out: Any) -> int:
        view = memoryview(out).cast("B")
        filled = 0
        while filled < view.nbytes:
            piece = self._take(view.nbytes - filled)
            view[filled : filled + len(piece)] = piece
            filled += len(piece)
        return filled

    def readline(self) -> bytes:
        parts = []
        while True:
            piece = self._take(1)
            parts.append(piece.tobytes())
            if piece.tobytes() == b"\n":
                return b"".join(parts)

    def finish(self) -> None:
        if self._pos != len(self._data) or self._next != len(self._chunks):
            raise CorruptDataError("opcode bytes follow the pickle's STOP opcode")


# What a lazy load may be given: decoding happens when arrays are used, in
# the thread that uses them, so ``threads`` has nothing to do.
_LAZY_DEFAULTS = {"threads": None, "verify": True, "safe": None, "allow": None,
                  "mmap_mode": None, "max_buffer_size": None, "progress": None}


def _check_lazy_options(options: dict[str, Any]) -> None:
    unknown = sorted(set(options) - set(_LAZY_DEFAULTS))
    if unknown:
        raise InvalidOptionError(f"load() got unexpected options {unknown}")
    given = sorted(
        name
        for name, value in options.items()
        if name not in ("threads", "max_buffer_size", "progress")
        and value != _LAZY_DEFAULTS[name]
        and not (name == "safe" and value is False)  # an explicit unrestricted load
    )
    if given:
        raise InvalidOptionError(
            f"lazy=True cannot be combined with {', '.join(given)} (restricted loads, memory "
            "maps and unverified loads are eager only); load without lazy=True for these"
        )


def load_lazily(
    file: Any, *, storage_options: Mapping[str, Any] | None = None, **options: Any
) -> Any:
    """``codecpickle.load(file, lazy=True)``: a path or URL is kept open
    until the last lazy array loaded from it is gone; a file object is left
    just past the stream, and must stay open while its lazy arrays are used."""
    _check_lazy_options(options)
    handle = open(file, storage_options=storage_options)
    return handle.load(lazy=True, progress=options.get("progress"))


def _seekable(file: Any) -> bool:
    try:
        return bool(file.seekable())
    except (AttributeError, OSError, ValueError):
        return False
