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
from ._lazy import ChunkCache, LazyUnpickler, Probes, ReadOptions, read_chunk
from ._manifest import writer_environment
from ._progress import Reporter, reporting
from ._reader import OpcodeReads
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
        self._header_flags: dict[int, int] = {}
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
        which get real ones).  The other ``options`` are as for
        :func:`codecpickle.load`: ``safe``/``allow`` restrict the object
        graph as usual (arrays stay lazy), ``verify=False`` skips the
        checksums of array data stored uncompressed when it is read,
        ``max_buffer_size`` bounds every chunk and every read of an array;
        ``threads`` is accepted and unused (lazy arrays decode in the
        thread that reads them), ``mmap_mode`` is refused (see
        :func:`lazy_settings`), and ``progress`` counts the opcode chunks
        read, out of their total (array data is read later, when used).
        """
        if not lazy:
            return self._load_eagerly(options)
        allowed, verify, requested = lazy_settings(options)
        index = self.index()
        read_options = ReadOptions(verify, requested, index.offset)
        _check_chunk_sizes(index, read_options)
        meta = index.meta
        codec: Codec | None = None
        if meta["codec"] != fmt.NO_CODEC:
            codec = codec_from_header(meta["codec"], meta.get("params", {}), meta.get("provider"))
        total = sum(chunk.end - chunk.offset for chunk in index.opcode_chunks)
        with reporting(options.get("progress"), total, "load") as reporter:
            opcodes = _Opcodes(self, index, codec, read_options, reporter)
            probes = Probes(self, index, codec, read_options)
            unpickler: Any
            if allowed is None:
                unpickler = LazyUnpickler(opcodes, probes, index)
            else:
                from ._lazy_safe import LazyRestrictedUnpickler

                unpickler = LazyRestrictedUnpickler(opcodes, probes, allowed)
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
                except Exception as exc:
                    if allowed is None:
                        raise  # the file's own code failed: the caller's to see
                    # Only admitted constructors ran: their failure means a bad stream.
                    raise CorruptDataError(
                        f"the pickle stream does not unpickle: {type(exc).__name__}: {exc}"
                    ) from exc
            opcodes.finish()
        if probes.used != len(index.payloads):
            raise CorruptDataError(
                f"{len(index.payloads) - probes.used} payload record(s) were never used by "
                "the pickle stream"
            )
        if probes.unclaimed():
            warnings.warn(
                "lazy=True: an array payload of this stream reached a callable codecpickle does "
                "not know how to keep lazy; the object was loaded eagerly",
                UserWarning,
                stacklevel=2,
            )
            return self._load_eagerly(options)
        self._position = index.end
        with self._lock:
            self._file.seek(self._position)  # just past the stream, as load() leaves it
        return result

    def header_flags(self, offset: int) -> int:
        """The header flags of the stream at ``offset`` (read once, when a
        lazy array first needs them)."""
        flags = self._header_flags.get(offset)
        if flags is None:
            head = self.read_at(offset, fmt.HEADER_FIXED.size)
            flags = self._header_flags[offset] = fmt.HEADER_FIXED.unpack(head)[2]
        return flags

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


class _Opcodes(OpcodeReads):
    """The opcode chunks of one stream as the file the unpickler reads,
    each read, checked and decoded when the unpickler gets to it.  It is
    also the reader a restricted unpickler takes (``readinto1``,
    ``unread``, ``check_declared_size``, ``input_offset``)."""

    def __init__(
        self, file: File, index: StreamIndex, codec: Codec | None, options: ReadOptions,
        reporter: Reporter | None = None,
    ) -> None:
        self._file = file
        self._reporter = reporter
        self._chunks = list(index.opcode_chunks)
        self._codec = codec
        self._options = options
        self.max_buffer_size = options.max_buffer_size
        self.requested_max_buffer_size = options.requested_max_buffer_size
        self._next = 0
        self._data = memoryview(b"")
        self._pos = 0
        self._text: tuple[memoryview, bytes] | None = None
        #: Stored bytes of the opcode chunks read so far (for the opcode
        #: budget of restricted loads).
        self.input_offset = 0

    def _load(self) -> None:
        if self._next >= len(self._chunks):
            raise CorruptDataError("the pickle stream ends before its STOP opcode")
        chunk = self._chunks[self._next]
        self._next += 1
        self._data = memoryview(read_chunk(self._file, chunk, self._codec, 0))
        self._pos = 0
        self.input_offset += chunk.stored_size + fmt.CHUNK_HEADER.size + fmt.CHECKSUM.size
        if self._reporter is not None:
            self._reporter.advance(chunk.end - chunk.offset)

    def _take(self, limit: int) -> memoryview:
        while self._pos >= len(self._data):
            self._load()
        start = self._pos
        self._pos = min(len(self._data), start + limit)
        return self._data[start : self._pos]

    def check_declared_size(self, nbytes: int, what: str) -> None:
        """Refuse a pickled object over the buffer bound, before reading it."""
        self._options.check_size(nbytes, what, self._options.stream_offset)

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            raise CorruptDataError("the pickle stream asked to read to the end")
        if size > len(self._data) - self._pos:
            self.check_declared_size(size, "a pickled object")
        parts = []
        while size:
            piece = self._take(size)
            parts.append(piece.tobytes())
            size -= len(piece)
        return b"".join(parts)

    def readline(self) -> bytes:
        """One line, newline included, across chunks; bounded like any
        buffer the input sizes."""
        parts = []
        length = 0
        while True:
            while self._pos >= len(self._data):
                self._load()
            if self._text is None or self._text[0] is not self._data:
                self._text = (self._data, self._data.tobytes())  # once per chunk
            end = self._text[1].find(b"\n", self._pos)
            stop = len(self._data) if end < 0 else end + 1
            length += stop - self._pos
            self.check_declared_size(length, "a line of the pickle stream")
            parts.append(self._take(stop - self._pos).tobytes())
            if end >= 0:
                return b"".join(parts)

    def finish(self) -> None:
        if self._pos != len(self._data) or self._next != len(self._chunks):
            raise CorruptDataError("opcode bytes follow the pickle's STOP opcode")


def _check_chunk_sizes(index: StreamIndex, options: ReadOptions) -> None:
    """Refuse, before reading any, chunks that decode to more than the
    buffer bound (each is decoded whole when it is read)."""
    chunks = [*index.opcode_chunks, *(c for p in index.payloads for c in p.chunks)]
    for chunk in chunks:
        options.check_size(max(chunk.raw_size, chunk.stored_size), "a chunk", chunk.offset)


# What a lazy load may be given: decoding happens when arrays are used, in
# the thread that uses them, so ``threads`` has nothing to do.
_LAZY_OPTIONS = frozenset(
    {"threads", "verify", "safe", "allow", "mmap_mode", "max_buffer_size", "progress"}
)


def lazy_settings(options: dict[str, Any]) -> tuple[frozenset[str] | None, bool, int | None]:
    """Check a lazy load's options; return its allowlist (None:
    unrestricted), whether raw payloads are verified, and the caller's
    buffer bound (None: the default).

    ``mmap_mode`` is refused: it is the other way of not reading array data
    up front (the OS pages a mapped uncompressed file in as arrays are
    used), and the two do not combine.
    """
    from ._api import _load_guards

    unknown = sorted(set(options) - _LAZY_OPTIONS)
    if unknown:
        raise InvalidOptionError(f"load() got unexpected options {unknown}")
    if options.get("mmap_mode") is not None:
        raise InvalidOptionError(
            f"lazy=True cannot be combined with mmap_mode={options['mmap_mode']!r}: both defer "
            "reading array data, in two different ways. For an uncompressed local file, "
            "load(file, mmap_mode='r') without lazy=True returns np.memmap arrays that the OS "
            "reads page by page as they are used; lazy=True (any codec, also URLs) returns "
            "LazyArray objects that decode only the chunks a slice needs. Choose one."
        )
    guards = _load_guards(options.get("safe"), options.get("allow"),
                          options.get("max_buffer_size"))
    return guards.allowed, bool(options.get("verify", True)), guards.max_buffer_size


def load_lazily(
    file: Any, *, storage_options: Mapping[str, Any] | None = None, **options: Any
) -> Any:
    """``codecpickle.load(file, lazy=True)``: a path or URL is kept open
    until the last lazy array loaded from it is gone; a file object is left
    just past the stream, and must stay open while its lazy arrays are used."""
    lazy_settings(options)  # refused before the file is opened
    handle = open(file, storage_options=storage_options)
    return handle.load(lazy=True, **options)


def _seekable(file: Any) -> bool:
    try:
        return bool(file.seekable())
    except (AttributeError, OSError, ValueError):
        return False
