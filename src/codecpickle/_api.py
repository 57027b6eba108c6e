"""dump / dumps / load / loads: normalise the target, resolve the codec, and
drive the pickler into the container writer (or the container reader into
the unpickler)."""

from __future__ import annotations

import contextlib
import io
import mmap
import os
import pickle
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Final

from . import _config, _remote
from . import _format as fmt
from ._atomic import atomic_write
from ._file import load_lazily
from ._filters import AUTO as AUTO_FILTERS
from ._filters import filters_for
from ._foreign import detect as detect_foreign
from ._foreign import load_foreign, load_foreign_bytes, sniff
from ._index import read_manifest
from ._manifest import environment, writer_environment
from ._memmap import MappedFile
from ._pickling import Pickler, Unpickler
from ._pool import ChunkPool
from ._progress import ProgressCallback, Reporter, reporting
from ._reader import ContainerReader
from ._reseal import mark_raw_payloads_mutable
from ._safe import make_allowlist
from ._sources import MemorySource, StreamSource, readable, real_fileno, size_of
from ._targets import check_binary_reader, check_binary_writer, local_path
from ._types import AllowEntry, Compress, MmapMode, PathType, ReadableFile, WritableFile
from ._writer import ContainerWriter
from .codecs import Codec, codec_for_path, codec_provider, resolve_compress
from .errors import (
    CodecPickleError,
    CorruptDataError,
    EmptyInputError,
    InvalidOptionError,
    PickleStreamError,
    SizeLimitError,
)

__all__ = ["dump", "dumps", "load", "loads"]


class _Unset:
    def __repr__(self) -> str:
        return "<not given>"


#: Default of ``compress``: lets a path's extension pick the codec.
UNSET: Final = _Unset()

MMAP_MODES: Final = {"r": mmap.ACCESS_READ, "r+": mmap.ACCESS_WRITE, "c": mmap.ACCESS_COPY}


def dump(
    obj: Any,
    file: PathType | WritableFile,
    compress: Compress | _Unset = UNSET,
    *,
    threads: int | None = None,
    chunk_size: int | None = None,
    fsync: bool = True,
    storage_options: Mapping[str, Any] | None = None,
    progress: bool | ProgressCallback | None = None,
    filters: str | _Unset | None = UNSET,
) -> None:
    """Serialise ``obj`` into ``file``.

    ``file`` is a path (``str``, ``bytes`` or ``os.PathLike``) or a binary
    file object open for writing (anything with ``write``: pipes, sockets,
    ``gzip.open`` files and zip members work; nothing is sought or told).
    A path is written atomically: the data goes to a temporary file in the
    same directory, which replaces ``file`` only once complete (and, unless
    ``fsync=False``, flushed to disk), so an error or crash never leaves a
    partial file behind and never damages the previous one.  An existing
    file that may not be written (``chmod 444``) raises
    :class:`PermissionError` and a directory :class:`IsADirectoryError`,
    before anything is written; errors name ``file``, never the temporary
    file.  A text-mode file raises
    :class:`~codecpickle.errors.InvalidOptionError`.  A file object
    is written at its current position, flushed, and left just after the
    stream, so several objects can be dumped one after another.

    ``compress`` selects the codec: ``None``/``False``/``0`` for none,
    ``True`` for zstd at its default level, an int for that zstd level, a
    codec name (``"lz4"``), a ``(name, level)`` tuple, a ``"name:level"``
    string or a :class:`~codecpickle.Codec` instance.  When it is not given
    and ``file`` is a path, the extension may pick the codec (``.zst``,
    ``.lz4``, ``.gz``, ``.bz2``, ``.xz``, ``.lzma``, ``.z``); otherwise the
    stream is not compressed.  An explicit ``compress`` always wins.

    ``threads`` is the number of threads compressing chunks, next to the
    calling thread which pickles (default: ``CODECPICKLE_THREADS`` if set,
    else the CPUs this process may use).  The output is identical whatever
    the thread count.  ``chunk_size`` overrides the codec's chunk size in
    bytes.  Options not given here may come from an enclosing
    :func:`codecpickle.config` block.

    ``progress=True`` shows a progress bar (bytes written, throughput) on
    standard error for dumps that last more than half a second;
    ``progress=callable`` calls ``callable(done_bytes, None)`` as bytes are
    written and ``callable(total, total)`` at the end (see "Progress" in
    the user guide).

    ``file`` may also be a URL (``s3://``, ``gs://``, ``az://``,
    ``memory://``, ``file://``, any fsspec protocol; needs
    ``pip install 'codecpickle[fsspec]'`` and the protocol's package), with
    ``storage_options`` for its filesystem (credentials, endpoint...).  The
    object appears only once complete: nothing is left under the URL by a
    failed dump (see ``docs/guide.md``).

    ``filters`` transforms array chunks before the codec: ``"auto"``
    (default) picks, per chunk, whichever of no filter, byte shuffle and
    delta compresses a sample best; ``None`` uses none; ``"shuffle"`` or
    ``"delta"`` forces one wherever the element size allows it.  It applies
    to compressed streams only.  When not given, an enclosing
    :func:`codecpickle.config` block may set it.  At the codec's default
    level or a faster one, chunks of 1 MiB or more that no option shrinks by
    15% are stored as they are (random floats: a few percent smaller for
    several times the time); higher levels compress whatever shrinks.

    Invalid options raise :class:`~codecpickle.errors.InvalidOptionError`
    before ``file`` is created or truncated.
    """
    file, remote = _remote.route(file, storage_options)
    if remote is not None:
        _remote.check_writable(remote)
    path = remote.url if remote is not None else local_path(file)
    compress = _config.pick("compress", compress, UNSET)
    progress = _config.pick("progress", progress, None)
    if isinstance(compress, _Unset):
        codec = codec_for_path(path) if path is not None else None
    else:
        codec = resolve_compress(compress)
    threads = _check_threads(threads)
    chunk_size = _check_chunk_size(chunk_size, codec)
    policy = _filter_policy(filters, codec)
    if remote is not None:
        with _remote.atomic_upload(remote) as out, reporting(progress, None, "dump") as rep:
            _dump_to(obj, out if rep is None else rep.wrap_writer(out), codec, threads, chunk_size,
                     policy)
    elif path is not None:
        with atomic_write(path, fsync=fsync) as out, reporting(progress, None, "dump") as rep:
            _dump_to(obj, out if rep is None else rep.wrap_writer(out), codec, threads, chunk_size,
                     policy)
    else:
        check_binary_writer(file)
        with reporting(progress, None, "dump") as rep:
            _dump_to(obj, file if rep is None else rep.wrap_writer(file), codec, threads,
                     chunk_size, policy)
        # A reader at the other end of a pipe or socket waits for the END
        # record: hand it over now rather than whenever the buffer fills.
        flush = getattr(file, "flush", None)
        if callable(flush):
            flush()


def _filter_policy(filters: Any, codec: Codec | None) -> str | int:
    """The ``filters`` policy of a dump: the argument, else the enclosing
    ``config`` block's, else ``"auto"``."""
    if filters is not UNSET:
        return filters_for(filters, codec)
    configured = _config.pick("filters", UNSET, UNSET)
    if configured is UNSET:
        return filters_for(AUTO_FILTERS, codec)
    return filters_for(configured, codec, configured=True)


def dumps(
    obj: Any,
    compress: Compress | _Unset = UNSET,
    *,
    threads: int | None = None,
    chunk_size: int | None = None,
    filters: str | _Unset | None = UNSET,
    progress: bool | ProgressCallback | None = None,
) -> bytes:
    """Serialise ``obj`` and return the stream as ``bytes``.

    ``compress``, ``threads``, ``chunk_size``, ``filters`` and ``progress``
    are as for :func:`dump`; without ``compress`` (here or in a
    :func:`codecpickle.config` block) the stream is not compressed.
    """
    compress = _config.pick("compress", compress, UNSET)
    progress = _config.pick("progress", progress, None)
    codec = resolve_compress(None if compress is UNSET else compress)
    threads = _check_threads(threads)
    chunk_size = _check_chunk_size(chunk_size, codec)
    policy = _filter_policy(filters, codec)
    out = io.BytesIO()
    with reporting(progress, None, "dumps") as rep:
        _dump_to(obj, out if rep is None else rep.wrap_writer(out), codec, threads, chunk_size,
                 policy)
    return out.getvalue()


def load(
    file: PathType | ReadableFile,
    *,
    mmap_mode: MmapMode | None = None,
    threads: int | None = None,
    verify: bool = True,
    safe: bool | None = None,
    allow: Iterable[AllowEntry] | None = None,
    max_buffer_size: int | None = None,
    storage_options: Mapping[str, Any] | None = None,
    progress: bool | ProgressCallback | None = None,
    lazy: bool = False,
) -> Any:
    """Rebuild the object stored in ``file`` (a path, a URL, or a binary
    file object: anything with ``read`` or ``readinto``, such as ``gzip.open``
    files and zip members); the codec is read from the stream's header.

    .. warning:: Loading runs code named by the file, as :func:`pickle.load`
       does.  Only load files you trust, or load with ``safe=True``.

    A file object is read from its current position, and exactly one
    object's stream is consumed, so objects dumped one after another load
    back one by one (at the end of the input,
    :class:`~codecpickle.errors.EmptyInputError`, an :class:`EOFError`, is
    raised).

    ``mmap_mode`` (``"r"``, ``"r+"`` or ``"c"``) memory-maps an uncompressed
    file and returns arrays backed by the file itself, without copying:
    read-only with ``"r"``, writes reaching the file with ``"r+"``,
    copy-on-write with ``"c"``.  It needs a path or a plain file object
    (``open(path, "rb")``); for compressed streams, or inputs that cannot be
    mapped (a ``BytesIO``, a ``gzip.open`` file), a :class:`UserWarning` says
    so and the data is loaded into memory.  Array payloads served from a map
    are not checksum-verified (it would read the whole file); everything
    else is.  A ``"r+"`` load marks the stream's header: its uncompressed
    array data may change, so later loads do not verify that data's
    checksums (everything else still is) until :func:`codecpickle.reseal`
    recomputes them.

    ``verify=False`` skips the checksums of array data stored uncompressed.
    The header, the opcode stream and compressed chunks are always verified.

    ``threads`` is the number of threads decompressing chunks (default:
    ``CODECPICKLE_THREADS`` if set, else the CPUs this process may use; an
    enclosing :func:`codecpickle.config` block may set it too).

    ``progress`` is as for :func:`dump`; the total is the bytes left in the
    file (``None`` for pipes and sockets), and the count the bytes of the
    stream read so far (plain pickles and joblib files: the bytes of the
    file, compressed or not).  A memory-mapped load counts the mapped array
    data as it is handed out; a lazy load counts the opcode chunks it reads,
    out of their total (array data is read later, when used).

    ``safe=True`` restricts loading to an allowlist of harmless globals
    (:data:`~codecpickle.SAFE_GLOBALS`: numpy arrays, dtypes and scalars,
    builtin scalars and containers, ``datetime``, ``decimal``,
    ``collections``); any other class or function the stream names raises
    :class:`~codecpickle.errors.ForbiddenGlobalError` before it is imported.
    ``allow`` adds globals, as ``"module.qualname"`` strings or the classes
    and functions themselves (for pandas objects,
    ``allow=codecpickle.PANDAS_GLOBALS``); giving it, even empty, implies
    ``safe=True``, and ``safe=False`` with ``allow`` is an
    :class:`~codecpickle.errors.InvalidOptionError`.
    A restricted load also checks the state numpy's pickles carry before
    numpy acts on it, and runs a pure-Python unpickler to do so: arrays
    load as fast as usual, object-heavy streams several times slower.

    ``max_buffer_size`` bounds, in bytes, every buffer whose size the input
    declares (an array payload, a chunk, a pickled ``bytes`` object):
    larger ones raise :class:`~codecpickle.errors.SizeLimitError` before
    anything is allocated.  The default is this machine's physical memory;
    inputs of known size are also bounded by what their bytes can hold.
    A restricted load's work budget (about one unit an opcode; by default
    4 per input byte, at least 5 million) is then at least that number.
    See ``docs/security.md``.

    ``file`` may also be a URL (``s3://``, ``gs://``, ``az://``,
    ``http(s)://``, ``memory://``, ``file://``, any fsspec protocol), with
    ``storage_options`` for its filesystem.  The object is streamed in
    bounded blocks, not downloaded whole first; ``mmap_mode`` on a URL
    (other than ``file://``) warns and loads into memory.

    Exceptions raised by the file's own classes while they are rebuilt
    propagate unchanged, as with :func:`pickle.load` (with a note naming
    ``file``); an opcode stream the unpickler refuses raises
    :class:`~codecpickle.errors.PickleStreamError`, a
    :class:`pickle.UnpicklingError`.

    ``lazy=True`` (paths, URLs and seekable file objects) returns the object
    with its out-of-band arrays as :class:`~codecpickle.LazyArray` objects,
    which read and decode only the chunks a slice needs when they are used;
    the file stays open while they may be.  ``codecpickle.open`` gives
    control over when it closes.  ``safe``/``allow`` restrict the object
    graph as usual (arrays stay lazy), ``verify=False`` skips the checksums
    of uncompressed array data when it is read, ``max_buffer_size`` bounds
    every chunk and every read of a lazy array, ``threads`` is unused, and
    ``mmap_mode`` raises :class:`~codecpickle.errors.InvalidOptionError`
    (use one or the other).  See the guide, "Lazy arrays".
    """
    progress = _config.pick("progress", progress, None)
    if lazy:
        options = {"mmap_mode": mmap_mode, "threads": threads, "verify": verify, "safe": safe,
                   "allow": allow, "max_buffer_size": max_buffer_size, "progress": progress}
        return load_lazily(file, storage_options=storage_options, **options)
    _check_mmap_mode(mmap_mode)
    threads = _check_threads(threads)
    guards = _load_guards(safe, allow, max_buffer_size)
    file, remote = _remote.route(file, storage_options)
    if remote is not None:
        if mmap_mode is not None:
            _warn_not_mapped(f"{remote.url!r} is not a local file", stacklevel=3)
        with _remote.open_for_reading(remote) as handle:
            return _load_reporting(
                handle, None, threads, verify, guards, progress, repr(remote.url)
            )
    path = local_path(file)
    if path is not None:
        with open(path, "r+b" if mmap_mode == "r+" else "rb") as handle:
            return _load_reporting(
                handle, mmap_mode, threads, verify, guards, progress, repr(path)
            )
    check_binary_reader(file)
    return _load_reporting(
        readable(file), mmap_mode, threads, verify, guards, progress, _describe(file)
    )


def _load_reporting(
    file: Any, mmap_mode: str | None, threads: int, verify: bool, guards: _LoadGuards,
    progress: Any, origin: str,
) -> Any:
    """Load from ``file``, reporting ``progress`` as the stream is read."""
    size = _size_of(file)
    with reporting(progress, size, "load") as rep:
        return _load_file(file, mmap_mode, threads, verify, guards, origin, size, rep)


def loads(
    data: Any,
    *,
    threads: int | None = None,
    safe: bool | None = None,
    allow: Iterable[AllowEntry] | None = None,
    max_buffer_size: int | None = None,
    progress: bool | ProgressCallback | None = None,
) -> Any:
    """Rebuild the object stored in ``data`` (``bytes``, ``bytearray``,
    ``memoryview`` or any buffer), which must hold exactly one stream.

    .. warning:: Loading runs code named by the data, as :func:`pickle.loads`
       does.  Only load data you trust, or load with ``safe=True``.

    ``threads``, ``safe``, ``allow``, ``max_buffer_size`` and ``progress``
    are as for :func:`load` (the total is the size of ``data``).
    """
    try:
        view = memoryview(data)
    except TypeError:
        raise InvalidOptionError(
            f"loads() expects a bytes-like object; got {type(data).__name__}. "
            "To read from a file or a path, use load()."
        ) from None
    threads = _check_threads(threads)
    guards = _load_guards(safe, allow, max_buffer_size)
    progress = _config.pick("progress", progress, None)
    with reporting(progress, view.nbytes, "loads") as rep:
        return _loads_from(data, view, threads, guards, rep)


def _loads_from(
    data: Any, view: memoryview, threads: int, guards: _LoadGuards, rep: Reporter | None
) -> Any:
    foreign = None if view.nbytes and view[0] == fmt.MAGIC[0] else detect_foreign(bytes(view[:8]))
    if foreign is not None:
        if rep is not None:
            return load_foreign(rep.bytes_file(view), foreign, allowed=guards.allowed,
                                max_buffer_size=guards.max_buffer_size)
        return load_foreign_bytes(data, foreign, allowed=guards.allowed,
                                  max_buffer_size=guards.max_buffer_size)
    source = MemorySource(view) if rep is None else rep.memory_source(view)
    result = _load_from(
        source, threads, True, guards=guards, manifest=read_manifest(view),
        origin="the data given to loads()",
    )
    if source.remaining():
        raise CorruptDataError(
            f"{source.remaining()} bytes of trailing data follow the stream's END record "
            f"at offset {source.offset}"
        )
    return result


# -- dumping ---------------------------------------------------------------


def _dump_to(
    obj: Any, file: Any, codec: Codec | None, threads: int, chunk_size: int, filters: Any
) -> None:
    provider = None if codec is None else codec_provider(codec.name)
    # Even with one thread, chunks are encoded in a worker: the calling
    # thread then waits on a future, which Ctrl-C interrupts at once,
    # rather than inside one long codec call.
    with _executor(codec is not None, threads, min_threads=1) as executor:
        writer = ContainerWriter(
            file,
            codec,
            chunk_size=chunk_size,
            executor=executor,
            max_in_flight=2 * threads,
            base_offset=_position(file),
            provider=provider,
            filters=filters,
        )
        try:
            pickler = Pickler(writer)
            pickler.dump(obj)
            writer.finish(environment(pickler.modules))
        except BaseException:
            writer.abort()
            raise


def _position(file: Any) -> int:
    """Where the stream starts in ``file``, for aligning raw payloads
    relative to the file; 0 when it cannot be told (pipes)."""
    try:
        if file.seekable():
            return int(file.tell())
    except (AttributeError, OSError, ValueError):
        pass
    return 0


# -- loading ---------------------------------------------------------------


@dataclass(frozen=True)
class _LoadGuards:
    """What a load refuses: globals off ``allowed`` (None: unrestricted)
    and buffers over ``max_buffer_size`` (None: the default bound)."""

    allowed: frozenset[str] | None = None
    max_buffer_size: int | None = None


def _load_guards(safe: object, allow: Any, max_buffer_size: object) -> _LoadGuards:
    """Check the restriction options: ``allow`` (any iterable, even empty)
    means a restricted load, which an explicit ``safe=False`` contradicts."""
    if max_buffer_size is not None and (
        isinstance(max_buffer_size, bool)
        or not isinstance(max_buffer_size, int)
        or max_buffer_size < 1
    ):
        raise InvalidOptionError(
            "Expected max_buffer_size to be a positive number of bytes or None. "
            f"Got {max_buffer_size!r} instead."
        )
    if allow is not None:
        if safe is False:
            raise InvalidOptionError(
                "safe=False contradicts allow=: allow adds globals to a restricted "
                "(safe) load. Drop safe=False for a restricted load, or drop allow for an "
                "unrestricted one."
            )
        safe = True
    return _LoadGuards(make_allowlist(False if safe is None else safe, allow), max_buffer_size)


def _load_file(
    file: Any,
    mmap_mode: str | None,
    threads: int,
    verify: bool,
    guards: _LoadGuards,
    origin: str,
    size: int | None = None,
    rep: Reporter | None = None,
) -> Any:
    # Seekable inputs: the writer's versions are checked before unpickling
    # (read first: over a URL, the trailer's reads then come before the
    # stream's, which are sequential from its start).
    manifest = read_manifest(file)
    file, foreign = sniff(file)  # plain pickles and joblib files: see _foreign
    if foreign is not None:
        # Counted on the file itself: compressed ones by their compressed bytes.
        return load_foreign(file if rep is None else rep.wrap_reader(file), foreign,
                            mmap_mode=mmap_mode, allowed=guards.allowed,
                            max_buffer_size=guards.max_buffer_size)
    if mmap_mode is not None:
        mapped = _map(file, mmap_mode)
        if mapped is not None:
            source = (MemorySource(mapped, zero_copy=True) if rep is None
                      else rep.memory_source(mapped, zero_copy=True))
            source.array_hook = MappedFile.of(mapped, file, mmap_mode)  # np.memmap results
            source.offset = start = file.tell()
            mark = None
            if mmap_mode == "r+":
                mark = lambda: mark_raw_payloads_mutable(mapped, start)  # noqa: E731
            try:
                return _load_from(
                    source, threads, verify, mmap_mode, guards=guards, manifest=manifest,
                    origin=origin, on_writable_map=mark,
                )
            finally:
                # Leave the file just past this stream, as a plain load does.
                file.seek(source.offset)
    # Progress counts the stream's bytes only (not the looks at its first
    # bytes and its trailer above), so the wrapper goes on here.
    source = StreamSource(file if rep is None else rep.wrap_reader(file), size)
    return _load_from(
        source, threads, verify, guards=guards, manifest=manifest, origin=origin
    )


def _describe(file: Any) -> str:
    """How messages name a file object: its name, else its type."""
    name = getattr(file, "name", None)
    if isinstance(name, str | bytes):
        return repr(os.fsdecode(name))
    return f"a {type(file).__name__}"


def _map(file: Any, mmap_mode: str) -> mmap.mmap | None:
    """Map all of ``file``; None (after a warning) when it cannot be mapped."""
    fileno = real_fileno(file)
    if fileno is None:
        _warn_not_mapped(
            f"{type(file).__name__} is not a plain file over a file descriptor (only "
            "files such as open(path, 'rb') can be mapped)"
        )
        return None
    try:
        size = os.fstat(fileno).st_size
        start = file.tell()
    except (OSError, ValueError) as exc:
        _warn_not_mapped(f"{type(file).__name__} cannot be mapped ({exc})")
        return None
    if size <= start:
        raise EmptyInputError("the input is empty: expected a codecpickle stream")
    try:
        return mmap.mmap(fileno, 0, access=MMAP_MODES[mmap_mode])
    except PermissionError as exc:
        raise InvalidOptionError(
            f"mmap_mode={mmap_mode!r} cannot map this file: {exc} (\"r+\" needs a file "
            "opened for reading and writing)"
        ) from exc
    except (OSError, ValueError) as exc:
        _warn_not_mapped(f"the file cannot be memory-mapped ({exc})")
        return None


def _warn_not_mapped(reason: str, stacklevel: int = 5) -> None:
    warnings.warn(
        f"mmap_mode is ignored: {reason}; the data is loaded into memory",
        UserWarning,
        stacklevel=stacklevel,
    )


def _load_from(
    source: Any,
    threads: int,
    verify: bool,
    mmap_mode: str | None = None,
    *,
    guards: _LoadGuards = _LoadGuards(),
    manifest: dict[str, Any] | None = None,
    origin: str,
    on_writable_map: Callable[[], None] | None = None,
) -> Any:
    with _executor(True, threads) as executor:
        reader = ContainerReader(
            source,
            executor=executor,
            max_in_flight=2 * threads,
            verify_raw_payloads=verify,
            max_buffer_size=guards.max_buffer_size,
        )
        if mmap_mode is not None and reader.codec is not None:
            _warn_not_mapped(f"the stream is compressed with {reader.codec.name!r}")
            source.zero_copy = False
        elif on_writable_map is not None:
            # Before any array is handed out: writes through the map are
            # about to make raw-payload checksums stale, on purpose.
            on_writable_map()
        with writer_environment(manifest, reader):
            return _unpickle(reader, guards.allowed, origin)


def _unpickle(reader: ContainerReader, allowed: frozenset[str] | None, origin: str) -> Any:
    if allowed is None:
        unpickler: Any = Unpickler(reader)
    else:
        # Imported on first use: most processes never load restricted.
        from ._restricted import RestrictedUnpickler

        unpickler = RestrictedUnpickler(reader, allowed)
    if reader.array_hook is not None:
        reader.array_hook.attach(unpickler)
    try:
        result = unpickler.load()
    except CodecPickleError:
        raise
    except MemoryError as exc:
        raise SizeLimitError(f"the pickle stream asks for more memory than exists: {exc}") from exc
    except Exception as exc:
        if allowed is not None:
            # Only admitted constructors ran: their failure means a bad stream.
            raise CorruptDataError(
                f"the pickle stream does not unpickle: {type(exc).__name__}: {exc}"
            ) from exc
        if _raised_by_unpickler(exc):
            raise PickleStreamError(
                f"the unpickler refused the pickle stream of {origin}: {exc}. The opcodes "
                "read so far passed their checksums, so they are as written: the stream was "
                "not written by a pickler, or a global it names is no longer what it was "
                "when the file was written"
            ) from exc
        # The file's own code failed (a __setstate__, a constructor, an
        # import): its exception is the caller's to see, as with pickle.
        exc.add_note(f"codecpickle: raised by code the pickle stream of {origin} calls")
        raise
    reader.finish()
    return result


def _raised_by_unpickler(exc: BaseException) -> bool:
    """Whether ``exc`` is the C unpickler's own complaint about the opcodes:
    an ``UnpicklingError`` raised with no Python frame below ``load()``
    (code a stream calls, such as a ``__setstate__``, adds frames)."""
    traceback = exc.__traceback__
    return (
        type(exc) is pickle.UnpicklingError
        and traceback is not None
        and traceback.tb_next is None
    )


# -- options ---------------------------------------------------------------


@contextlib.contextmanager
def _executor(wanted: bool, threads: int, min_threads: int = 2) -> Iterator[Executor | None]:
    if not wanted or threads < min_threads:
        yield None
        return
    executor = ChunkPool(threads)
    try:
        yield executor
    except BaseException:
        # An error or Ctrl-C: return at once, without waiting for chunks
        # being encoded (see _pool.py).
        executor.shutdown(wait=False, cancel_futures=True)
        raise
    executor.shutdown(wait=True)


def _check_threads(threads: object) -> int:
    if threads is None:
        return _config.default_threads()
    return _config.check_positive_int(threads, "threads")


def _check_chunk_size(chunk_size: object, codec: Codec | None) -> int:
    chunk_size = _config.pick("chunk_size", chunk_size, None)
    if chunk_size is None:
        return Codec.chunk_size if codec is None else codec.chunk_size
    return _config.check_chunk_size(chunk_size)


def _check_mmap_mode(mmap_mode: object) -> None:
    if mmap_mode is not None and mmap_mode not in MMAP_MODES:
        raise InvalidOptionError(
            f"Expected mmap_mode to be None, 'r', 'r+' or 'c'. Got {mmap_mode!r} instead."
        )


def _size_of(file: Any) -> int | None:
    """Bytes from the current position to the end, for regular files read
    unchanged (see ``size_of``) and objects on a store."""
    if isinstance(file, _remote.StoreFile) and file.size is not None:
        return file.size - file.tell()
    return size_of(file)
