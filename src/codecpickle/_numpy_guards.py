"""Checked forms of the numpy entry points a restricted load admits.

numpy's unpickling code trusts its input.  ``ndarray.__setstate__`` copies
as many objects as the shape says from a list however short it is, and frees
the old data while views of it may still exist; ``dtype.__setstate__`` takes
flags, sizes and field tables as given, and keeps the stream's own (still
mutable) dict as its field table; ``ndarray(...)`` builds an object array
over raw bytes whose "pointers" the file chooses.  A hostile stream naming
only admitted numpy globals could use any of these to read or write
arbitrary memory.

The checks here accept what numpy's own pickles and codecpickle's contain
and refuse anything else with :class:`CorruptDataError` before numpy sees
it.  The rules:

* dtypes are never changed in place, and numpy's ``dtype.__setstate__``
  never runs: a dtype's BUILD state is read here and the dtype it describes
  is built by numpy's constructor (:func:`rebuilt_dtype`), so every dtype an
  array can hold is one numpy vouches for, for good;
* an array's state is only set on an empty array (numpy's pickles always
  start from one), with a shape, dtype and data that agree
  (:func:`build_array`);
* memory that holds object pointers is never taken as plain data
  (:func:`exposes_object_memory`);
* dtypes nest at most :attr:`DtypeDepths.LIMIT` levels deep.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .errors import CorruptDataError

__all__ = [
    "GUARDED",
    "build_array",
    "checked_ndarray",
    "DtypeDepths",
    "exposes_object_memory",
    "rebuilt_dtype",
    "unguard",
]

_NUMPY_RECONSTRUCT = np.ndarray.__reduce__(np.empty(0))[0]  # multiarray._reconstruct
_NUMPY_SCALAR = np.float64(0).__reduce__()[0]  # multiarray.scalar
_NUMPY_FROMBUFFER = np.arange(1).__reduce_ex__(5)[0]  # numeric._frombuffer
_MAX_DIMS = 64  # numpy 2's limit; numpy 1.x allows 32, and refuses more itself
_BYTE_ORDERS = frozenset("<>|=")


def _refuse(what: str) -> CorruptDataError:
    return CorruptDataError(f"the stream {what}, which no genuine stream does; refused")


def _element_count(shape: Any) -> int:
    """The number of elements of ``shape`` (an int or a tuple of ints, as
    numpy's constructors take it), or :class:`CorruptDataError`."""
    dims = (shape,) if type(shape) is int else shape
    if not (
        type(dims) is tuple
        and len(dims) <= _MAX_DIMS
        and all(type(n) in (int, bool) and n >= 0 for n in dims)
    ):
        raise CorruptDataError(f"the stream gives {shape!r} where an array shape belongs")
    return math.prod(dims)


# -- constructors --------------------------------------------------------------


def exposes_object_memory(obj: Any) -> bool:
    """Whether ``obj`` lends, through the buffer protocol, memory that holds
    object pointers: an array or numpy scalar whose dtype holds objects
    (numpy 2's StringDType included), or a memoryview of one.

    Such memory must never be viewed as plain data: read, it gives away
    addresses; written through a writable view, it plants pointers that
    the array later dereferences.
    """
    if isinstance(obj, memoryview):
        obj = obj.obj
    return isinstance(obj, np.ndarray | np.generic) and obj.dtype.hasobject


def _plain_buffer(buffer: Any) -> Any:
    if exposes_object_memory(buffer):
        raise _refuse("views the memory of Python objects as plain data")
    return buffer


def checked_ndarray(
    shape: Any,
    dtype: Any = float,
    buffer: Any = None,
    offset: int = 0,
    strides: Any = None,
    order: Any = None,
) -> np.ndarray:
    """``numpy.ndarray(...)`` as codecpickle's streams call it: plain (not
    object) elements over a buffer of plain data."""
    if buffer is None:
        # The array's contents would be whatever was in memory before.
        raise _refuse("builds an array without data")
    if np.dtype(dtype).hasobject:
        # Touching an element would dereference file-chosen "pointers".
        raise _refuse("builds an array of Python objects over raw bytes")
    return np.ndarray(shape, dtype, _plain_buffer(buffer), offset, strides, order)


def unguard(cls: Any) -> Any:
    """The class a pickle means where it passes the global ``numpy.ndarray``
    (which a restricted load resolves to :func:`checked_ndarray`) on as a
    type."""
    return np.ndarray if cls is checked_ndarray else cls


def _checked_reconstruct(subtype: Any, shape: Any, dtype: Any) -> Any:
    # numpy's reduction always passes an empty shape, (0,): the data follows
    # in the BUILD state.  A larger one would expose uninitialized memory.
    if _element_count(shape) != 0:
        raise _refuse("starts an array rebuild from a non-empty shape")
    return _NUMPY_RECONSTRUCT(unguard(subtype), shape, dtype)


def _checked_mareconstruct(subtype: Any, baseclass: Any, baseshape: Any, basetype: Any) -> Any:
    if _element_count(baseshape) != 0:
        raise _refuse("starts a masked array rebuild from a non-empty shape")
    return np.ma.core._mareconstruct(unguard(subtype), unguard(baseclass), baseshape, basetype)


def _checked_frombuffer(buffer: Any, *args: Any, **kwargs: Any) -> np.ndarray:
    """numpy's protocol-5 array rebuild, over a buffer of plain data (numpy
    itself refuses object dtypes for the result)."""
    return _NUMPY_FROMBUFFER(_plain_buffer(buffer), *args, **kwargs)


def _checked_scalar(dtype: Any, *args: Any) -> Any:
    """``multiarray.scalar``; for dtypes holding objects (other than the
    plain object dtype, for which numpy returns the argument itself), only
    from an array that has the element numpy copies."""
    dtype = _require_dtype(dtype)
    if dtype.hasobject and dtype.kind != "O":
        # Structured or subarray dtypes with object parts: numpy copies the
        # element from the array's data without checking that it has one.
        source = args[0] if args else None
        if not (type(source) is np.ndarray and source.size >= 1):
            raise _refuse("builds a scalar holding objects from an empty array")
    return _NUMPY_SCALAR(dtype, *args)


# -- dtypes ----------------------------------------------------------------------

# numpy's dtype flag "aligned struct" (NPY_ALIGNED_STRUCT).
_ALIGNED_STRUCT = 0x80
_NATIVE_ORDER = "<" if np.little_endian else ">"
_DATETIME_UNITS = frozenset(
    ("Y", "M", "W", "D", "h", "m", "s", "ms", "us", "ns", "ps", "fs", "as", "generic")
)


def _require_dtype(dtype: Any) -> np.dtype:
    # Every dtype a restricted load holds comes from numpy's constructor
    # (directly, or through rebuilt_dtype), so numpy vouches for it.
    if not isinstance(dtype, np.dtype):
        raise CorruptDataError(f"the stream gives {type(dtype).__name__} where a dtype belongs")
    return dtype


def rebuilt_dtype(dtype: np.dtype, state: Any) -> np.dtype:
    """What a BUILD opcode applying ``state`` to ``dtype`` should give, built
    by numpy's validating constructor; ``dtype`` itself is left alone.

    numpy's own ``dtype.__setstate__`` must not run on stream data: it takes
    flags and sizes as given (a datetime that "holds object pointers"), keeps
    the stream's mutable dict as its field table, and crashes on some
    states outright.  So the state (the form numpy >= 1.7 writes: version 3,
    or 4 with metadata) is read here, the dtype it describes is built from
    ``dtype``'s type and the state's fields, unit and byte order, and the
    state's sizes and flags must agree with what numpy computed.
    """
    _check_dtype_state(state)
    _, order, subarray, names, fields, itemsize, alignment, flags = state[:8]
    extra = state[8] if len(state) == 9 else None
    metadata, unit = extra, None
    if dtype.kind in "mM" and type(extra) is tuple:
        if len(extra) != 2:
            raise _refuse("gives a datetime dtype malformed metadata")
        metadata, unit = extra
    if metadata is not None and type(metadata) is not dict:
        raise _refuse("gives a dtype malformed metadata")
    try:
        built = _dtype_described(dtype, order, subarray, names, fields, itemsize, flags, unit)
        if metadata:
            built = np.dtype(built, metadata=dict(metadata))
    except (TypeError, ValueError, KeyError, OverflowError) as exc:
        raise CorruptDataError(f"the stream describes a dtype numpy refuses: {exc}") from exc
    if -128 <= flags < 0:
        flags += 128  # numpy <= 1.x wrote the flags as a signed char
    sized = dtype.kind in "SUV"  # the state carries size and alignment only for these
    if (
        flags != built.flags
        or (sized and (itemsize, alignment) != (built.itemsize, built.alignment))
        or (not sized and (itemsize, alignment) != (-1, -1))
    ):
        raise CorruptDataError(
            "the stream builds a dtype whose flags or layout contradict its description; refused"
        )
    return built


def _dtype_described(
    dtype: np.dtype,
    order: str,
    subarray: Any,
    names: Any,
    fields: Any,
    itemsize: int,
    flags: int,
    unit: Any,
) -> np.dtype:
    if names is not None or subarray is not None:
        if dtype.kind != "V":
            # ("i4", [fields]) views of a plain type: legal numpy, but
            # never needed for data.
            raise _refuse("gives fields or a subarray to a dtype that is not void")
        if subarray is not None:
            return np.dtype(subarray)
        spec: dict[str, Any] = {
            "names": list(names),
            "formats": [fields[name][0] for name in names],
            "offsets": [fields[name][1] for name in names],
            "itemsize": itemsize,
        }
        titles = [fields[name][2] if len(fields[name]) > 2 else None for name in names]
        if any(title is not None for title in titles):
            spec["titles"] = titles
        return np.dtype(spec, align=bool(flags & _ALIGNED_STRUCT))
    if dtype.kind in "mM" and unit is not None:
        built = np.dtype(f"{dtype.char}8{_datetime_unit(unit)}")
    elif dtype.kind in "SUV":
        per_char = 4 if dtype.kind == "U" else 1
        if itemsize < 0 or itemsize % per_char:
            raise _refuse("gives a string dtype an impossible size")
        built = np.dtype(f"{dtype.kind}{itemsize // per_char}")
    else:
        built = np.dtype(dtype.str[1:])
    if order in "<>" and order != _NATIVE_ORDER and built.byteorder != "|":
        built = built.newbyteorder(order)
    wanted = _NATIVE_ORDER if order == "=" else order
    actual = _NATIVE_ORDER if built.byteorder == "=" else built.byteorder
    if wanted != actual:
        raise _refuse(f"gives a {built} dtype the byte order {order!r}")
    return built


def _datetime_unit(unit: Any) -> str:
    """The ``[10ms]`` part of a datetime dtype string, from the
    ``(unit, count, 1, 1)`` tuple numpy pickles."""
    if not (type(unit) is tuple and len(unit) == 4 and unit[2:] == (1, 1)):
        raise _refuse("gives a datetime dtype a malformed unit")
    name, count = unit[0], unit[1]
    if type(name) is bytes:
        name = name.decode("ascii", "replace")
    if not (name in _DATETIME_UNITS and type(count) is int and 0 < count < 2**31):
        raise _refuse("gives a datetime dtype a malformed unit")
    return "" if name == "generic" else f"[{count}{name}]"


def _check_dtype_state(state: Any) -> None:
    """Refuse a dtype BUILD state that is not of the form numpy writes."""
    if not (type(state) is tuple and len(state) in (8, 9)):
        raise _refuse("gives a dtype a malformed state")
    version, byteorder, subarray, names, fields, itemsize, alignment, flags = state[:8]
    ints = (version, itemsize, alignment, flags)
    if not all(type(n) is int and -(2**31) <= n < 2**31 for n in ints) or version not in (3, 4):
        raise _refuse("gives a dtype a malformed state")
    if not (type(byteorder) is str and byteorder in _BYTE_ORDERS):
        raise _refuse("gives a dtype a malformed byte order")
    if subarray is not None:
        if not (type(subarray) is tuple and len(subarray) == 2):
            raise _refuse("gives a dtype a malformed subarray")
        _require_dtype(subarray[0])
        _element_count(subarray[1])
    if (names is None) != (fields is None):
        raise _refuse("gives a dtype names without fields, or fields without names")
    if names is not None:
        if not (type(names) is tuple and type(fields) is dict):
            raise _refuse("gives a dtype a malformed field table")
        if not all(type(name) is str and name in fields for name in names):
            raise _refuse("gives a dtype names missing from its field table")
        for entry in fields.values():
            if not (
                type(entry) is tuple
                and len(entry) in (2, 3)
                and type(entry[1]) is int
                and entry[1] >= 0
                and (len(entry) == 2 or entry[2] is None or type(entry[2]) is str)
            ):
                raise _refuse("gives a dtype a malformed field")
            _require_dtype(entry[0])


class DtypeDepths:
    """Refuses dtypes nested deeper than :attr:`LIMIT`.

    numpy compares, hashes, fills and frees nested structured dtypes by C
    recursion without a depth guard: a dtype nested some tens of thousands
    of levels deep, which a stream can build one level per call, crashes
    the process on ``==`` or when an array of it is created.  Genuine data
    nests a few levels.  Depths are remembered per dtype object (held, so
    its id stays its own), so checking a new dtype costs one look at each
    of its fields.
    """

    LIMIT = 64

    def __init__(self) -> None:
        self._known: dict[int, tuple[np.dtype, int]] = {}

    def check(self, dtype: np.dtype) -> None:
        if self.depth(dtype) > self.LIMIT:
            raise _refuse(f"builds a dtype nested more than {self.LIMIT} levels deep")

    def depth(self, dtype: np.dtype) -> int:
        """Levels of nesting of ``dtype`` (1 for a plain dtype), or any
        number over the limit once a path is seen to exceed it."""
        known = self._known
        pending = [(dtype, 1, False)]  # post-order walk, without recursion
        while pending:
            current, level, expanded = pending.pop()
            if id(current) in known:
                continue
            parts = _parts(current)
            if not expanded:
                if level > self.LIMIT:
                    return level
                pending.append((current, level, True))
                pending += [(part, level + 1, False) for part in parts if id(part) not in known]
                continue
            depth = 1 + max((known[id(part)][1] for part in parts), default=0)
            known[id(current)] = (current, depth)
        return known[id(dtype)][1]


def _parts(dtype: np.dtype) -> list[np.dtype]:
    parts = []
    if dtype.names is not None:
        fields = dtype.fields
        assert fields is not None
        parts = [fields[name][0] for name in dtype.names]
    if dtype.subdtype is not None:
        parts.append(dtype.subdtype[0])
    return parts


# -- array state -------------------------------------------------------------------


def build_array(array: np.ndarray, state: Any) -> bool:
    """Apply a BUILD ``state`` to ``array`` if numpy's own ``__setstate__``
    (or ``MaskedArray``'s) would, after checking it; False for a subclass
    with a ``__setstate__`` of its own (admitted by the caller, who vouches
    for it), which the caller then applies as usual."""
    setstate = type(array).__setstate__
    if setstate is np.ndarray.__setstate__:
        _check_empty(array)
        _check_array_state(state)
    elif setstate is np.ma.MaskedArray.__setstate__:
        _check_masked_state(array, state)
    else:
        return False
    setstate(array, state)
    return True


def _check_empty(array: np.ndarray) -> None:
    # numpy frees the old data while views of it may remain; nothing can be
    # read through a view of an empty array.
    if array.size != 0:
        raise _refuse("resets the state of an array that already holds data")


def _check_array_state(state: Any) -> None:
    if type(state) is tuple and len(state) == 5 and type(state[0]) is int:
        state = state[1:]
    if not (type(state) is tuple and len(state) == 4):
        raise _refuse("gives an array a malformed state")
    shape, dtype, fortran, data = state
    count = _element_count(shape)
    dtype = _require_dtype(dtype)
    if type(fortran) not in (bool, int):
        raise _refuse("gives an array a malformed memory order")
    if dtype.hasobject:
        # numpy copies `count` items from the list without checking its length
        if not (type(data) is list and len(data) == count):
            raise _refuse("gives an object array a list of the wrong length")
    elif not (type(data) is bytes and len(data) == count * dtype.itemsize):
        raise _refuse("gives an array data of the wrong size")


def _check_masked_state(array: np.ndarray, state: Any) -> None:
    if not (type(state) is tuple and len(state) == 7):
        raise _refuse("gives a masked array a malformed state")
    _, shape, dtype, fortran, data, mask_data, _ = state
    _check_empty(array)
    mask = array._mask  # type: ignore[attr-defined]
    if mask is not np.ma.nomask:
        _check_empty(mask)
    _check_array_state((shape, dtype, fortran, data))
    mask_dtype = np.ma.make_mask_descr(dtype)
    _check_array_state((shape, mask_dtype, fortran, mask_data))


#: Globals a restricted load resolves to checked forms instead.  Not here,
#: because they check their arguments themselves: codecpickle's ``view_as``
#: and ``masked_array``.
GUARDED: dict[str, Any] = {
    "numpy.ndarray": checked_ndarray,
    "numpy.core.numeric._frombuffer": _checked_frombuffer,
    "numpy._core.numeric._frombuffer": _checked_frombuffer,
    "numpy.core.multiarray.scalar": _checked_scalar,
    "numpy._core.multiarray.scalar": _checked_scalar,
    "numpy.core.multiarray._reconstruct": _checked_reconstruct,
    "numpy._core.multiarray._reconstruct": _checked_reconstruct,
    "numpy.ma.core._mareconstruct": _checked_mareconstruct,
}
