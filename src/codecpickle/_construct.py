"""The constructors codecpickle's files name to rebuild numpy data.

PART OF THE FILE FORMAT: streams call these by module and name
(``codecpickle._construct.array`` ...), with the arguments documented here.
Never rename, move, remove or change the meaning of anything public in this
module; add new constructors instead (docs/format.md lists them).

Every constructor takes plain, checked data (shapes as tuples of ints, a
dtype *description* that :mod:`codecpickle._descr` parses, an order letter,
and the payload as bytes, an out-of-band buffer, or a list of objects) and
builds its result through numpy's public constructors only.  No numpy
private function and no object state is involved, so a file written under
numpy 2 loads under numpy 1.x and back, and a restricted load can admit
these constructors for any arguments:

``dtype(descr)``
    The dtype ``descr`` describes.
``array(shape, descr, order, data)``
    An ndarray.  ``order`` is ``"C"`` or ``"F"``.  For dtypes of plain
    values ``data`` is a bytes-like object of exactly the array's size, whose
    memory the array uses without copying (out-of-band buffers load
    zero-copy and memory-mapped).  For dtypes holding Python objects it is
    a list of the elements in ``order``, or None for an array of None that
    :func:`fill` completes (arrays that contain themselves are written so).
    For ``StringDType`` it is a list of str (and the missing-value object).
``fill(array, items)``
    Set the elements of an object-holding array made by ``array(..., None)``
    from a list, as ``array`` would; returns None.
``scalar(descr, data)``
    A numpy scalar: ``array((), descr, "C", data)[()]``.
``masked(data, mask, fill_value, hard_mask)``
    ``numpy.ma.MaskedArray`` of an ndarray and its full boolean mask.
``matrix(data)``
    ``numpy.matrix`` of a 2-d ndarray.

The pandas constructors live in :mod:`codecpickle._construct_pandas`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._descr import MAX_DIMS, DescrParser, plain_dtype, refuse

__all__ = ["array", "build_array", "dtype", "fill", "masked", "matrix", "scalar"]

_ORDERS = frozenset(("C", "F"))


def dtype(descr: Any) -> np.dtype:
    """The dtype ``descr`` describes (see :mod:`codecpickle._descr`)."""
    return DescrParser().dtype(descr)


def array(shape: Any, descr: Any, order: Any, data: Any) -> np.ndarray:
    """An ndarray of ``shape`` and the described dtype over ``data``."""
    return build_array(shape, _dtype(descr), order, data)


def _dtype(descr: Any) -> np.dtype:
    return plain_dtype(descr) if type(descr) is str else DescrParser().dtype(descr)


def scalar(descr: Any, data: Any) -> Any:
    """A numpy scalar: element ``()`` of a 0-d array of ``data``."""
    return build_array((), _dtype(descr), "C", data)[()]


def fill(target: Any, items: Any) -> None:
    """Set the elements of an object-holding array from ``items``."""
    if type(target) is not np.ndarray or not target.dtype.hasobject:
        raise refuse("fills something other than an array of Python objects")
    order = "F" if target.flags.f_contiguous and not target.flags.c_contiguous else "C"
    if not (target.flags.c_contiguous or target.flags.f_contiguous):
        raise refuse("fills an array that is not contiguous")
    _fill(target, items, order)


def masked(data: Any, mask: Any, fill_value: Any, hard_mask: Any) -> np.ma.MaskedArray:
    """A masked array of ``data`` and a boolean ``mask`` of the same shape."""
    if type(data) is not np.ndarray or type(mask) is not np.ndarray:
        raise refuse("builds a masked array from something other than arrays")
    if mask.shape != data.shape or mask.dtype != np.ma.make_mask_descr(data.dtype):
        raise refuse("gives a masked array a mask that does not match its data")
    if type(fill_value) is np.ndarray and fill_value.shape == ():
        fill_value = fill_value[()]  # how numpy's own pickles hold it
    if type(hard_mask) is not bool:
        raise refuse("gives a masked array a malformed hard_mask flag")
    if not (
        fill_value is None
        or type(fill_value) in (bool, int, float, complex, str, bytes)
        or (isinstance(fill_value, np.generic) and not fill_value.dtype.hasobject)
    ):
        raise refuse("gives a masked array a fill value that is not a plain value")
    return np.ma.MaskedArray(
        data, mask=mask, fill_value=fill_value, hard_mask=hard_mask, copy=False
    )


def matrix(data: Any) -> np.matrix:
    """``numpy.matrix`` over a 2-d array, without copying."""
    if type(data) is not np.ndarray or data.ndim != 2:
        raise refuse("builds a matrix from something other than a 2-d array")
    return data.view(np.matrix)


# -- the checked builder (shared with the translation of numpy's own pickles) ----------


def build_array(
    shape: Any,
    dtype: np.dtype,
    order: Any,
    data: Any,
    *,
    max_bytes: int | None = None,
    max_items: int | None = None,
) -> np.ndarray:
    """An ndarray from plain, checked parts; :class:`CorruptDataError` if
    they do not fit together.

    ``dtype`` must come from a :class:`DescrParser` (or be one numpy built
    from checked parts).  ``data`` is as for :func:`array`.  ``max_bytes``
    bounds the memory an array of None (``data=None``) may take, and
    ``max_items`` the elements of such an array or of an array of zero-size
    items: the input does not bound those by itself (using them, element
    by element, would take time in proportion).
    """
    count = element_count(shape)
    if max_items is not None and count > max_items and (data is None or dtype.itemsize == 0):
        raise refuse(
            f"builds an array of {count} elements that its data does not hold, over the "
            f"limit of {max_items} for this input"
        )
    if type(order) is not str or order not in _ORDERS:
        raise refuse(f"gives {order!r} where the memory order 'C' or 'F' belongs")
    if _is_strings(dtype):
        return _string_array(shape, dtype, order, data, count)
    if dtype.hasobject:
        if data is None:
            if max_bytes is not None and count * dtype.itemsize > max_bytes:
                raise refuse(
                    f"builds an array of {count * dtype.itemsize} bytes of Python objects, "
                    f"over the limit of {max_bytes} bytes"
                )
            return np.empty(shape, dtype, order=order)  # None-filled: numpy's rule
        if dtype.kind == "O" and type(data) is list and len(data) == count:
            # fromiter takes each element as it is (np.array would read
            # nested sequences as more dimensions), at np.array's speed.
            return np.fromiter(data, dtype, count).reshape(shape, order=order)
        result = np.empty(shape, dtype, order=order)
        _fill(result, data, order)
        return result
    return _plain_array(shape, dtype, order, data, count)


def element_count(shape: Any) -> int:
    """The element count of ``shape``, a tuple of non-negative ints."""
    if not (
        type(shape) is tuple
        and len(shape) <= MAX_DIMS
        and all(type(n) is int and n >= 0 for n in shape)
    ):
        raise refuse(f"gives {type(shape).__name__} where an array shape belongs")
    return math.prod(shape)


def _plain_array(
    shape: tuple[int, ...], dtype: np.dtype, order: str, data: Any, count: int
) -> np.ndarray:
    if type(data) not in (bytes, bytearray, memoryview):
        raise refuse(f"gives {type(data).__name__} where array data belongs")
    if type(data) is memoryview:
        owner = data.obj
        if isinstance(owner, np.ndarray | np.generic) and owner.dtype.hasobject:
            raise refuse("views the memory of Python objects as plain data")
        if not data.contiguous:
            raise refuse("gives array data that is not contiguous")
        nbytes = data.nbytes
    else:
        nbytes = len(data)
    if nbytes != count * dtype.itemsize:
        raise refuse(
            f"gives {nbytes} bytes of data for an array of {count} items of {dtype.itemsize} bytes"
        )
    if type(data) is memoryview and data.format != "B":
        data = data.cast("B")
    return np.ndarray(shape, dtype, buffer=data, order=order)


def _fill(target: np.ndarray, items: Any, order: str) -> None:
    count = target.size
    if type(items) is not list or len(items) != count:
        raise refuse(f"gives {_what(items)} where a list of {count} array elements belongs")
    flat = target.reshape(-1, order=order)  # a view: target is contiguous in `order`
    if target.dtype == np.dtype("O"):
        if count:
            flat[...] = np.fromiter(items, dtype=object, count=count)
        return
    # Structured elements holding objects: each item is a tuple, which numpy
    # converts field by field (and refuses if it does not fit).
    for index, item in enumerate(items):
        if type(item) is not tuple:
            raise refuse("gives a structured element that is not a tuple")
        flat[index] = item


def _is_strings(dtype: np.dtype) -> bool:
    return dtype.kind == "T"


def _string_array(
    shape: tuple[int, ...], dtype: np.dtype, order: str, data: Any, count: int
) -> np.ndarray:
    if type(data) is not list or len(data) != count:
        raise refuse(f"gives {_what(data)} where a list of {count} strings belongs")
    na = getattr(dtype, "na_object", _NO_NA)
    for item in data:
        if type(item) is not str and not (na is not _NO_NA and _same_na(item, na)):
            raise refuse("gives a StringDType array an element that is not a str")
    flat = np.array(data, dtype=dtype) if count else np.empty(0, dtype)
    return flat.reshape(shape, order=order)


_NO_NA = object()


def _same_na(item: Any, na: Any) -> bool:
    if item is na:
        return True
    return type(item) is float and type(na) is float and math.isnan(item) and math.isnan(na)


def _what(value: Any) -> str:
    if type(value) is list:
        return f"a list of {len(value)}"
    return type(value).__name__
