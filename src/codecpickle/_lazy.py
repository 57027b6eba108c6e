"""Lazy arrays: the object graph now, each array's data when it is used.

``load(file, lazy=True)`` and ``codecpickle.open(file).load(lazy=True)``
read the stream's index (:mod:`codecpickle._index`), then unpickle the
opcode chunks only: every out-of-band array payload becomes a
:class:`LazyArray` that knows its shape, dtype and order, and reads and
decodes its chunks when (and only as far as) it is used.

How the arrays are intercepted, without depending on the name of the
constructor a stream calls: the unpickler hands each ``NEXT_BUFFER`` a
*probe*, a read-only anonymous memory map of the payload's size (no memory
is touched), and wraps the callables the stream imports from numpy and
codecpickle.  A wrapped constructor runs on the probe; when it returns an
ndarray viewing the probe, the ndarray is replaced by a
:class:`LazyArray` of the same shape, dtype and order.  Anything else a
probe reaches is rebuilt from the real data, and a probe that reaches no
wrapped callable at all makes the load fall back to an eager one, so the
zero bytes of a probe never end up in a loaded object.

Objects that need real arrays: from the first global the stream imports
whose unpickling may look at its arrays (a function from another package,
an extension type, or a class with ``__setstate__``: pandas objects,
scikit-learn estimators, scipy sparse matrices ...), the remaining payloads
load eagerly, as real ndarrays.  See the guide, "Lazy arrays".
"""

from __future__ import annotations

import collections
import math
import mmap
import pickle
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _filters
from . import _format as fmt
from ._index import ChunkInfo, PayloadInfo, StreamIndex
from ._reader import _decode
from ._sources import allocate, default_buffer_limit
from .codecs import Codec
from .errors import ChecksumMismatchError, CorruptDataError, SizeLimitError

__all__ = ["LazyArray", "LazyUnpickler", "Probes", "ReadOptions", "needs_real_arrays"]

# Modules whose callables only build arrays and containers (or hold them):
# arrays stay lazy through them.  Their functions are wrapped (below).
_FRIENDLY = frozenset(
    {
        "builtins", "copyreg", "collections", "numpy", "codecpickle", "datetime", "decimal",
        "fractions", "enum", "uuid", "pathlib", "functools", "operator", "types", "array",
        "re", "ipaddress", "zoneinfo", "_codecs", "codecs",
    }
)
# ... but these build objects that need real arrays.
_NEEDS_REAL_MODULES = frozenset({"codecpickle._construct_pandas"})
_WRAPPED_TOPS = frozenset({"numpy", "codecpickle", "copyreg"})
_HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE

#: Decoded chunks kept per open file (an LRU), and their total size bound.
CACHE_CHUNKS = 8
CACHE_BYTES = 256 << 20


class ChunkCache:
    """A small LRU of decoded chunks, shared by the lazy arrays of a file."""

    def __init__(self, max_chunks: int = CACHE_CHUNKS, max_bytes: int = CACHE_BYTES) -> None:
        self._items: collections.OrderedDict[int, np.ndarray] = collections.OrderedDict()
        self._max_chunks = max_chunks
        self._max_bytes = max_bytes
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: int) -> np.ndarray | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: int, value: np.ndarray) -> None:
        with self._lock:
            if key in self._items or value.nbytes > self._max_bytes:
                return
            self._items[key] = value
            self._bytes += value.nbytes
            while len(self._items) > self._max_chunks or self._bytes > self._max_bytes:
                _, old = self._items.popitem(last=False)
                self._bytes -= old.nbytes


@dataclass(frozen=True)
class ReadOptions:
    """How a lazy load reads payloads: whether the checksums of data stored
    uncompressed are verified (``verify``; compressed chunks always are),
    the largest buffer it may allocate for a size the input declares
    (``max_buffer_size``), and where the stream starts in the file."""

    verify: bool = True
    #: The caller's bound (None: :func:`default_buffer_limit`).
    requested_max_buffer_size: int | None = None
    stream_offset: int = 0

    @property
    def max_buffer_size(self) -> int:
        requested = self.requested_max_buffer_size
        return default_buffer_limit() if requested is None else requested

    def check_size(self, nbytes: int, what: str, offset: int) -> None:
        """Refuse a buffer of ``nbytes`` over the bound, before allocating it."""
        if nbytes > self.max_buffer_size:
            raise SizeLimitError(
                f"{what} at offset {offset} needs {nbytes} bytes, over the limit of "
                f"{self.max_buffer_size} bytes; if the input is trusted and the memory exists, "
                "raise it with load(..., max_buffer_size=...)"
            )


class PayloadReader:
    """Random access to one payload's bytes through the file's index."""

    def __init__(
        self, file: Any, payload: PayloadInfo, codec: Codec | None, options: ReadOptions
    ) -> None:
        self._file = file  # a codecpickle._file.File: read_at(), cache, header_flags()
        self.payload = payload
        self._codec = codec
        self._options = options
        self._starts = [0]
        for chunk in payload.chunks:
            self._starts.append(self._starts[-1] + chunk.raw_size)

    def read_range(self, start: int, stop: int) -> np.ndarray:
        """Raw bytes ``[start, stop)`` of the payload, as a uint8 array,
        decoding only the chunks that cover them."""
        payload = self.payload
        if not 0 <= start <= stop <= payload.raw_size:
            raise IndexError(f"bytes {start}:{stop} outside a {payload.raw_size}-byte payload")
        self._options.check_size(stop - start, "a read of an array", payload.offset)
        out = allocate(stop - start, "a slice", payload.offset)
        if start == stop:
            return out
        if payload.kind == "raw":
            assert payload.data_offset is not None
            assert payload.ordinal is not None
            data = self._file.read_at(payload.data_offset + start, stop - start)
            out[:] = np.frombuffer(data, np.uint8)
            if start == 0 and stop == payload.raw_size:
                self._verify_raw(out)
            return out
        first = _chunk_at(self._starts, start)
        position = start
        for number in range(first, len(payload.chunks)):
            chunk_start = self._starts[number]
            if chunk_start >= stop:
                break
            decoded = self._chunk(number, payload.chunks[number])
            piece_stop = min(stop, chunk_start + payload.chunks[number].raw_size)
            out[position - start : piece_stop - start] = decoded[
                position - chunk_start : piece_stop - chunk_start
            ]
            position = piece_stop
        return out

    def _verify_raw(self, data: np.ndarray) -> None:
        if not self._options.verify:
            return
        if self._file.header_flags(self._options.stream_offset) & fmt.FLAG_MUTABLE_RAW_PAYLOADS:
            # Changed in place through mmap_mode="r+" on purpose: stale
            # until codecpickle.reseal(), as for an eager load.
            return
        payload = self.payload
        assert payload.data_offset is not None
        assert payload.ordinal is not None
        (expected,) = fmt.CHECKSUM.unpack(
            self._file.read_at(payload.data_offset + payload.raw_size, fmt.CHECKSUM.size)
        )
        if fmt.checksum(data, payload.ordinal) != expected:
            raise ChecksumMismatchError(
                f"the {payload.raw_size} bytes at offset {payload.data_offset} fail their "
                "checksum: the file is damaged"
            )

    def _chunk(self, number: int, chunk: ChunkInfo) -> np.ndarray:
        cached = self._file.cache.get(chunk.offset)
        if cached is not None:
            return cached
        decoded = read_chunk(self._file, chunk, self._codec, self.payload.element_size)
        self._file.cache.put(chunk.offset, decoded)
        return decoded


def read_chunk(file: Any, chunk: ChunkInfo, codec: Codec | None, element_size: int) -> np.ndarray:
    """Read one chunk record's stored bytes and checksum (one read), check
    them, and decode them (codec, then filter) into a new uint8 array."""
    data = file.read_at(chunk.data_offset, chunk.stored_size + fmt.CHECKSUM.size)
    stored = memoryview(data)[: chunk.stored_size]
    (expected,) = fmt.CHECKSUM.unpack(data[chunk.stored_size :])
    if fmt.checksum(stored, chunk.seed) != expected:
        raise ChecksumMismatchError(
            f"the {chunk.stored_size} bytes at offset {chunk.data_offset} fail their "
            f"checksum (record #{chunk.ordinal}): the file is damaged"
        )
    if chunk.stored_raw:
        filtered = np.frombuffer(data, np.uint8, chunk.stored_size)
    else:
        if codec is None:
            raise CorruptDataError(
                f"compressed chunk at offset {chunk.offset} in a stream without a codec"
            )
        filtered = allocate(chunk.raw_size, "a chunk", chunk.offset)
        _decode(codec, stored, memoryview(filtered), chunk.data_offset)
    filter_id = (chunk.flags & fmt.FILTER_MASK) >> fmt.FILTER_SHIFT
    if filter_id == _filters.NONE:
        return filtered
    out = allocate(chunk.raw_size, "a chunk", chunk.offset)
    _filters.decode(filter_id, memoryview(filtered), memoryview(out), element_size)
    return out


def _chunk_at(starts: list[int], position: int) -> int:
    """The chunk holding byte ``position`` (``starts`` is the running total
    of raw sizes)."""
    low, high = 0, len(starts) - 2
    while low < high:
        middle = (low + high + 1) // 2
        if starts[middle] <= position:
            low = middle
        else:
            high = middle - 1
    return low


class LazyArray:
    """An array payload that is read from the file when it is used.

    It knows :attr:`shape`, :attr:`dtype`, :attr:`order`, :attr:`nbytes`,
    :attr:`ndim` and :attr:`size` without reading anything.  Reading:

    - ``np.asarray(x)``, ``x[...]``, ``x[()]`` or :meth:`read` give the whole
      array (a fresh, writable ndarray each time);
    - ``x[i]``, ``x[a:b]``, ``x[a:b:s]`` and ``x[a:b, ...more indices]`` read
      only the chunks that hold the rows ``a`` to ``b`` of the first axis
      (for Fortran-ordered arrays, those rows of every column), then apply
      the rest of the index to them;
    - any other index reads the whole array, then applies the index.

    Decoded chunks are kept in a small cache shared by the file's arrays.
    The file stays open while the array can still be read: close it with
    the :class:`~codecpickle.File` it came from (``with codecpickle.open(...)``).
    """

    __slots__ = ("_order", "_reader", "dtype", "shape")

    def __init__(
        self, reader: PayloadReader, shape: tuple[int, ...], dtype: np.dtype, order: str
    ) -> None:
        self._reader = reader
        self.shape = shape
        self.dtype = dtype
        self._order = order

    @property
    def order(self) -> str:
        """``"C"`` or ``"F"``: the order of the stored bytes."""
        return self._order

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of unsized object")
        return self.shape[0]

    def __repr__(self) -> str:
        return f"LazyArray(shape={self.shape}, dtype={self.dtype}, order={self._order!r})"

    def read(self) -> np.ndarray:
        """The whole array, read and decoded now."""
        data = self._reader.read_range(0, self.nbytes)
        return np.ndarray(self.shape, self.dtype, buffer=data, order=self._order)

    def __reduce_ex__(self, protocol: Any) -> Any:
        # Pickled again (dumped after a lazy load): as the array it stands for.
        return self.read().__reduce_ex__(protocol)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        array = self.read()
        return array if dtype is None else array.astype(dtype, copy=False)

    def __getitem__(self, key: Any) -> Any:
        first, rest = (key[0], key[1:]) if isinstance(key, tuple) and key else (key, ())
        basic = isinstance(first, slice) or (
            isinstance(first, int | np.integer) and not isinstance(first, bool | np.bool_)
        )
        if not self.shape or not basic:
            return self.read()[key]
        length = self.shape[0]
        if isinstance(first, slice):
            rows = range(*first.indices(length))
            if not rows:
                return self._rows(0, 0)[(slice(None), *rest)]
            low, high = min(rows[0], rows[-1]), max(rows[0], rows[-1]) + 1
            block = self._rows(low, high)[rows[0] - low :: rows.step]
            return block[(slice(None), *rest)] if rest else block
        index = int(first)
        if not -length <= index < length:
            raise IndexError(f"index {index} is out of bounds for axis 0 with size {length}")
        index %= length
        row = self._rows(index, index + 1)[0]
        return row[rest] if rest else row

    def _rows(self, start: int, stop: int) -> np.ndarray:
        """Rows ``[start, stop)`` of the first axis, as an ndarray."""
        shape = (stop - start, *self.shape[1:])
        itemsize = self.dtype.itemsize
        if self._order == "C" or self.ndim == 1:
            row = math.prod(self.shape[1:]) * itemsize
            data = self._reader.read_range(start * row, stop * row)
            return np.ndarray(shape, self.dtype, buffer=data)
        columns = math.prod(self.shape[1:])
        out = np.empty((stop - start, columns), self.dtype, order="F")
        height = self.shape[0]
        for column in range(columns):
            first = (column * height + start) * itemsize
            data = self._reader.read_range(first, first + (stop - start) * itemsize)
            out[:, column] = np.frombuffer(data, self.dtype)
        return out.reshape(shape, order="F")


# -- the unpickler -----------------------------------------------------------


class _Probe:
    """A payload's stand-in: a read-only anonymous mapping of its size."""

    __slots__ = ("address", "claimed", "map", "number", "size", "view")

    def __init__(self, number: int, size: int) -> None:
        self.number = number
        self.size = size
        self.map = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)
        self.view = memoryview(self.map)
        self.address = np.frombuffer(self.view, np.uint8).ctypes.data
        self.claimed = False


class _Wrapped:
    """A callable from numpy or codecpickle, run so that probes become
    lazy arrays and lazy arrays reach it only where it builds arrays."""

    __slots__ = ("_function", "_probes")

    def __init__(self, function: Callable[..., Any], probes: Probes) -> None:
        self._function = function
        self._probes = probes

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._probes.call(self._function, args, kwargs)


class Probes:
    """What a lazy unpickler (plain or restricted) does with payloads: hands
    out probes, and turns the arrays built over them into lazy arrays.

    ``eager`` becomes true at the first global that may need real arrays;
    payloads from then on are read as they are reached.
    """

    def __init__(
        self, file: Any, index: StreamIndex, codec: Codec | None, options: ReadOptions
    ) -> None:
        self._file = file
        self._index = index
        self._codec = codec
        self._options = options
        self._probes: list[_Probe] = []
        self.eager = False
        self.used = 0
        self.eager_payloads = 0

    def reader(self, payload: PayloadInfo) -> PayloadReader:
        return PayloadReader(self._file, payload, self._codec, self._options)

    def buffers(self) -> Iterator[Any]:
        """The out-of-band buffers, in stream order: probes, or real data
        once ``eager`` is set."""
        for payload in self._index.payloads:
            self.used += 1
            if self.eager or payload.raw_size == 0:
                self.eager_payloads += 1
                yield memoryview(self.reader(payload).read_range(0, payload.raw_size))
            else:
                probe = _Probe(payload.number, payload.raw_size)
                self._probes.append(probe)
                yield probe.view
        raise CorruptDataError(
            f"the pickle stream asks for more out-of-band buffers than the "
            f"{len(self._index.payloads)} payloads of the stream at offset {self._index.offset}"
        )

    def call(self, function: Callable[..., Any], args: tuple[Any, ...], kwargs: Any) -> Any:
        """``function(*args, **kwargs)``, where an ndarray built over one
        probe comes back as a :class:`LazyArray`, and anything else a probe
        reaches is built again from the payload's real bytes."""
        kwargs = kwargs or {}
        probes = [p for p in self._probes if not p.claimed and _holds(args, kwargs, p.view)]
        args = tuple(_plain(a) for a in args)
        kwargs = {k: _plain(v) for k, v in kwargs.items()}
        if not probes:
            return function(*args, **kwargs)
        for probe in probes:
            probe.claimed = True
        result = function(*args, **kwargs)
        if type(result) is np.ndarray and len(probes) == 1 and result.size:
            probe = probes[0]
            address = result.ctypes.data
            if probe.address <= address < probe.address + probe.size and (
                result.flags.c_contiguous or result.flags.f_contiguous
            ) and result.nbytes == probe.size:
                order = "C" if result.flags.c_contiguous else "F"
                reader = self.reader(self._index.payloads[probe.number])
                return LazyArray(reader, result.shape, result.dtype, order)
        # Not an array over the payload: build it from the real bytes.
        real = {id(p.view): self._real(p) for p in probes}
        args = tuple(real.get(id(a), a) for a in args)
        kwargs = {k: real.get(id(v), v) for k, v in kwargs.items()}
        return function(*args, **kwargs)

    def _real(self, probe: _Probe) -> memoryview:
        self.eager_payloads += 1
        payload = self._index.payloads[probe.number]
        return memoryview(self.reader(payload).read_range(0, payload.raw_size))

    def unclaimed(self) -> int:
        """Probes no wrapped callable received (their arrays would hold zeros)."""
        return sum(not probe.claimed for probe in self._probes)


def _plain(value: Any) -> Any:
    """Arguments as a callable expects them: our wrappers unwrapped, lazy
    arrays read (they reach a call only as parts of other objects: masked
    arrays, matrices, subclass views)."""
    if type(value) is _Wrapped:
        return value._function
    if type(value) is LazyArray:
        return value.read()
    return value


class LazyUnpickler(pickle.Unpickler):
    """The C unpickler over a stream's opcode chunks, with probes for
    payloads (see the module docstring)."""

    def __init__(self, opcodes: Any, probes: Probes, index: StreamIndex) -> None:
        super().__init__(opcodes, buffers=probes.buffers())
        self.probes = probes
        self._index = index

    def find_class(self, module: str, name: str) -> Any:
        found = super().find_class(module, name)
        if not self.probes.eager and needs_real_arrays(module, found):
            self.probes.eager = True
        top = module.partition(".")[0]
        if (
            top in _WRAPPED_TOPS
            and module not in _NEEDS_REAL_MODULES
            and callable(found)
            and not isinstance(found, type)
        ):
            return _Wrapped(found, self.probes)
        if found is np.ndarray and self._index.version == 1:
            # Version-1 streams call numpy.ndarray(shape, dtype, buffer, ...).
            return _Wrapped(found, self.probes)
        return found


def _holds(args: tuple[Any, ...], kwargs: dict[str, Any], view: memoryview) -> bool:
    return any(a is view for a in args) or any(v is view for v in kwargs.values())


def needs_real_arrays(module: str, found: Any) -> bool:
    """Whether objects built by ``found`` may need real arrays: functions
    from packages other than the friendly ones, extension types, and
    classes that set their own state."""
    if module in _NEEDS_REAL_MODULES:
        return True
    if module.partition(".")[0] in _FRIENDLY or module in sys.stdlib_module_names:
        return False
    if not isinstance(found, type):
        return True
    if not found.__flags__ & _HEAPTYPE:
        return True
    return getattr(found, "__setstate__", None) is not None
