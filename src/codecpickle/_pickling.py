"""The C pickler and unpickler, wired to the container through public hooks.

Arrays leave the opcode stream as protocol-5 out-of-band buffers: the
pickler's ``buffer_callback`` hands each one to the container writer, which
writes it as a payload record *before* the opcode frame holding its
``NEXT_BUFFER`` is flushed.  On load the container reader queues payloads as
it passes them and the unpickler pulls them lazily through ``buffers=``.

``reducer_override`` takes over the arrays numpy would otherwise copy whole
with ``tobytes()`` (non-contiguous views, dtypes without a buffer export such
as datetime64, ``np.memmap`` and other subclasses, masked arrays), so that
their data is streamed in bounded pieces instead.
"""

from __future__ import annotations

import mmap
import pickle
from array import array as PyArray
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from . import _construct as construct
from ._descr import Undescribable, describe
from ._manifest import note_module
from ._pandas_reduce import reducers as pandas_reducers
from ._reader import ContainerReader
from ._reconstruct import view_as
from ._writer import ContainerWriter

PROTOCOL = 5

#: ``pieces(size)``: an array's bytes as contiguous pieces of about ``size``.
PieceSource = Callable[[int], Iterable[memoryview]]

# With a codec, buffers smaller than this stay in the opcode stream, where
# they compress together with their neighbours instead of each starting a
# fresh compression context (a fitted forest's many node arrays: 3.8% larger
# out of band at 64 KiB, 1.1% at 1 MiB, against one-call zstd), for one
# memcpy each way.  Without a codec every buffer goes out of band, so
# mmap_mode maps every array however small.
INBAND_LIMIT = 1 << 20

_NUMPY_TYPES = (np.ndarray, np.generic, np.dtype)
# Elements that cannot refer back to the array holding them.
_ATOMIC = frozenset((str, int, float, bool, bytes, complex, type(None)))
_NDARRAY_REDUCE = (np.ndarray.__reduce__, np.ndarray.__reduce_ex__, np.ndarray.__setstate__)


class _BufferSink:
    """The pickler's ``buffer_callback``: decides, for every ``PickleBuffer``
    met, whether it goes in-band or out-of-band, and writes the latter as a
    payload record.

    It is an object of its own, not a method of the pickler: a pickler
    holding its own bound method is a reference cycle, and would keep every
    object it dumped (its memo) alive after ``dump`` returns, until the
    garbage collector runs.

    Out-of-band buffers load as whatever the reader hands back (a view of
    a payload, or of a memory map), which the constructors they feed
    (``numpy.ndarray``, numpy's ``_frombuffer``, pyarrow's ``py_buffer``)
    accept.  A *bare* ``PickleBuffer`` stored as a value must load as pickle
    loads it in-band (``bytes`` if read-only, ``bytearray`` if writable), so
    buffers over the builtin exporters go in-band unless codecpickle's own
    array reduction made them.
    """

    def __init__(self, writer: ContainerWriter) -> None:
        self._writer = writer
        self._inband_limit = 0 if writer.codec is None else INBAND_LIMIT
        # Keyed by the id of the exporter of each PickleBuffer the array
        # reduction made, holding it so the id cannot be reused meanwhile.
        self.arrays: dict[int, Any] = {}
        # Non-contiguous arrays, keyed by the id of the empty placeholder
        # whose PickleBuffer stands in for them (the pickler refuses
        # non-contiguous PickleBuffers before the callback sees them).
        self.strided: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        # Payloads whose bytes come from elsewhere (Pickler.reduce_streamed),
        # keyed like ``strided``: (placeholder, nbytes, itemsize, pieces).
        self.streamed: dict[int, tuple[np.ndarray, int, int, PieceSource]] = {}

    def __call__(self, buffer: pickle.PickleBuffer) -> bool:
        view = memoryview(buffer)
        exporter = view.obj
        streamed = self.streamed.pop(id(exporter), None)
        if streamed is not None:
            _, nbytes, itemsize, pieces = streamed
            self._writer.write_payload_pieces(nbytes, pieces(self._writer.chunk_size), itemsize)
            return False
        strided = self.strided.pop(id(exporter), None)
        if strided is not None:
            _, array = strided
            pieces = _c_order_pieces(array, self._writer.chunk_size)
            self._writer.write_payload_pieces(array.nbytes, pieces, array.itemsize)
            return False
        ours = self.arrays.pop(id(exporter), None) is exporter
        if not ours and isinstance(exporter, _BARE_EXPORTERS):
            return True  # a bare PickleBuffer: pickle's own bytes/bytearray
        raw = buffer.raw()
        if raw.nbytes < self._inband_limit and not self._writer.filter_pays_off(
            raw, view.itemsize
        ):
            return True  # pickle it in-band, inside the opcode stream
        self._writer.write_payload(raw, view.itemsize)
        return False


# Exporters whose PickleBuffers (unless the array reduction made them) are
# pickled in-band, so they load exactly as pickle loads them.  That includes
# numpy's own reduction of the rare ndarray subclasses codecpickle leaves to
# numpy (``_frombuffer`` accepts the bytearray as well).  Third-party
# exporters (pyarrow buffers) stay out-of-band: the constructors their
# reductions name take the payload view without a copy.
_BARE_EXPORTERS = (bytes, bytearray, memoryview, PyArray, mmap.mmap, np.ndarray)


class Pickler(pickle.Pickler):
    """``pickle.Pickler`` (the C implementation) writing into a container."""

    def __init__(self, writer: ContainerWriter) -> None:
        sink = _BufferSink(writer)
        super().__init__(writer, protocol=PROTOCOL, buffer_callback=sink)
        self._sink = sink
        # id(dtype) -> (dtype, its description or None)
        self._descrs: dict[int, tuple[np.dtype, Any]] = {}
        self._other_reducers = pandas_reducers()
        #: Modules of the classes and functions pickled, for the manifest.
        self.modules: set[str] = set()

    def reducer_override(self, obj: Any) -> Any:
        # Called for every object that is not a builtin scalar or container,
        # so the common case (not numpy) must return fast.
        note_module(self.modules, obj)
        if not isinstance(obj, _NUMPY_TYPES):
            reducer = self._other_reducers.get(type(obj))
            return NotImplemented if reducer is None else reducer(obj)
        if isinstance(obj, np.generic):
            return self._reduce_scalar(obj)
        if isinstance(obj, np.dtype):
            descr = self._describe(obj)
            return NotImplemented if descr is None else (construct.dtype, (descr,))
        cls = type(obj)
        if cls is np.ndarray:
            return self._reduce_plain(obj)
        if isinstance(obj, np.memmap):
            # The data, not the mapping: it loads as an ndarray (or as a
            # fresh memory map of the new file with mmap_mode).
            return self._reduce_plain(obj.view(np.ndarray))
        if cls is np.ma.MaskedArray:
            return self._reduce_masked(obj)
        if cls is np.matrix:
            return construct.matrix, (obj.view(np.ndarray),)
        if (cls.__reduce__, cls.__reduce_ex__, cls.__setstate__) == _NDARRAY_REDUCE:
            # numpy would rebuild the subclass from a ``tobytes()`` copy and
            # drop its ``__dict__``; a view gives the same without the copy.
            return view_as, (obj.view(np.ndarray), cls)
        return NotImplemented

    def _describe(self, dtype: np.dtype) -> Any:
        """The description of ``dtype`` (None if it has none), remembered
        per dtype object: files hold many arrays of few dtypes."""
        known = self._descrs.get(id(dtype))
        if known is not None:
            return known[1]
        try:
            descr = describe(dtype)
        except Undescribable:
            descr = None
        self._descrs[id(dtype)] = (dtype, descr)  # held, so the id stays its own
        return descr

    def _reduce_plain(self, array: np.ndarray) -> Any:
        """Reduce an exact ndarray to ``construct.array(shape, descr, order,
        data)``, with plain data as an out-of-band ``PickleBuffer``.

        Only codecpickle's own constructor appears in the stream, so files
        load under any numpy version.  It also covers what numpy's own
        protocol-5 reduction copies whole: dtypes that refuse the buffer
        protocol (datetime64) get a void-typed view of the same memory, and
        non-contiguous arrays are streamed in C order by the callback.
        """
        dtype = array.dtype
        descr = self._describe(dtype)
        if descr is None:
            return NotImplemented
        contiguous = array.flags.c_contiguous or array.flags.f_contiguous
        order = "F" if contiguous and not array.flags.c_contiguous else "C"
        if dtype.hasobject:
            return _reduce_objects(array, descr, order)
        if dtype.itemsize == 0:
            return construct.array, (array.shape, descr, order, b"")
        if contiguous:
            data = array.view(np.dtype((np.void, dtype.itemsize)))
            self._sink.arrays[id(data)] = data
        else:
            # An empty stand-in with the array's writeability (which decides
            # whether the loaded buffer is writeable).
            data = np.empty(0, dtype=np.dtype((np.void, dtype.itemsize)))
            data.flags.writeable = array.flags.writeable
            # A void view too: dtypes like datetime64 refuse buffer exports.
            self._sink.strided[id(data)] = (data, array.view(data.dtype))
        return construct.array, (array.shape, descr, order, pickle.PickleBuffer(data))

    def reduce_streamed(
        self, shape: tuple[int, ...], dtype: np.dtype, order: str, pieces: PieceSource
    ) -> Any:
        """Reduce an array that is not in memory: ``shape``, ``dtype`` and
        ``order`` describe it, and ``pieces(size)`` yields its bytes in
        ``order`` as contiguous pieces of about ``size`` bytes when the
        payload is written.  The stream names the same constructor as for
        any array (``NotImplemented`` if the dtype has no description)."""
        descr = self._describe(dtype)
        if descr is None or dtype.hasobject or dtype.itemsize == 0:
            return NotImplemented
        placeholder = np.empty(0, dtype=np.dtype((np.void, dtype.itemsize)))
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        self._sink.streamed[id(placeholder)] = (placeholder, nbytes, dtype.itemsize, pieces)
        return construct.array, (shape, descr, order, pickle.PickleBuffer(placeholder))

    def _reduce_scalar(self, value: np.generic) -> Any:
        descr = self._describe(value.dtype)
        if descr is None or value.dtype.kind == "T":
            return NotImplemented
        data: Any = [value.item()] if value.dtype.hasobject else value.tobytes()
        if type(data) is bytes and len(data) != value.dtype.itemsize:
            return NotImplemented  # numpy's odd empty-string scalars
        return construct.scalar, (descr, data)

    def _reduce_masked(self, array: np.ma.MaskedArray) -> Any:
        data = array.data  # a view of the base class, no copy
        fill_value = array.fill_value
        plain_fill = type(fill_value) in (bool, int, float, complex, str, bytes) or (
            isinstance(fill_value, np.generic) and not fill_value.dtype.hasobject
        )
        if type(data) is not np.ndarray or not plain_fill:
            return NotImplemented
        return construct.masked, (data, np.ma.getmaskarray(array), fill_value, bool(array.hardmask))


def _reduce_objects(array: np.ndarray, descr: Any, order: str) -> Any:
    """Arrays holding Python objects: their elements as a list.  Object
    arrays may contain themselves, so they are made (full of None) first
    and filled once the pickler has memoized them."""
    if array.dtype.kind == "T":  # StringDType: strings only, one call
        return construct.array, (array.shape, descr, order, array.ravel(order).tolist())
    # tolist: the elements themselves for the object dtype, tuples of
    # plain values for structured ones.
    items = array.ravel(order).tolist()
    if _ATOMIC.issuperset(map(type, items)):
        return construct.array, (array.shape, descr, order, items)
    # Elements that may contain the array itself: the pickler memoizes the
    # array first, then calls ``fill(array, items)``.
    return construct.array, (array.shape, descr, order, None), items, None, None, construct.fill


def _c_order_pieces(array: np.ndarray, target: int) -> Iterator[memoryview]:
    """The bytes of a non-contiguous array in C order, as contiguous pieces
    of at most ``target`` bytes (one element at least), copying one piece at
    a time."""
    if array.ndim == 0 or array.nbytes <= target:
        if array.size:
            yield memoryview(np.ascontiguousarray(array)).cast("B")
        return
    row_bytes = array[0].nbytes or 1
    if row_bytes <= target:
        rows = max(1, target // row_bytes)
        for start in range(0, array.shape[0], rows):
            yield memoryview(np.ascontiguousarray(array[start : start + rows])).cast("B")
    else:
        for row in array:
            yield from _c_order_pieces(row, target)


class Unpickler(pickle.Unpickler):
    """``pickle.Unpickler`` (the C implementation) reading from a container."""

    def __init__(self, reader: ContainerReader) -> None:
        super().__init__(reader, buffers=reader.buffers())
