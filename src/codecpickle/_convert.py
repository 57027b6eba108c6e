"""``codecpickle.convert``: rewrite a pickle, joblib or codecpickle file as
a codecpickle file, in bounded memory.

Loading the whole object and dumping it would hold every array at once.
Instead the source is loaded with an array hook (``_array_hooks.py``) that
writes each array, as soon as it is built, to a spool file next to the
destination and puts a read-only ``np.memmap`` of the spool in its place, so
the loaded object holds mapped (not resident) data.  The dump then streams
each spooled array from the spool file with plain reads, in chunk-sized
pieces that are never mapped, so that neither phase keeps more than about
one array (the one being built) in memory.  The destination is written
atomically, like any ``dump`` to a path.
"""

from __future__ import annotations

import mmap
import os
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from typing import Any, BinaryIO

import numpy as np

from . import _api
from ._array_hooks import ArrayHook
from ._atomic import atomic_write
from ._foreign import load_foreign, sniff
from ._manifest import environment
from ._pickling import Pickler
from ._sources import StreamSource, readable
from ._targets import check_binary_reader
from ._writer import ContainerWriter
from .codecs import Codec, codec_for_path, codec_provider, resolve_compress
from .errors import InvalidOptionError

__all__ = ["convert"]

# Arrays smaller than this stay in memory: spooling them saves nothing.
_SPOOL_THRESHOLD = 1 << 20


def convert(
    src: str | os.PathLike[str] | BinaryIO,
    dst: str | os.PathLike[str],
    compress: Any = _api.UNSET,
    *,
    safe: bool | None = None,
    allow: Iterable[str | type | Callable[..., Any]] | None = None,
    threads: int | None = None,
    chunk_size: int | None = None,
    fsync: bool = True,
    max_buffer_size: int | None = None,
) -> None:
    """Read ``src`` and write it to ``dst`` as a codecpickle file.

    ``src`` is a path or a binary file object holding anything
    :func:`~codecpickle.load` reads: a codecpickle file, a plain pickle
    (bare or gzip/zlib/bz2/xz/lzma/zstd/lz4-compressed) or a joblib file of
    any format since joblib 0.10.  ``dst`` is a path, written atomically
    (the previous file stays intact until the new one is complete).

    ``compress`` is as for :func:`~codecpickle.dump` (not given: the name of
    ``dst`` may pick the codec, ``model.cpkl.zst``).  ``safe`` and
    ``allow`` restrict what the source may contain, as for
    :func:`~codecpickle.load`: converting an untrusted joblib file with
    ``safe=True`` runs none of its code.  ``threads``, ``chunk_size``,
    ``fsync`` and ``max_buffer_size`` are as for ``dump`` and ``load``.

    Memory stays bounded by about the largest array, not the file: arrays
    are spooled to a temporary file next to ``dst`` as they are read and
    streamed from it into ``dst`` (so ``dst``'s directory needs room for
    the arrays twice while converting).  The result loads like any file
    ``dump`` writes, with ``mmap_mode`` too when uncompressed.
    """
    if not isinstance(dst, str | os.PathLike):
        raise InvalidOptionError(
            f"convert() writes to a path (str or os.PathLike). Got {type(dst).__name__} instead."
        )
    codec = codec_for_path(dst) if compress is _api.UNSET else resolve_compress(compress)
    threads = _api._check_threads(threads)
    chunk_size = _api._check_chunk_size(chunk_size, codec)
    guards = _api._load_guards(safe, allow, max_buffer_size)
    directory = os.path.dirname(os.path.abspath(os.fspath(dst)))
    with tempfile.TemporaryFile(dir=directory, prefix=".codecpickle-spool-") as spool_file:
        spool = _Spool(spool_file)
        if isinstance(src, str | os.PathLike):
            with open(src, "rb") as handle:
                obj = _load(handle, spool, threads, guards, repr(os.fspath(src)))
        else:
            check_binary_reader(src)
            obj = _load(readable(src), spool, threads, guards, _api._describe(src))
        with atomic_write(dst, fsync=fsync) as out:
            _dump(obj, out, codec, threads, chunk_size, spool)


def _load(file: Any, spool: _Spool, threads: int, guards: Any, origin: str) -> Any:
    file, foreign = sniff(file)
    # Uncompressed sources are mapped, not read: their arrays come back as
    # memmaps of the source itself, which the dump streams from it.  (The
    # warning for compressed ones is moot: those are read and spooled.)
    mappable = _named_file(file)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        if foreign is not None:
            return load_foreign(
                file,
                foreign,
                mmap_mode="r" if mappable and not foreign.compressed else None,
                allowed=guards.allowed,
                max_buffer_size=guards.max_buffer_size,
                array_hook=spool,
            )
        if mappable:
            # Compressed codecpickle streams are read into memory: their
            # payloads precede the opcodes that use them, so the reader
            # holds them before any constructor runs.
            return _api._load_file(file, "r", threads, True, guards, origin)
        source = StreamSource(file, _api._size_of(file))
        source.array_hook = spool  # type: ignore[attr-defined]
        return _api._load_from(source, threads, verify=True, guards=guards, origin=origin)


def _named_file(file: Any) -> bool:
    name = getattr(file, "name", None)
    try:
        return isinstance(name, str) and os.path.isfile(name) and bool(file.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def _dump(
    obj: Any, file: Any, codec: Codec | None, threads: int, chunk_size: int, spool: _Spool
) -> None:
    provider = None if codec is None else codec_provider(codec.name)
    with _api._executor(codec is not None, threads) as executor:
        writer = ContainerWriter(
            file,
            codec,
            chunk_size=chunk_size,
            executor=executor,
            max_in_flight=2 * threads,
            base_offset=0,
            provider=provider,
        )
        try:
            with ExitStack() as files:
                pickler = _SpoolPickler(writer, spool, files)
                pickler.dump(obj)
            writer.finish(environment(pickler.modules))
        except BaseException:
            writer.abort()
            raise


class _Spool(ArrayHook):
    """A temporary file holding the arrays of the object being converted."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self.fileno = self._fileno = file.fileno()
        self._size = 0
        #: id of each memmap handed out -> (memmap, offset in the spool).
        self.arrays: dict[int, tuple[np.memmap, int]] = {}

    def adopt(self, obj: Any) -> Any:
        """Spool an array just built; a read-only memmap of it replaces it."""
        if _file_range(obj) is not None:
            return obj  # mapped from the source already
        if (
            type(obj) not in (np.ndarray, np.memmap)
            or obj.dtype.hasobject
            or obj.dtype.itemsize == 0
            or obj.nbytes < _SPOOL_THRESHOLD
        ):
            return obj
        fortran = obj.flags.f_contiguous and not obj.flags.c_contiguous
        order = "F" if fortran else "C"
        offset = self._size
        # The array's elements in its own order, a bounded piece at a time
        # (a non-contiguous view is copied piece by piece, never whole).
        flat = obj.T if fortran else obj
        rows = flat.reshape(-1) if flat.flags.c_contiguous else None
        pieces = [memoryview(rows.view(np.uint8))] if rows is not None else _pieces(flat)
        position = offset
        for piece in pieces:
            while piece.nbytes:  # pwrite may write less than asked (> 2 GiB)
                written = os.pwrite(self._fileno, piece, position)
                piece = piece[written:]
                position += written
        self._size += obj.nbytes
        mapped = np.memmap(
            self._file, dtype=obj.dtype, mode="r", offset=offset, shape=obj.shape, order=order
        )
        self.arrays[id(mapped)] = (mapped, offset)
        return mapped

    def pieces(self, offset: int, nbytes: int, piece_size: int) -> Iterator[memoryview]:
        """The spooled bytes, read (not mapped) in fresh pieces."""
        return _read_pieces(self._fileno, offset, nbytes, piece_size)


def _file_range(obj: Any) -> tuple[str, int] | None:
    """(file name, offset) of a contiguous memmap that maps its file
    directly (not a view of another memmap, whose ``offset`` is its
    parent's), so its bytes can be read from the file."""
    if not (
        type(obj) is np.memmap
        and isinstance(obj.base, mmap.mmap)
        and isinstance(obj.filename, str)
        and (obj.flags.c_contiguous or obj.flags.f_contiguous)
        and obj.nbytes
    ):
        return None
    return obj.filename, obj.offset


def _read_pieces(fileno: int, offset: int, nbytes: int, piece_size: int) -> Iterator[memoryview]:
    """Bytes of a file, read (not mapped) in fresh pieces."""
    end = offset + nbytes
    while offset < end:
        data = os.pread(fileno, min(piece_size, end - offset), offset)
        if not data:
            raise OSError(f"a file being converted ends at offset {offset}, before its data")
        offset += len(data)
        yield memoryview(data)


def _pieces(array: np.ndarray, target: int = 16 << 20) -> Iterator[memoryview]:
    if array.ndim == 0 or array.nbytes <= target:
        yield memoryview(np.ascontiguousarray(array).reshape(-1).view(np.uint8))
        return
    rows = max(1, target // max(1, array[0].nbytes))
    for start in range(0, array.shape[0], rows):
        yield from _pieces(array[start : start + rows], target)


class _SpoolPickler(Pickler):
    """The dump pickler; spooled arrays are streamed from the spool file."""

    def __init__(self, writer: ContainerWriter, spool: _Spool, files: ExitStack) -> None:
        super().__init__(writer)
        self._spool = spool
        self._files = files
        self._filenos: dict[str, int] = {}

    def reducer_override(self, obj: Any) -> Any:
        if type(obj) is not np.memmap:
            return super().reducer_override(obj)
        entry = self._spool.arrays.get(id(obj))
        if entry is not None and entry[0] is obj:
            fileno, offset = self._spool.fileno, entry[1]
        else:
            found = _file_range(obj)
            if found is None:
                return super().reducer_override(obj)
            fileno, offset = self._fileno(found[0]), found[1]
        order = "F" if obj.flags.f_contiguous and not obj.flags.c_contiguous else "C"
        nbytes = obj.nbytes
        # The bytes are read from the spool (or the source) when the payload
        # is written, never mapped whole into this process.
        return self.reduce_streamed(
            obj.shape,
            obj.dtype,
            order,
            lambda size: _read_pieces(fileno, offset, nbytes, size),
        )

    def _fileno(self, filename: str) -> int:
        if filename not in self._filenos:
            file = self._files.enter_context(open(filename, "rb"))  # noqa: SIM115
            self._filenos[filename] = file.fileno()
        return self._filenos[filename]
