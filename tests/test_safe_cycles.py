"""Restricted loads refuse reference cycles through object arrays (numpy
recurses through them in C without a bound: ``a + 1`` on an array that holds
itself kills the process), whatever path builds them and however late the
stream closes the cycle; cycles among plain containers still load.

Refusals are checked in the test process; the loads that would crash if
they got through also run in a subprocess, which then uses the result.
"""

from __future__ import annotations

import collections
import gzip
import pickle
from typing import Any

import joblib
import numpy as np
import pytest

import codecpickle
from codecpickle._cycles import MAX_OBJECT_ARRAY_NESTING
from codecpickle.errors import CorruptDataError
from tests.test_safe import container
from tests.test_safe_classes import run_isolated


def _self_direct() -> Any:
    array = np.empty(2, dtype=object)
    array[0] = array
    return array


def _via_list() -> Any:
    array = np.empty(2, dtype=object)
    array[1] = ["x", array]
    return array


def _via_dict() -> Any:
    array = np.empty(1, dtype=object)
    array[0] = {"key": array}
    return array


def _via_two_arrays() -> Any:
    first, second = np.empty(1, dtype=object), np.empty(1, dtype=object)
    first[0], second[0] = second, first
    return [first]


def _closed_late() -> Any:
    # The list is empty when the array is filled; APPENDS closes the cycle.
    outer: list[Any] = []
    array = np.empty(1, dtype=object)
    array[0] = outer
    outer.append(array)
    return outer


def _via_tuple_and_set() -> Any:
    holder = collections.deque()
    array = np.empty(1, dtype=object)
    array[0] = (1, holder)
    holder.append(array)
    return {"a": array}


def _structured_field() -> Any:
    array = np.zeros(2, dtype=[("n", "i4"), ("obj", "O")])
    array[0]["obj"] = [array]
    return array


def _masked() -> Any:
    data = np.empty(2, dtype=object)
    masked = np.ma.masked_array(data, mask=[False, True])
    data[0] = [masked]
    return masked


def _matrix_in_array() -> Any:
    holder: list[Any] = []
    array = np.empty((1, 1), dtype=object)
    array[0, 0] = holder
    matrix = array.view(np.matrix)
    holder.append(matrix)
    return matrix


CYCLES = {
    "direct": _self_direct,
    "via list": _via_list,
    "via dict value": _via_dict,
    "via two arrays": _via_two_arrays,
    "closed late by APPENDS": _closed_late,
    "via tuple and deque": _via_tuple_and_set,
    "structured object field": _structured_field,
    "masked object array": _masked,
    "matrix": _matrix_in_array,
}


def _refused(data: bytes, **options: Any) -> None:
    with pytest.raises(CorruptDataError, match="contains itself"):
        codecpickle.loads(data, safe=True, **options)


@pytest.mark.parametrize("make", CYCLES.values(), ids=CYCLES.keys())
def test_codecpickle_files_with_a_cycle_through_an_object_array_are_refused(make: Any) -> None:
    data = codecpickle.dumps(make(), compress="zstd")
    _refused(data)
    # What a normal load gives back stays as pickle makes it.
    codecpickle.loads(data)


def _late(holds: Any) -> Any:
    """A list, then an array that ``holds`` it, then the array appended to
    the list: numpy's own pickle of the list fills the array before the
    APPENDS that closes the cycle."""

    def make() -> Any:
        outer: list[Any] = []
        outer.append(holds(outer))
        return outer

    return make


def _object_2d(item: Any) -> Any:
    array = np.asfortranarray(np.empty((2, 2), dtype=object))
    array[1, 0] = item
    return array


def _record(item: Any) -> Any:
    array = np.zeros(2, dtype=[("n", "i4"), ("obj", "O", (2,))])
    array[1]["obj"][1] = item
    return array


def _masked_of(item: Any) -> Any:
    data = np.empty(2, dtype=object)
    data[0] = item
    return np.ma.masked_array(data, mask=[True, False])


def _nested_arrays(item: Any) -> Any:
    inner = np.array([None, item], dtype=object)
    outer = np.empty(1, dtype=object)
    outer[0] = inner
    return outer


LATE = {
    "object array": _late(lambda item: np.array([item, 1], dtype=object)),
    "2-d Fortran object array": _late(_object_2d),
    "structured object subarray field": _late(_record),
    "masked object array": _late(_masked_of),
    "matrix": _late(lambda item: _object_2d(item).view(np.matrix)),
    "array in an array": _late(_nested_arrays),
    "via a dict": _late(lambda item: np.array([{"k": item}], dtype=object)),
}


@pytest.mark.parametrize("make", LATE.values(), ids=LATE.keys())
@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_plain_pickles_closing_a_cycle_late_are_refused(make: Any, protocol: int) -> None:
    data = pickle.dumps(make(), protocol=protocol)
    assert pickle.loads(data)[0] is not None
    _refused(data)


@pytest.mark.parametrize("make", LATE.values(), ids=LATE.keys())
def test_codecpickle_files_closing_a_cycle_late_are_refused(make: Any) -> None:
    _refused(codecpickle.dumps(make()))


@pytest.mark.parametrize("make", CYCLES.values(), ids=CYCLES.keys())
@pytest.mark.parametrize("protocol", [2, 5])
def test_plain_pickles_with_a_cycle_through_an_object_array_are_refused(
    make: Any, protocol: int
) -> None:
    data = pickle.dumps(make(), protocol=protocol)
    # numpy's own pickles of most of these use an array before its state
    # is set (refused as such); the others hold the array itself.
    with pytest.raises(CorruptDataError, match=r"contains itself|before its state is set"):
        codecpickle.loads(data, safe=True)


def test_gzip_pickle_file_with_a_cycle_is_refused(tmp_path: Any) -> None:
    path = tmp_path / "cycle.pkl.gz"
    with gzip.open(path, "wb") as file:
        pickle.dump(_closed_late(), file, protocol=5)
    with pytest.raises(CorruptDataError, match="contains itself"):
        codecpickle.load(path, safe=True)


@pytest.mark.parametrize("compress", [0, 3])
def test_joblib_file_with_a_cycle_is_refused(tmp_path: Any, compress: int) -> None:
    path = tmp_path / "cycle.joblib"
    joblib.dump({"a": _self_direct()}, path, compress=compress)
    with pytest.raises(CorruptDataError, match="contains itself"):
        codecpickle.load(path, safe=True)


def test_pandas_object_column_holding_its_frame_is_refused() -> None:
    pd = pytest.importorskip("pandas")
    column = np.empty(2, dtype=object)
    frame = pd.DataFrame({"a": column}, copy=False)
    column[0] = [frame]
    data = codecpickle.dumps(frame)
    loaded = codecpickle.loads(data)
    assert loaded["a"][0][0] is loaded  # what a normal load gives back
    with pytest.raises(CorruptDataError, match="contains itself"):
        codecpickle.loads(data, allow=codecpickle.PANDAS_GLOBALS)


def test_cycles_among_plain_containers_still_load() -> None:
    outer: list[Any] = [1]
    outer.append(outer)
    mapping: dict[str, Any] = {}
    mapping["self"] = mapping
    array = np.array([1, "x", None, (2, 3)], dtype=object)
    obj = {"list": outer, "dict": mapping, "array": array, "same": [array, array]}
    for data in (codecpickle.dumps(obj), pickle.dumps(obj, protocol=5)):
        loaded = codecpickle.loads(data, safe=True)
        assert loaded["list"][1] is loaded["list"]
        assert loaded["dict"]["self"] is loaded["dict"]
        assert loaded["same"][0] is loaded["same"][1]
        assert loaded["array"].tolist() == [1, "x", None, (2, 3)]


def test_object_arrays_sharing_elements_without_a_cycle_load() -> None:
    shared = [1, 2]
    inner = np.array([shared, None], dtype=object)
    outer = np.empty(3, dtype=object)
    outer[:] = [inner, inner, shared]
    loaded = codecpickle.loads(codecpickle.dumps([outer, shared]), safe=True)
    assert loaded[0][0] is loaded[0][1]
    assert loaded[0][0][0] is loaded[1] is loaded[0][2]


def nested_stream(levels: int) -> bytes:
    """A codecpickle stream of ``levels`` object arrays of one element, each
    holding the next (built iteratively: the pickler would recurse)."""
    ops = [
        b"\x80\x04\x8c\x16codecpickle._construct\x8c\x05array\x93q\x00",
        b"\x8c\x16codecpickle._construct\x8c\x04fill\x93q\x010",
        # the innermost: array((1,), "|O", "C", [1])
        b"h\x00(K\x01\x85\x8c\x02|O\x8c\x01C]K\x01atRq\x020",
    ]
    for _ in range(levels - 1):
        ops.append(b"h\x00(K\x01\x85\x8c\x02|O\x8c\x01CNtRq\x030")  # array(..., None)
        ops.append(b"h\x01h\x03]h\x02a\x86R0")  # fill(outer, [inner])
        ops.append(b"h\x03q\x020")  # outer becomes inner
    ops.append(b"h\x02.")
    return container(b"".join(ops))


def test_object_arrays_nested_too_deeply_are_refused() -> None:
    loaded = codecpickle.loads(nested_stream(MAX_OBJECT_ARRAY_NESTING), safe=True)
    assert (
        codecpickle.loads(nested_stream(3)).tolist()
        == codecpickle.loads(nested_stream(3), safe=True).tolist()
    )
    innermost = loaded
    for _ in range(MAX_OBJECT_ARRAY_NESTING - 1):
        innermost = innermost[0]
    assert innermost.tolist() == [1]
    with pytest.raises(CorruptDataError, match="nests object arrays"):
        codecpickle.loads(nested_stream(MAX_OBJECT_ARRAY_NESTING + 1), safe=True)


def test_refused_arrays_are_emptied_so_nothing_leaks_or_recurses_when_freed() -> None:
    out = run_isolated(
        """
        import gc, pickle, numpy as np, codecpickle
        from tests.test_safe_cycles import CYCLES, nested_stream
        for name, make in CYCLES.items():
            for data in (codecpickle.dumps(make()), pickle.dumps(make(), protocol=5)):
                try:
                    value = codecpickle.loads(data, safe=True)
                except codecpickle.CodecPickleError:
                    continue
                print("loaded", name, value + 1, value == value)
        # 20,000 levels: freeing them recursed through the C stack.
        try:
            codecpickle.loads(nested_stream(20_000), safe=True)
        except codecpickle.CodecPickleError as exc:
            print("refused deep", type(exc).__name__)
        print("done")
        """,
        timeout=120,
    )
    assert "loaded" not in out
    assert out.splitlines()[-2:] == ["refused deep CorruptDataError", "done"]


def test_normal_loads_keep_cycles_through_object_arrays() -> None:
    loaded = codecpickle.loads(codecpickle.dumps(_closed_late()))
    assert loaded[0][0] is loaded
    loaded = codecpickle.loads(pickle.dumps(_self_direct(), protocol=5))
    assert loaded[0] is loaded
