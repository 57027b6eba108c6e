"""joblib's array wrappers: what they mean, checked in one place.

Since 0.10, ``joblib.dump`` writes one pickle stream in which each numpy
array is replaced by a ``NumpyArrayWrapper`` object (built by NEWOBJ, its
attributes set by BUILD: ``subclass``, ``shape``, ``order``, ``dtype``,
``allow_mmap`` and, from joblib 1.2, ``numpy_array_alignment_bytes``), and
the array's bytes follow that BUILD opcode directly in the file: for
plain dtypes the raw elements in the wrapper's order, preceded (when an
alignment is given) by one byte holding a padding length and that many
padding bytes; for dtypes holding objects, a complete inner pickle of the
array.  A compressed joblib file is that same stream inside one
compression format.

Nothing here imports joblib: the unpicklers resolve the wrapper's global
to :class:`WrapperStub`, and at its BUILD call :func:`array_spec` on the
state, which accepts only what joblib writes, then :func:`read_array` or
:func:`map_array` to build the array through numpy's public constructors
(``numpy.empty`` filled from the file, or ``numpy.memmap``).  Restricted
loads use the same path: the state's values come from the restricted
unpickler, so its dtype is one numpy built, and its subclass a global the
allowlist admitted.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._sources import allocate
from ..errors import CorruptDataError, FileFormatError, TruncatedFileError

__all__ = [
    "LEGACY_WRAPPER_NAMES",
    "MEMMAP_NAMES",
    "WRAPPER_NAMES",
    "ArraySpec",
    "MapTarget",
    "WrapperStub",
    "array_spec",
    "build_array",
    "refuse_legacy_wrapper",
]

# joblib's module, and the copy scikit-learn shipped until 0.23.
_JOBLIB_MODULES = ("joblib", "sklearn.externals.joblib")

#: Globals naming joblib's array wrapper.
WRAPPER_NAMES = frozenset(f"{module}.numpy_pickle.NumpyArrayWrapper" for module in _JOBLIB_MODULES)

#: Wrappers of joblib < 0.10's multi-file formats (arrays in side files),
#: which joblib >= 0.10 never writes.
LEGACY_WRAPPER_NAMES = frozenset(
    f"{module}.{submodule}.{name}"
    for module in _JOBLIB_MODULES
    for submodule in ("numpy_pickle", "numpy_pickle_compat")
    for name in ("NDArrayWrapper", "ZNDArrayWrapper")
)

#: How ``numpy.memmap`` is named as a wrapper's subclass (memmaps that were
#: dumped): a marker stands for it, never the class, which opens files.
MEMMAP_NAMES = frozenset(("numpy.memmap", "numpy.core.memmap.memmap", "numpy._core.memmap.memmap"))

_STATE_KEYS = frozenset(
    ("subclass", "shape", "order", "dtype", "allow_mmap", "numpy_array_alignment_bytes")
)
_REQUIRED_KEYS = frozenset(("subclass", "shape", "order", "dtype"))
_MAX_DIMS = 64
# Array data is read into its final memory in pieces of this size, so a
# decompressor's output never grows past it.
_READ_PIECE = 16 << 20


class WrapperStub:
    """What a stream's ``NumpyArrayWrapper`` global resolves to: an empty
    placeholder that the unpickler replaces by the array at its BUILD."""

    __slots__ = ()

    def __reduce__(self) -> Any:
        raise TypeError("a joblib array wrapper that was never given its state")


class MemmapMarker:
    """Stands for ``numpy.memmap`` as a wrapper's subclass."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "numpy.memmap"


MEMMAP_MARKER = MemmapMarker()


def refuse_legacy_wrapper(dotted: str) -> FileFormatError:
    return FileFormatError(
        f"the stream names {dotted}, the array wrapper of joblib < 0.10's multi-file "
        "format (arrays kept in side files), which joblib >= 0.10 no longer writes and "
        "codecpickle does not read; load it once with joblib.load and dump it again"
    )


@dataclass(frozen=True)
class ArraySpec:
    """A checked wrapper state."""

    subclass: type | None  # None: a plain ndarray (or a memmap when mapped)
    shape: tuple[int, ...]
    order: str
    dtype: np.dtype
    allow_mmap: bool
    alignment: int | None
    count: int

    @property
    def nbytes(self) -> int:
        return self.count * self.dtype.itemsize


@dataclass(frozen=True)
class MapTarget:
    """Where mapped arrays come from: the file, the mode, and the file
    offset of the stream's first byte."""

    filename: str
    mode: str
    start: int


def _bad(what: str) -> CorruptDataError:
    return CorruptDataError(f"a joblib array wrapper {what}; the file is damaged or forged")


def array_spec(state: Any) -> ArraySpec:
    """Check a ``NumpyArrayWrapper`` BUILD state; accept only what joblib
    writes (see the module docstring)."""
    if type(state) is not dict or not all(type(key) is str for key in state):
        raise _bad("has a state that is not a dict of attributes")
    unknown = state.keys() - _STATE_KEYS
    missing = _REQUIRED_KEYS - state.keys()
    if unknown or missing:
        raise _bad(f"has attributes {sorted(unknown)} and lacks {sorted(missing)}")
    shape = state["shape"]
    if not (
        type(shape) is tuple
        and len(shape) <= _MAX_DIMS
        and all(type(n) is int and n >= 0 for n in shape)
    ):
        raise _bad(f"gives the shape {shape!r}")
    order = state["order"]
    if order not in ("C", "F") or type(order) is not str:
        raise _bad(f"gives the order {order!r}")
    dtype = state["dtype"]
    if not isinstance(dtype, np.dtype):
        raise _bad(f"gives {type(dtype).__name__} where a dtype belongs")
    allow_mmap = state.get("allow_mmap", False)
    if type(allow_mmap) is not bool:
        raise _bad(f"gives allow_mmap={allow_mmap!r}")
    alignment = state.get("numpy_array_alignment_bytes")
    if alignment is not None and not (type(alignment) is int and 1 <= alignment <= 255):
        raise _bad(f"gives the alignment {alignment!r}")
    return ArraySpec(
        _subclass(state["subclass"]),
        shape,
        order,
        dtype,
        allow_mmap,
        alignment,
        math.prod(shape),
    )


def _subclass(value: Any) -> type | None:
    # Array hooks wrap constructors: the class meant is the original.
    value = getattr(value, "__wrapped_constructor__", value)
    if value is np.ndarray or value is np.memmap or isinstance(value, MemmapMarker):
        return None
    if isinstance(value, type) and issubclass(value, np.ndarray):
        return value
    raise _bad(f"gives {value!r} where an ndarray subclass belongs")


@dataclass
class ArrayIO:
    """How :func:`build_array` reads what follows a wrapper: ``read`` and
    ``readinto`` from the opcode stream's current position, ``tell`` its
    offset, ``skip`` to jump over bytes, ``check_size`` to bound what the
    input declares, ``load_inline_pickle`` to unpickle an inner pickle."""

    read: Callable[[int], bytes]
    readinto: Callable[[memoryview], int]
    tell: Callable[[], int]
    skip: Callable[[int], None]
    check_size: Callable[[int, str], None]
    load_inline_pickle: Callable[[], Any]


#: Builds an array from (shape, dtype, order, data bytes).
Construct = Callable[[tuple[int, ...], np.dtype, str, memoryview], np.ndarray]


def _numpy_array(shape: tuple[int, ...], dtype: np.dtype, order: str, data: memoryview) -> Any:
    return np.ndarray(shape, dtype, buffer=data, order=order)


def build_array(
    spec: ArraySpec, io: ArrayIO, target: MapTarget | None, construct: Construct = _numpy_array
) -> Any:
    """The array a checked wrapper stands for, reading its data from ``io``
    (or mapping it from ``target``'s file when the wrapper allows it) and
    building it with ``construct`` (restricted loads pass codecpickle's
    checked constructor)."""
    if spec.dtype.hasobject:
        array = io.load_inline_pickle()
        if type(array) is not np.ndarray or array.shape != spec.shape:
            raise _bad("is followed by something other than its array")
        return _as_subclass(array, spec)
    _skip_padding(spec, io)
    if target is not None and spec.allow_mmap and spec.nbytes:
        io.check_size(spec.nbytes, "array data")
        array: np.ndarray = np.memmap(
            target.filename,
            dtype=spec.dtype,
            mode=target.mode,
            offset=target.start + io.tell(),
            shape=spec.shape,
            order=spec.order,
        )
        io.skip(spec.nbytes)
    else:
        array = _read_elements(spec, io, construct)
    return _as_subclass(array, spec)


def _skip_padding(spec: ArraySpec, io: ArrayIO) -> None:
    if spec.alignment is None:
        return
    head = io.read(1)
    if len(head) != 1:
        raise TruncatedFileError("a joblib file ends before the padding of an array")
    if head[0] and len(io.read(head[0])) != head[0]:
        raise TruncatedFileError("a joblib file ends inside the padding of an array")


def _read_elements(spec: ArraySpec, io: ArrayIO, construct: Construct) -> np.ndarray:
    io.check_size(spec.nbytes, "array data")
    data = _filled(spec, io) if spec.nbytes else np.empty(0, dtype=np.uint8)
    # The elements were written in the wrapper's order: its memory layout.
    return construct(spec.shape, spec.dtype, spec.order, memoryview(data))


def _filled(spec: ArraySpec, io: ArrayIO) -> np.ndarray:
    raw = allocate(spec.nbytes, "array data", io.tell())
    view = memoryview(raw)
    filled = 0
    while filled < spec.nbytes:
        count = io.readinto(view[filled : filled + _READ_PIECE])
        if not count:
            raise TruncatedFileError(
                f"a joblib file ends inside an array's data: {spec.nbytes} bytes declared, "
                f"{filled} present"
            )
        filled += count
    return raw


def _as_subclass(array: np.ndarray, spec: ArraySpec) -> Any:
    if spec.subclass is None:
        return array
    # joblib rebuilt subclasses through __array_prepare__, gone in numpy 2;
    # a view gives the same without copying.
    return array.view(spec.subclass)
