"""How the writer reduces pandas objects: to the constructors of
:mod:`codecpickle._construct_pandas`, so that restricted loads
(``allow=codecpickle.PANDAS_GLOBALS``) can rebuild them from checked parts.

Covered: ``DataFrame``, ``Series``, ``Index``, ``RangeIndex``,
``DatetimeIndex``, ``CategoricalIndex``, ``Categorical``, time-zone-aware
``DatetimeArray``, the nullable ``Int``/``Float``/``boolean`` arrays and
``StringDtype`` arrays with Python storage, with plain labels and names and
no ``attrs``.  Anything else (MultiIndex, periods, intervals, sparse and
Arrow arrays, objects with ``attrs`` ...) is left to pandas' own pickling:
it loads normally, but a restricted load refuses it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from . import _construct_pandas as cp
from ._construct_pandas import is_label

__all__ = ["reducers"]

Reducer = Callable[[Any], Any]


def reducers() -> dict[type, Reducer]:
    """Reducers by exact type, if pandas is imported (it is never imported
    here: a process without pandas objects has none to write)."""
    pd = sys.modules.get("pandas")
    if pd is None or not hasattr(pd, "DataFrame"):
        return {}
    arrays = pd.arrays
    return {
        pd.DataFrame: _frame,
        pd.Series: _series,
        pd.Index: _index,
        pd.CategoricalIndex: _index,
        pd.RangeIndex: _range_index,
        pd.DatetimeIndex: _datetime_index,
        pd.Categorical: _categorical,
        arrays.DatetimeArray: _datetime_array,
        arrays.IntegerArray: _nullable("Int"),
        arrays.FloatingArray: _nullable("Float"),
        arrays.BooleanArray: _nullable("boolean"),
        arrays.StringArray: _strings,
    }


def _values(holder: Any) -> Any:
    """The values of a Series or Index: an ndarray for numpy dtypes (a view
    where pandas allows), else the pandas array."""
    if isinstance(holder.dtype, np.dtype):
        return holder.to_numpy(copy=False)
    return holder.array


def _frame(frame: Any) -> Any:
    if frame.attrs or not frame.flags.allows_duplicate_labels:
        return NotImplemented
    columns = [_values(frame.iloc[:, position]) for position in range(frame.shape[1])]
    return cp.frame, (frame.columns, columns, frame.index)


def _series(series: Any) -> Any:
    if series.attrs or not series.flags.allows_duplicate_labels or not is_label(series.name):
        return NotImplemented
    return cp.series, (_values(series), series.index, series.name)


def _index(index: Any) -> Any:
    if not is_label(index.name):
        return NotImplemented
    return cp.index, (_values(index), index.name)


def _range_index(index: Any) -> Any:
    if not is_label(index.name):
        return NotImplemented
    return cp.range_index, (index.start, index.stop, index.step, index.name)


def _datetime_index(index: Any) -> Any:
    if index.freq is None:
        return _index(index)
    if not is_label(index.name):
        return NotImplemented
    return cp.datetime_index, (_values(index), index.freqstr, index.name)


def _categorical(values: Any) -> Any:
    return cp.categorical, (values.codes, values.categories, bool(values.ordered))


def _datetime_array(values: Any) -> Any:
    pd = sys.modules["pandas"]
    tz = values.tz
    if tz is None:
        return NotImplemented
    name = str(tz)
    if pd.DatetimeTZDtype(unit=values.unit, tz=name) != values.dtype:
        return NotImplemented  # a time zone its name does not bring back
    return cp.datetime_tz, (np.asarray(values.tz_convert(None)), name)


def _nullable(kind: str) -> Reducer:
    def reduce(values: Any) -> Any:
        return cp.nullable, (values._data, values._mask, kind)

    return reduce


def _strings(values: Any) -> Any:
    pd = sys.modules["pandas"]
    dtype = values.dtype
    if dtype.storage != "python":
        return NotImplemented
    if dtype.na_value is pd.NA:
        # pd.NA is not a plain value: missing elements are written as None.
        return cp.strings, (values.to_numpy(dtype=object, na_value=None), dtype.storage, "NA")
    # The elements are str and NaN floats already: the array itself, without
    # the missing-value scan and copy ``to_numpy`` would make.
    return cp.strings, (np.asarray(values), dtype.storage, "nan")
