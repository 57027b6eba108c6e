"""Restricted loads and numpy's unpickling code: genuine numpy pickles load,
hostile numpy state is refused before numpy acts on it.

numpy's ``__setstate__`` methods and constructors trust their input; each
hostile stream here names only admitted globals, and without the checks
most would read or write arbitrary memory (several crashed the process in
the long fuzz run).  The tests assert the refusal itself, since memory
corruption need not show."""

from __future__ import annotations

import collections
import pickle
import resource
import struct
from typing import Any

import numpy as np
import pytest

import codecpickle
from codecpickle._reconstruct import view_as
from tests.conftest import assert_same
from tests.test_safe import container

RECONSTRUCT = np.ndarray.__reduce__(np.empty(0))[0]  # numpy's multiarray._reconstruct
SCALAR = np.float64(0).__reduce__()[0]  # numpy's multiarray.scalar


class _Reduce:
    """Pickles as whatever ``__reduce__`` value it is given."""

    def __init__(self, *reduced: Any) -> None:
        self.reduced = reduced

    def __reduce__(self) -> Any:
        return self.reduced


class PlainSubclass(np.ndarray):
    """An ndarray subclass that keeps ``ndarray.__new__``."""


def safe_loads(obj: Any, protocol: int = 5, **options: Any) -> Any:
    return codecpickle.loads(container(pickle.dumps(obj, protocol=protocol)), safe=True, **options)


def refused(obj_or_opcodes: Any, match: str, error: type = codecpickle.CorruptDataError) -> None:
    if isinstance(obj_or_opcodes, bytes):
        stream = container(obj_or_opcodes)
    else:
        stream = container(pickle.dumps(obj_or_opcodes, protocol=5))
    with pytest.raises(error, match=match):
        codecpickle.loads(stream, safe=True)


# -- opcode assembly, for streams no pickler writes ------------------------------


def text(value: str) -> bytes:
    data = value.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def integer(value: int) -> bytes:
    return b"J" + struct.pack("<i", value)


def dtype_of(spec: str) -> bytes:
    return b"cnumpy\ndtype\n" + text(spec) + b"\x85R"  # numpy.dtype(spec)


# -- genuine numpy pickles ---------------------------------------------------------

DTYPES = [
    "f8",
    ">i4",
    "<u2",
    "?",
    "c16",
    "f2",
    "O",
    "U5",
    ">U3",
    "S3",
    "S0",
    "V0",
    "V7",
    "M8",
    "M8[D]",
    "m8[2s]",
    ">M8[ns]",
    np.dtype("f8", metadata={"unit": "m"}),
    np.dtype("M8[ns]", metadata={"tz": "UTC"}),
    np.dtype(("f4", (2, 3))),
    np.dtype([("a", "i1"), ("b", "f8")], align=True),
    np.dtype([("a", "i1"), ("b", ">f8")]),
    np.dtype({"names": ["a"], "formats": ["i4"], "titles": ["Title"]}),
    np.dtype([("a", "O"), ("b", [("c", "f4"), ("d", "U2")])]),
    np.dtype({"names": ["a", "b"], "formats": ["i4", "i4"], "offsets": [4, 0]}),
    np.dtype({"names": ["a"], "formats": ["i2"], "offsets": [2], "itemsize": 8}),
    np.dtype([("x", "f8", (2,))]),
]


@pytest.mark.parametrize("protocol", [3, 4, 5])
@pytest.mark.parametrize("spec", DTYPES, ids=str)
def test_numpy_pickles_of_dtypes_and_arrays_load(spec: Any, protocol: int) -> None:
    # numpy's own reductions (dtype + BUILD, _reconstruct + BUILD): the
    # restricted load reads the states instead of numpy, and must agree.
    dtype = np.dtype(spec)
    loaded = safe_loads(dtype, protocol)
    assert loaded == dtype
    assert (loaded.flags, loaded.itemsize, loaded.alignment, loaded.byteorder) == (
        dtype.flags,
        dtype.itemsize,
        dtype.alignment,
        dtype.byteorder,
    )
    assert loaded.metadata == dtype.metadata
    array = np.arange(3).astype(dtype) if dtype.kind in "biufcmM" else np.zeros(3, dtype)
    # numpy's own load (which turns non-native byte orders native) is the
    # reference.
    opcodes = pickle.dumps(array, protocol=protocol)
    loaded = codecpickle.loads(container(opcodes), safe=True)
    assert_same(loaded, pickle.loads(opcodes))
    if dtype.hasobject:
        assert loaded.tolist() == array.tolist()
    else:
        np.testing.assert_array_equal(loaded, array)


@pytest.mark.parametrize(
    "obj",
    [
        np.ma.masked_array([1.0, 2.0, 3.0], mask=[0, 1, 0], fill_value=-1.0),
        np.ma.masked_array(np.array([1, "x", None], dtype=object), mask=[0, 1, 0]),
        np.arange(4).reshape(2, 2).view(np.matrix),
        np.empty(0, dtype=object),
        np.array([[1, None], ["x", 2.5]], dtype=object, order="F"),
        np.zeros(2, dtype=[("a", "O"), ("b", "f8")])[0],
        np.datetime64("2020-01-01T10:00", "m"),
    ],
    ids=lambda o: f"{type(o).__name__}-{getattr(o, 'dtype', '')}",
)
def test_other_numpy_pickles_load(obj: Any) -> None:
    loaded = safe_loads(obj, protocol=4)
    if isinstance(obj, np.void):
        assert loaded.dtype == obj.dtype
        assert loaded.tolist() == obj.tolist()
    else:
        assert_same(loaded, obj)


def test_self_referencing_object_array_is_translated_then_refused() -> None:
    # numpy's pickle names the pending array among its own items: the
    # translation puts the array there (a normal load keeps the cycle) ...
    array = np.empty(2, dtype=object)
    array[0], array[1] = array, "x"
    loaded = codecpickle.loads(container(pickle.dumps(array, protocol=5)))
    assert loaded[0] is loaded
    assert loaded[1] == "x"
    # ... and a restricted load refuses the cycle (tests/test_safe_cycles.py).
    refused(array, "contains itself")


# -- array state -------------------------------------------------------------------


def test_object_list_shorter_than_the_shape_is_refused() -> None:
    # Found by the long fuzz run: numpy copies 71 "items" from a 3-item list.
    refused(
        _Reduce(RECONSTRUCT, (np.ndarray, (0,), b"b"), (1, (71,), np.dtype("O"), False, [1, 2, 3])),
        "where a list of 71 array elements belongs",
    )


def test_array_data_of_the_wrong_size_is_refused() -> None:
    refused(
        _Reduce(RECONSTRUCT, (np.ndarray, (0,), b"b"), (1, (4,), np.dtype("f8"), False, b"x" * 8)),
        "8 bytes of data for an array of 4 items",
    )


@pytest.mark.parametrize(
    "state",
    [
        (1, (2,), np.dtype("f8"), False),
        (1, (2,), "f8", False, b"x" * 16),
        (1, (-2,), np.dtype("f8"), False, b""),
        (1, (2,), np.dtype("f8"), "F", b"x" * 16),
        (1, (2,), np.dtype("O"), False, (1, 2)),
        [1, (2,), np.dtype("f8"), False, b"x" * 16],
    ],
    ids=["short", "dtype-str", "negative-shape", "order-str", "object-tuple", "list"],
)
def test_malformed_array_states_are_refused(state: Any) -> None:
    refused(_Reduce(RECONSTRUCT, (np.ndarray, (0,), b"b"), state), "array|dtype|shape")


def test_rebuild_from_a_non_empty_array_is_refused() -> None:
    # np.empty-like: the contents would be whatever memory held before.
    refused(_Reduce(RECONSTRUCT, (np.ndarray, (4,), b"b")), "starts an array rebuild")
    refused(
        _Reduce(np.ma.core._mareconstruct, (np.ma.MaskedArray, np.ndarray, (4,), "b")),
        "starts a masked array rebuild",
    )


def test_state_of_an_array_holding_data_is_not_reset() -> None:
    # numpy would free the data while views of it (here the view_as
    # argument's base) still point at it.
    refused(
        _Reduce(
            view_as,
            (np.arange(3).reshape(1, 3), np.matrix),
            (1, (1, 1), np.dtype("i8"), False, b"\0" * 8),
        ),
        "sets the state of",
    )


def test_masked_array_states_are_checked() -> None:
    start = (np.ma.MaskedArray, np.ndarray, (0,), "b")
    data = b"\0" * 24
    good = _Reduce(
        np.ma.core._mareconstruct, start, (1, (3,), np.dtype("i8"), False, data, b"\0\1\0", 7)
    )
    loaded = safe_loads(good)
    assert loaded.mask.tolist() == [False, True, False]
    assert loaded.fill_value == 7
    short_mask = (1, (3,), np.dtype("i8"), False, data, b"\0", None)
    refused(
        _Reduce(np.ma.core._mareconstruct, start, short_mask), "1 bytes of data for an array of 3"
    )
    refused(_Reduce(np.ma.core._mareconstruct, start, (1, (3,))), "malformed state")


def test_the_masked_constant_is_not_changed() -> None:
    # MaskedConstant() returns the process-wide np.ma.masked.
    state = (1, (3,), np.dtype("f8"), False, b"\0" * 24, b"\0" * 3, None)
    refused(_Reduce(np.ma.core.MaskedConstant, (), state), "sets the state of")
    assert np.ma.masked.shape == ()
    assert np.ma.masked.dtype == np.dtype("f8")


# -- dtype state -------------------------------------------------------------------


def test_state_numpy_itself_would_crash_on_is_refused() -> None:
    # Found by the long fuzz run: numpy's dtype.__setstate__ segfaults on a
    # timedelta given an object dtype's state.  It never runs on stream data.
    refused(
        _Reduce(np.dtype, ("m8", False, True), (3, "|", None, None, None, -1, -1, 63)), "refused"
    )


def test_dtype_used_before_its_state_arrives_is_refused() -> None:
    # The array would be built from the dtype while it is still plain V8;
    # numpy's BUILD would then turn that same dtype into one holding an
    # object pointer, under an array of file bytes.  A dtype is a dtype
    # only once its state has been read and checked.
    target = np.dtype([("a", "O")])
    dtype = _Reduce()
    array = _Reduce(np.ndarray, ((1,), dtype, b"A" * 8, 0, None, "C"))
    state = (*target.__reduce__()[2][:8], {"array": array})
    dtype.reduced = (np.dtype, ("V8", False, True), state)
    refused((dtype, array), "where a checked dtype belongs")


def test_field_table_changed_after_build_has_no_effect() -> None:
    # numpy's dtype.__setstate__ keeps the stream's own dict as its field
    # table; the stream then switches field "a" to an object field.
    _, _, _, _, _, itemsize, alignment, flags = np.dtype(
        {"names": ["a"], "formats": ["f8"], "offsets": [0], "itemsize": 16}
    ).__reduce__()[2]
    opcodes = b"".join(
        [
            b"\x80\x03",
            b"cnumpy\ndtype\n",
            text("V16"),
            b"\x89\x88\x87R",
            b"q\x00",
            b"(",
            integer(3),
            text("|"),
            b"N",
            text("a"),
            b"\x85",
            b"}q\x01",
            text("a"),
            dtype_of("f8"),
            integer(0),
            b"\x86s",
            integer(itemsize),
            integer(alignment),
            integer(flags),
            b"tb0",
            b"h\x01",
            text("a"),
            dtype_of("O"),
            integer(0),
            b"\x86s0",
            b"cnumpy\nndarray\n(",
            integer(1),
            b"\x85h\x00C\x10",
            b"A" * 16,
            integer(0),
            b"N",
            text("C"),
            b"tR.",
        ]
    )
    loaded = codecpickle.loads(container(opcodes), safe=True)
    assert loaded.dtype.fields["a"][0] == np.dtype("f8")
    assert not loaded.dtype.hasobject
    assert loaded["a"].tobytes() == b"A" * 8


@pytest.mark.parametrize(
    ("state", "match"),
    [
        ((3, "<", None, None, None, -1, -1), "malformed state"),
        ((2, "<", None, None, None, -1, -1, 0), "malformed state"),
        ((3, "x", None, None, None, -1, -1, 0), "byte order"),
        ((3, "<", None, ("a",), None, -1, -1, 0), "names without fields"),
        ((3, "<", None, ("a",), {"a": [np.dtype("f8"), 0]}, 8, 1, 0), "malformed field"),
        ((3, "<", None, ("a",), {"a": ("f8", 0)}, 8, 1, 0), "not void"),
        ((3, "<", None, ("a",), {"b": (np.dtype("f8"), 0)}, 8, 1, 0), "missing from"),
        ((3, "<", ("f8", (2,)), None, None, 16, 8, 0), "not void"),
        ((3, "<", None, None, None, 8, 8, 0), "contradict"),
        ((3, "<", None, None, None, -1, -1, 63), "contradict"),
        ((3, ">", None, None, None, -1, -1, 0, ["meta"]), "malformed metadata"),
    ],
)
def test_malformed_dtype_states_are_refused(state: tuple[Any, ...], match: str) -> None:
    refused(_Reduce(np.dtype, ("f8", False, True), state), match)


def nested_native_dtype(levels: int, shared: bool = False) -> Any:
    """numpy's own pickle of a dtype nested ``levels`` deep: each level a
    V dtype whose BUILD state holds the level below (twice, overlapping, if
    ``shared``, so that the tree doubles at every level)."""
    dtype: Any = np.dtype("f8")
    real = dtype
    size = 8
    for _ in range(levels - 1):
        names = ("a", "b") if shared else ("a",)
        offsets = [0] * len(names)
        fields = {name: (dtype, offset) for name, offset in zip(names, offsets, strict=True)}
        real = np.dtype({"names": names, "formats": [real] * len(names), "offsets": offsets})
        state = (3, "|", None, names, fields, *real.__reduce__()[2][5:8])
        dtype = _Reduce(np.dtype, (f"V{size}", False, True), state)
    return dtype


def test_deeply_nested_dtypes_are_refused() -> None:
    # numpy compares, fills and frees nested dtypes by unguarded C
    # recursion: tens of thousands of levels, built a level per call,
    # crash the process.
    assert safe_loads(nested_native_dtype(64)) == pickle.loads(
        pickle.dumps(nested_native_dtype(64))
    )
    refused(nested_native_dtype(65), "nested more than 64 levels")


def test_dtype_tree_size_is_bounded_when_fields_share_a_dtype() -> None:
    # 40 levels whose two fields share one dtype: a few hundred bytes, but
    # hashing the result walks 2**40 nodes.  Sizes are counted as a tree.
    loaded = safe_loads(nested_native_dtype(12, shared=True))  # 4095 nodes: fine
    assert loaded.itemsize == 8
    refused(nested_native_dtype(40, shared=True), "more than 10000 parts")


@pytest.mark.parametrize(
    "unit", [(b"parsec", 1, 1, 1), (b"s", 0, 1, 1), (b"s", 1, 2, 1), ("s", 1), b"s"]
)
def test_malformed_datetime_units_are_refused(unit: Any) -> None:
    state = (4, "<", None, None, None, -1, -1, 0, (None, unit))
    refused(_Reduce(np.dtype, ("M8", False, True), state), "malformed")


def test_fields_on_a_plain_dtype_are_refused() -> None:
    state = (3, "|", None, ("a",), {"a": (np.dtype("i1"), 0)}, 4, 4, 16)
    refused(_Reduce(np.dtype, ("i4", False, True), state), "not void")


# -- scalars, globals, object creation ----------------------------------------------------


@pytest.mark.parametrize(
    "dtype", [np.dtype([("a", "O")]), np.dtype(("O", (2,)))], ids=["structured", "subarray"]
)
def test_scalar_holding_objects_from_an_empty_array_is_refused(dtype: np.dtype) -> None:
    # Found by reading numpy's scalar(): it copies the element's object
    # pointers out of the array's data whatever the array's size.  (An
    # empty array of a subarray dtype needs numpy's own rebuild to make.)
    empty = _Reduce(RECONSTRUCT, (np.ndarray, (0,), b"b"), (1, (0,), dtype, False, []))
    refused(_Reduce(SCALAR, (dtype, empty)), "holding objects")


OBJECTS = np.array([1, "x", None], dtype=object)
STRINGS = np.array(["a", "bb"], dtype=np.dtypes.StringDType())
FROMBUFFER = np.arange(1).__reduce_ex__(5)[0]  # numpy's numeric._frombuffer


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (_Reduce(np.ndarray, ((3,), np.dtype("i8"), OBJECTS, 0, None, "C")), "where array data"),
        (_Reduce(np.ndarray, ((4,), np.dtype("i8"), STRINGS, 0, None, "C")), "where array data"),
        (_Reduce(FROMBUFFER, (OBJECTS, np.dtype("i8"), (3,), "C")), "memory of Python objects"),
        (_Reduce(bytes, (OBJECTS,)), "calls bytes on ndarray"),
        (_Reduce(bytearray, (OBJECTS,)), "calls bytearray on ndarray"),
        (_Reduce(np.bytes_, (OBJECTS,)), "does not call"),
        (_Reduce(bytes, (np.zeros(1, dtype=[("a", "O")])[0],)), "calls bytes on void"),
        (_Reduce(str, (OBJECTS, "latin-1")), "decodes something other than bytes"),
    ],
    ids=["ndarray", "ndarray-strings", "frombuffer", "bytes", "bytearray", "bytes_", "void", "str"],
)
def test_memory_of_objects_is_never_plain_data(call: _Reduce, match: str) -> None:
    # Read, those bytes are addresses; written through a writable int64
    # view, they become pointers the object array then dereferences.
    refused(call, match)


def test_readonly_buffer_of_an_object_array_is_refused() -> None:
    opcodes = pickle.dumps(OBJECTS, protocol=5)
    assert opcodes.endswith(b".")
    refused(opcodes[:-1] + pickle.READONLY_BUFFER + b".", "memory of Python objects")


def test_state_of_a_numpy_scalar_is_refused() -> None:
    refused(_Reduce(SCALAR, (np.dtype("f8"), b"\0" * 8), {"x": 1}), "sets the state of a float64")


@pytest.mark.parametrize(
    ("opcodes", "target"),
    [
        (
            b"\x80\x02ccollections\nCounter\nN}" + text("__doc__") + text("x") + b"s\x86b.",
            "Counter",
        ),
        (
            b"\x80\x02ccodecpickle._reconstruct\nview_as\nN}"
            + text("__defaults__")
            + b"N\x85s\x86b.",
            "view_as",
        ),
    ],
    ids=["class", "function"],
)
def test_state_of_globals_is_never_changed(opcodes: bytes, target: str) -> None:
    # BUILD with slot state calls setattr on its target: on a class or
    # function that would change it for the whole process.
    doc, defaults = collections.Counter.__doc__, view_as.__defaults__
    refused(opcodes, target, codecpickle.ForbiddenGlobalError)
    assert collections.Counter.__doc__ == doc
    assert view_as.__defaults__ == defaults


def test_newobj_needs_a_class() -> None:
    # numpy.ndarray is called only as format-1 files call it.
    refused(b"\x80\x02cnumpy\nndarray\n)\x81.", "calls numpy.ndarray with 0 arguments")


def test_allowed_subclass_cannot_build_arrays_over_raw_bytes() -> None:
    # PlainSubclass((1,), object, buffer) is ndarray.__new__ with a buffer.
    cls = f"c{PlainSubclass.__module__}\nPlainSubclass\n".encode()
    args = integer(1) + b"\x85" + dtype_of("O") + b"C\x08" + b"A" * 8 + b"\x87"
    for opcodes in (b"\x80\x03" + cls + args + b"\x81.", b"\x80\x03" + cls + args + b"R."):
        with pytest.raises(codecpickle.CorruptDataError, match=r"ndarray.__new__"):
            codecpickle.loads(container(opcodes), allow=[PlainSubclass])
    # Its instances still load the way codecpickle writes them.
    array = np.arange(4.0).view(PlainSubclass)
    loaded = codecpickle.loads(codecpickle.dumps(array), allow=[PlainSubclass])
    assert type(loaded) is PlainSubclass
    assert loaded.tolist() == array.tolist()


def test_huge_bytearray_is_not_allocated_up_front() -> None:
    # The stdlib's pure-Python unpickler allocates and zeroes the declared
    # size before reading a byte.
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    opcodes = b"\x80\x05\x96" + struct.pack("<Q", 3 * 2**30) + b"."
    with pytest.raises(codecpickle.CodecPickleError):
        codecpickle.loads(container(opcodes), safe=True)
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 256 * 1024


def test_numpy_objects_started_but_never_given_their_state_are_refused() -> None:
    # Without its BUILD, numpy's own reduction leaves a placeholder where the
    # array or dtype belongs.
    refused(_Reduce(RECONSTRUCT, (np.ndarray, (0,), b"b")), "never gives their state")
    refused(_Reduce(np.dtype, ("f8", False, True)), "never gives their state")
