"""The constructors codecpickle's files name to rebuild pandas objects.

PART OF THE FILE FORMAT, like :mod:`codecpickle._construct`: streams call
these by module and name; never rename, move or change them.  Each takes
plain values and arrays already built by codecpickle's constructors, checks
them, and builds through pandas' public constructors (no pandas pickle
state, no block placements):

``frame(columns, arrays, index)``
    ``DataFrame`` whose column ``i`` is ``arrays[i]``, labelled by the Index
    ``columns``, rows labelled by the Index ``index``.
``series(values, index, name)``
    ``Series``.
``index(values, name)``, ``range_index(start, stop, step, name)``,
``datetime_index(values, freq, name)``
    ``Index`` (of the dtype of ``values``), ``RangeIndex``, ``DatetimeIndex``
    with a frequency string.
``categorical(codes, categories, ordered)``
    ``Categorical.from_codes``, which checks the codes.
``datetime_tz(values, tz)``
    A time-zone-aware ``DatetimeArray`` from naive UTC ``datetime64`` values
    and a time zone name.
``nullable(values, mask, kind)``
    pandas' masked arrays: ``kind`` is ``"Int"``, ``"Float"`` or
    ``"boolean"``.
``strings(values, storage, na)``
    A ``StringDtype`` array from an object array of str and missing values;
    ``na`` is ``"NA"`` (``pd.NA``) or ``"nan"``.

Values, like ``name`` and labels, are plain: str, int, float, bool, None,
bytes, or tuples of them.
"""

from __future__ import annotations

import operator
import sys
from typing import Any

import numpy as np

from ._descr import refuse

__all__ = [
    "categorical",
    "datetime_index",
    "datetime_tz",
    "frame",
    "index",
    "nullable",
    "range_index",
    "series",
    "strings",
]

_LABEL_TYPES = (str, int, float, bool, type(None), bytes)
_STRING_ITEMS = frozenset({str, float, type(None)})
_NULLABLE = {"Int": "IntegerArray", "Float": "FloatingArray", "boolean": "BooleanArray"}


def _pd() -> Any:
    import pandas

    return pandas


def is_label(value: Any) -> bool:
    """Whether ``value`` is a plain label: a scalar of a builtin type, or a
    flat tuple of them."""
    if type(value) is tuple:
        return len(value) <= 64 and all(type(part) in _LABEL_TYPES for part in value)
    return type(value) in _LABEL_TYPES


def _label(value: Any) -> Any:
    if not is_label(value):
        raise refuse(f"gives {type(value).__name__} where a pandas label belongs")
    return value


def _values(values: Any, what: str) -> Any:
    """A 1-d ndarray or one of the pandas arrays these constructors build."""
    pd = _pd()
    allowed = (
        pd.Categorical,
        pd.arrays.DatetimeArray,
        pd.arrays.IntegerArray,
        pd.arrays.FloatingArray,
        pd.arrays.BooleanArray,
        pd.arrays.StringArray,
    )
    if type(values) is np.ndarray:
        if values.ndim != 1:
            raise refuse(f"gives {what} values of {values.ndim} dimensions")
        return values
    if type(values) not in allowed:
        raise refuse(f"gives {type(values).__name__} where {what} values belong")
    return values


def _index(value: Any, what: str) -> Any:
    if not isinstance(value, _pd().Index):
        raise refuse(f"gives {type(value).__name__} where the {what} index belongs")
    return value


def _dtype(values: Any) -> Any:
    # pandas infers a dtype from object arrays (datetimes, strings): the
    # values' own dtype keeps them as they were.
    return values.dtype


def index(values: Any, name: Any) -> Any:
    """``pandas.Index`` of ``values`` (its dtype follows theirs)."""
    values = _values(values, "index")
    return _pd().Index(values, dtype=_dtype(values), name=_label(name), copy=False)


def range_index(start: Any, stop: Any, step: Any, name: Any) -> Any:
    """``pandas.RangeIndex``."""
    if not all(type(n) is int for n in (start, stop, step)) or step == 0:
        raise refuse("gives a RangeIndex malformed bounds")
    return _pd().RangeIndex(start, stop, step, name=_label(name))


def datetime_index(values: Any, freq: Any, name: Any) -> Any:
    """``pandas.DatetimeIndex`` with a frequency, which pandas checks
    against the values."""
    if type(freq) is not str or len(freq) > 64:
        raise refuse("gives a DatetimeIndex a malformed frequency")
    values = _values(values, "DatetimeIndex")
    if type(values) is np.ndarray and values.dtype.kind != "M":
        raise refuse("gives a DatetimeIndex values that are not datetimes")
    return _pd().DatetimeIndex(values, freq=freq, name=_label(name))


def series(values: Any, index: Any, name: Any) -> Any:
    """``pandas.Series``."""
    values = _values(values, "Series")
    index = _index(index, "Series")
    if len(index) != len(values):
        raise refuse("gives a Series an index of another length than its values")
    return _pd().Series(values, index=index, dtype=_dtype(values), name=_label(name), copy=False)


def frame(columns: Any, arrays: Any, index: Any) -> Any:
    """``pandas.DataFrame`` of column arrays."""
    columns = _index(columns, "column")
    index = _index(index, "row")
    if type(arrays) is not list or len(arrays) != len(columns):
        raise refuse("gives a DataFrame a column list that does not match its labels")
    arrays = [_values(values, "DataFrame column") for values in arrays]
    if any(len(values) != len(index) for values in arrays):
        raise refuse("gives a DataFrame a column of another length than its index")
    pd = _pd()
    series = {
        position: pd.Series(values, index=index, dtype=_dtype(values), copy=False)
        for position, values in enumerate(arrays)
    }
    result = pd.DataFrame(series, index=index, copy=False)
    result.columns = columns
    return result


def categorical(codes: Any, categories: Any, ordered: Any) -> Any:
    """``pandas.Categorical.from_codes``."""
    if type(codes) is not np.ndarray or codes.ndim != 1 or codes.dtype.kind != "i":
        raise refuse("gives a Categorical codes that are not a 1-d integer array")
    if type(ordered) is not bool:
        raise refuse("gives a Categorical a malformed ordered flag")
    categories = _index(categories, "category")
    return _pd().Categorical.from_codes(codes, categories=categories, ordered=ordered)


def datetime_tz(values: Any, tz: Any) -> Any:
    """A time-zone-aware ``DatetimeArray`` from naive UTC values."""
    if type(values) is not np.ndarray or values.ndim != 1 or values.dtype.kind != "M":
        raise refuse("gives a DatetimeArray values that are not 1-d datetimes")
    if type(tz) is not str or not 0 < len(tz) <= 255:
        raise refuse("gives a DatetimeArray a malformed time zone")
    return _pd().array(values).tz_localize("UTC").tz_convert(tz)


def nullable(values: Any, mask: Any, kind: Any) -> Any:
    """pandas' ``IntegerArray``, ``FloatingArray`` or ``BooleanArray``."""
    if kind not in _NULLABLE:
        raise refuse("names a pandas masked array kind that does not exist")
    if not (type(values) is np.ndarray and type(mask) is np.ndarray and values.ndim == 1):
        raise refuse("gives a pandas masked array something other than arrays")
    if mask.dtype != np.bool_ or mask.shape != values.shape:
        raise refuse("gives a pandas masked array a mask that does not match its values")
    return getattr(_pd().arrays, _NULLABLE[kind])(values, mask, copy=False)


def strings(values: Any, storage: Any, na: Any) -> Any:
    """A ``StringDtype`` array from str and missing values."""
    pd = _pd()
    if storage not in ("python", "pyarrow") or na not in ("NA", "nan"):
        raise refuse("gives a string array malformed options")
    if type(values) is not np.ndarray or values.ndim != 1 or values.dtype != object:
        raise refuse("gives a string array something other than a 1-d object array")
    if not _all_str(values):
        _check_str_or_missing(values)
    dtype = pd.StringDtype(storage, na_value=pd.NA if na == "NA" else np.nan)
    return pd.array(values, dtype=dtype)


def _all_str(values: np.ndarray) -> bool:
    """Whether every element is a str, by pandas' own C check when this
    pandas has it (a fast path for columns without missing values)."""
    lib = sys.modules.get("pandas._libs.lib")
    check = getattr(lib, "is_string_array", None)
    try:
        return bool(check(values, skipna=False)) if check is not None else False
    except (TypeError, ValueError):  # another signature: take the exact check
        return False


def _check_str_or_missing(values: np.ndarray) -> None:
    """Refuse elements other than str, None and NaN floats, in C-level
    passes (a Python loop per element was most of a large frame's load)."""
    items = values.tolist()
    kinds = set(map(type, items))
    if not kinds <= _STRING_ITEMS or (
        # Among str, None and floats, only NaN differs from itself.
        float in kinds
        and operator.countOf(map(type, items), float) != np.count_nonzero(values != values)
    ):
        raise refuse("gives a string array an element that is not a str or missing value")
