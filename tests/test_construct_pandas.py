"""pandas objects under ``allow=PANDAS_GLOBALS``: codecpickle writes them
through its pandas constructors, and restricted loads rebuild them from
checked arrays and labels; pandas' own pickles are not admitted."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest

import codecpickle
from codecpickle import _construct, _construct_pandas
from tests.test_safe import container

pd = pytest.importorskip("pandas")


def objects() -> list[Any]:
    frame = pd.DataFrame(
        {
            "x": np.arange(4),
            "f": np.linspace(0, 1, 4),
            "s": ["a", None, "c", "d"],
            "o": np.array([1, "x", None, 2.5], dtype=object),
            "c": pd.Categorical(list("xyxz"), categories=list("zyx"), ordered=True),
            "t": pd.date_range("2020", periods=4, tz="Europe/Paris"),
            "naive": pd.date_range("2021", periods=4, freq="h"),
            "i": pd.array([1, None, 3, 4], dtype="Int64"),
            "g": pd.array([1.5, None, 3.0, 4.0], dtype="Float64"),
            "b": pd.array([True, None, False, True], dtype="boolean"),
        },
        index=pd.Index([10, 20, 30, 40], name="key"),
    )
    return [
        frame,
        frame.set_axis(["a", "a", "b", "c", "d", "e", "f", "g", "h", "i"], axis=1),  # duplicates
        frame["x"],
        frame["c"],
        pd.Series([1.0, 2.0], index=pd.RangeIndex(5, 9, 2), name=("a", 1)),
        pd.Index(["p", "q"], name="letters"),
        pd.RangeIndex(0, 10, 3, name="r"),
        pd.date_range("2020", periods=3, freq="D", name="d"),
        pd.CategoricalIndex(list("aab")),
        pd.DataFrame(index=pd.RangeIndex(3)),
        {"nested": [frame.iloc[:2], pd.Index([1.5, 2.5])]},
    ]


def same(loaded: Any, original: Any) -> None:
    if isinstance(original, pd.DataFrame):
        pd.testing.assert_frame_equal(loaded, original)
    elif isinstance(original, pd.Series):
        pd.testing.assert_series_equal(loaded, original)
    elif isinstance(original, pd.Index):
        pd.testing.assert_index_equal(loaded, original, exact=True)
        assert getattr(loaded, "freq", None) == getattr(original, "freq", None)
    else:
        assert type(loaded) is type(original)
        for key in original:
            for a, b in zip(loaded[key], original[key], strict=True):
                same(a, b)


@pytest.mark.parametrize("index", range(len(objects())))
def test_pandas_objects_round_trip_restricted(index: int) -> None:
    original = objects()[index]
    data = codecpickle.dumps(original, compress="zstd")
    same(codecpickle.loads(data, allow=codecpickle.PANDAS_GLOBALS), original)
    same(codecpickle.loads(data), original)
    with pytest.raises(codecpickle.ForbiddenGlobalError, match="_construct_pandas"):
        codecpickle.loads(data, safe=True)


@pytest.mark.parametrize(
    "obj",
    [
        pd.MultiIndex.from_product([[1, 2], ["a", "b"]]),
        pd.period_range("2020", periods=3, freq="M"),
        pd.Series([pd.Timestamp("2020-01-01")], dtype=object),
        pd.DataFrame({"a": [1]}).pipe(lambda f: f.set_axis(pd.MultiIndex.from_tuples([(1, 2)]))),
    ],
    ids=["MultiIndex", "PeriodIndex", "Timestamp-objects", "frame-MultiIndex"],
)
def test_pandas_objects_outside_the_set_load_only_unrestricted(obj: Any) -> None:
    data = codecpickle.dumps(obj)
    with pytest.raises(codecpickle.ForbiddenGlobalError):
        codecpickle.loads(data, allow=codecpickle.PANDAS_GLOBALS)
    assert codecpickle.loads(data).equals(obj)


def test_pandas_own_pickles_are_not_admitted() -> None:
    frame = pd.DataFrame({"a": np.arange(3)})
    with pytest.raises(codecpickle.ForbiddenGlobalError):
        codecpickle.loads(
            container(pickle.dumps(frame, protocol=5)), allow=codecpickle.PANDAS_GLOBALS
        )


class _Call:
    def __init__(self, func: Any, args: tuple[Any, ...]) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> Any:
        return self.func, self.args


def _array(values: list[Any], descr: str) -> _Call:
    data = np.array(values, dtype=np.dtype(descr))
    return _Call(
        _construct.array, ((len(values),), descr, "C", data.tobytes() if descr != "|O" else values)
    )


RANGE = _Call(_construct_pandas.range_index, (0, 2, 1, None))
LABELS = _Call(_construct_pandas.index, (_array(["a"], "|O"), None))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            _Call(_construct_pandas.frame, (LABELS, [_array([1, 2, 3], "<i8")], RANGE)),
            "another length",
        ),
        (_Call(_construct_pandas.frame, (LABELS, [], RANGE)), "does not match its labels"),
        (_Call(_construct_pandas.frame, (LABELS, ["ab"], RANGE)), "str where DataFrame column"),
        (_Call(_construct_pandas.frame, ([1], [_array([1, 2], "<i8")], RANGE)), "column index"),
        (_Call(_construct_pandas.series, (_array([1, 2], "<i8"), LABELS, None)), "another length"),
        (_Call(_construct_pandas.series, (_array([1, 2], "<i8"), RANGE, [1])), "label"),
        (_Call(_construct_pandas.categorical, (_array([5], "|i1"), LABELS, False)), "codes"),
        (
            _Call(_construct_pandas.categorical, (_array([0], "<f8"), LABELS, False)),
            "integer array",
        ),
        (
            _Call(_construct_pandas.nullable, (_array([1, 2], "<i8"), _array([1], "|b1"), "Int")),
            "mask",
        ),
        (
            _Call(_construct_pandas.nullable, (_array([1], "<i8"), _array([1], "|b1"), "Complex")),
            "kind",
        ),
        (_Call(_construct_pandas.strings, (_array([1], "|O"), "python", "NA")), "not a str"),
        (_Call(_construct_pandas.datetime_tz, (_array([1], "<i8"), "UTC")), "datetimes"),
        (_Call(_construct_pandas.range_index, (0, 10, 0, None)), "bounds"),
        (
            _Call(_construct_pandas.datetime_index, (_array([0, 1], "<M8[D]"), "h", None)),
            "frequency|conform",
        ),
    ],
)
def test_pandas_constructors_refuse_parts_that_do_not_fit(call: _Call, match: str) -> None:
    with pytest.raises(codecpickle.CorruptDataError, match=match):
        codecpickle.loads(
            container(pickle.dumps(call, protocol=5)), allow=codecpickle.PANDAS_GLOBALS
        )


@pytest.mark.parametrize(
    "items",
    [["a", 1.5], ["a", 1.5, float("nan")], ["a", np.float64("nan")], ["a", b"b"], [1]],
)
def test_string_arrays_refuse_elements_other_than_str_and_missing(items: list) -> None:
    values = np.empty(len(items), dtype=object)
    values[:] = items
    with pytest.raises(codecpickle.CorruptDataError, match="not a str or missing value"):
        _construct_pandas.strings(values, "python", "nan")


def test_string_arrays_take_str_none_and_nan() -> None:
    values = np.empty(4, dtype=object)
    values[:] = ["a", None, float("nan"), "b"]
    result = _construct_pandas.strings(values, "python", "nan")
    assert list(result[[0, 3]]) == ["a", "b"]
    assert result.isna().tolist() == [False, True, True, False]


@pytest.mark.parametrize("fast_path", [True, False])
def test_string_arrays_check_the_same_with_and_without_pandas_fast_check(
    fast_path: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    if not fast_path:  # a pandas without the C check: the exact check alone
        monkeypatch.delattr(sys.modules["pandas._libs.lib"], "is_string_array")
    good = np.empty(3, dtype=object)
    good[:] = ["a", "b", "c"]
    assert list(_construct_pandas.strings(good, "python", "nan")) == ["a", "b", "c"]
    bad = np.empty(2, dtype=object)
    bad[:] = ["a", 1]
    with pytest.raises(codecpickle.CorruptDataError, match="not a str or missing value"):
        _construct_pandas.strings(bad, "python", "nan")
