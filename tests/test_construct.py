"""codecpickle's own constructors (``codecpickle._construct``): what the writer
names for numpy data, and what restricted loads rebuild by construction.

Every dtype family and layout, scalars, masked arrays and matrices written
by codecpickle load unchanged with ``safe=True``; the dtype description
grammar refuses what it does not describe; plain pickles of numpy data load
restricted through the translation of numpy's own reductions."""

from __future__ import annotations

import io
import pickle
from typing import Any

import numpy as np
import pytest

import codecpickle
from codecpickle import _construct
from codecpickle._descr import DescrParser, describe
from codecpickle._pickling import Pickler
from codecpickle._writer import ContainerWriter
from codecpickle.errors import CorruptDataError
from tests.conftest import assert_same
from tests.test_safe import container

pytestmark = pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")

STRINGS = np.dtypes.StringDType

DTYPES = [
    "?",
    "i1",
    "u1",
    ">i2",
    "<u2",
    "i4",
    ">u4",
    "i8",
    ">u8",
    "f2",
    ">f4",
    "f8",
    "g",
    "c8",
    ">c16",
    "G",
    "S0",
    "S5",
    "U1",
    ">U7",
    "V0",
    "V7",
    "O",
    "M8",
    "M8[Y]",
    "M8[D]",
    ">M8[ns]",
    "M8[25us]",
    "m8[h]",
    ">m8[ps]",
    np.dtype("f8", metadata={"unit": "m", "scale": 2, "ok": True, "none": None}),
    np.dtype([("a", "i1"), ("b", "f8")], align=True),
    np.dtype([("a", "i1"), ("b", ">f8"), ("c", "S3"), ("d", "M8[s]")]),
    np.dtype({"names": ["a", "b"], "formats": ["i4", "u2"], "titles": ["Ay", None]}),
    np.dtype({"names": ["a", "b"], "formats": ["i4", "i4"], "offsets": [4, 0]}),
    np.dtype({"names": ["a"], "formats": ["i2"], "offsets": [2], "itemsize": 8}),
    np.dtype([("x", "f8", (2, 3)), ("y", [("z", "u1"), ("w", ">i4", (2,))])]),
    np.dtype([("a", "O"), ("b", [("c", "f4"), ("d", "U2")]), ("e", "O", (2,))]),
    STRINGS(),
    STRINGS(na_object=None),
    STRINGS(na_object=float("nan"), coerce=False),
    STRINGS(na_object="<missing>"),
]


def sample(dtype: np.dtype, shape: tuple[int, ...] = (4, 3)) -> np.ndarray:
    """An array of ``dtype`` whose bytes are not all zero."""
    count = int(np.prod(shape))
    if dtype.kind == "T":
        values = ["", "a", "ümlaut", "x" * 40] * count
        return np.array(values[:count], dtype=dtype).reshape(shape)
    if dtype.hasobject:
        array = np.empty(shape, dtype)
        for index, position in enumerate(np.ndindex(shape)):
            if dtype.kind == "O":
                array[position] = [index, "x", None, (index,)][index % 4]
            else:
                array[position] = np.zeros((), dtype)[()]
        return array
    raw = (np.arange(count * dtype.itemsize) * 37 % 251).astype(np.uint8)
    if dtype.kind == "b":
        raw %= 2
    if dtype.kind in "U":
        raw = np.frombuffer(np.full(count * dtype.itemsize // 4, 65 + 3, "<u4").tobytes(), "u1")
    return raw.view(dtype).reshape(shape) if dtype.itemsize else np.zeros(shape, dtype)


def same_dtype(a: np.dtype, b: np.dtype) -> bool:
    return a == b and a.metadata == b.metadata and a.isalignedstruct == b.isalignedstruct


def safe_round_trip(obj: Any, compress: str | None = None) -> Any:
    return codecpickle.loads(codecpickle.dumps(obj, compress=compress), safe=True)


@pytest.mark.parametrize("spec", DTYPES, ids=str)
def test_dtypes_round_trip_restricted(spec: Any) -> None:
    dtype = np.dtype(spec)
    loaded = safe_round_trip(dtype)
    assert same_dtype(loaded, dtype)
    if dtype.kind == "T":
        assert repr(loaded) == repr(dtype)


LAYOUTS = {
    "C": lambda a: a,
    "F": np.asfortranarray,
    "strided": lambda a: a[::2, ::-1],
    "transposed": lambda a: a.T,
    "0-d": lambda a: a[0, 0, ...] if a.dtype.kind != "T" else a[0:1, 0:1].reshape(()),
    "empty": lambda a: a[:0],
    "readonly": lambda a: _readonly(a),
}


def _readonly(array: np.ndarray) -> np.ndarray:
    array = array.copy()
    array.flags.writeable = False
    return array


@pytest.mark.parametrize("compress", [None, "zstd"])
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("spec", DTYPES, ids=str)
def test_arrays_round_trip_restricted(spec: Any, layout: str, compress: str | None) -> None:
    dtype = np.dtype(spec)
    array = LAYOUTS[layout](sample(dtype))
    if array.ndim == 0 and not isinstance(array, np.ndarray):
        array = np.asarray(array)
    loaded = safe_round_trip(array, compress)
    assert type(loaded) is np.ndarray
    assert same_dtype(loaded.dtype, array.dtype)
    assert loaded.shape == array.shape
    if dtype.kind in "fc":
        assert loaded.tobytes() == np.ascontiguousarray(array).tobytes()
    else:
        # repr: elements may be arrays (object subarrays) or NaN.
        assert repr(loaded.tolist()) == repr(array.tolist())


# Object arrays hold Python objects, not numpy scalars; StringDType elements
# are str: neither has a numpy scalar to round-trip.
@pytest.mark.parametrize("spec", [d for d in DTYPES if np.dtype(d).kind not in "TO"], ids=str)
def test_scalars_round_trip_restricted(spec: Any) -> None:
    dtype = np.dtype(spec)
    value = sample(dtype, (1,))[0]
    loaded = safe_round_trip(value)
    assert type(loaded) is type(value)
    assert same_dtype(loaded.dtype, value.dtype)
    if dtype.hasobject:
        assert repr(loaded.tolist()) == repr(value.tolist())
    else:
        assert loaded.tobytes() == value.tobytes()


@pytest.mark.parametrize(
    "obj",
    [
        np.ma.masked_array([1.0, 2.0, 3.0], mask=[0, 1, 0], fill_value=-1.5),
        np.ma.masked_array(np.arange(6).reshape(2, 3), mask=np.eye(2, 3), hard_mask=True),
        np.ma.masked_array(np.array([1, "x", None], dtype=object), mask=[0, 1, 0]),
        np.ma.masked_array(np.zeros(2, [("a", "i4"), ("b", "f8")]), mask=[(0, 1), (1, 0)]),
        np.ma.masked_array(
            np.arange(4).astype("M8[D]"), mask=[1, 0, 0, 1], fill_value=np.datetime64("2000-01-01")
        ),
        np.array([[1, 2], [3, 4]]).view(np.matrix),
        np.asfortranarray(np.arange(6.0).reshape(2, 3)).view(np.matrix),
        {"a": [np.arange(3), (np.float32(1.5), np.dtype("u2"))], "b": {1: np.bool_(True)}},
    ],
    ids=lambda o: type(o).__name__,
)
def test_other_numpy_objects_round_trip_restricted(obj: Any) -> None:
    loaded = safe_round_trip(obj, "zstd")
    assert_same(loaded, obj)
    if isinstance(obj, np.ma.MaskedArray):
        assert loaded.hardmask == obj.hardmask
        assert repr(loaded.fill_value) == repr(obj.fill_value)


def test_object_array_containing_itself_round_trips_and_is_refused_restricted() -> None:
    array = np.empty(3, dtype=object)
    array[:] = [None, "x", None]
    array[0] = array
    array[2] = [array]
    loaded = codecpickle.loads(codecpickle.dumps(array))
    assert loaded[0] is loaded
    assert loaded[2][0] is loaded
    assert loaded[1] == "x"
    # numpy recurses through such arrays without a bound (tests/test_safe_cycles.py).
    with pytest.raises(CorruptDataError, match="contains itself"):
        safe_round_trip(array)


def test_memmap_and_out_of_band_buffers_stay_zero_copy(tmp_path: Any) -> None:
    array = np.arange(1 << 16, dtype=">i4").reshape(256, 256)
    path = tmp_path / "a.cpkl"
    codecpickle.dump({"a": array, "t": np.arange(10).astype("M8[s]")}, path)
    loaded = codecpickle.load(path, mmap_mode="r", safe=True)
    assert isinstance(loaded["a"].base, np.memmap | memoryview) or not loaded["a"].flags.owndata
    np.testing.assert_array_equal(loaded["a"], array)
    np.testing.assert_array_equal(loaded["t"], np.arange(10).astype("M8[s]"))


# -- what the stream names ------------------------------------------------------------


def opcode_globals(obj: Any) -> set[str]:
    """The globals the opcode stream codecpickle writes for ``obj`` names."""
    writer = ContainerWriter(io.BytesIO(), None, chunk_size=1 << 20)
    opcodes = io.BytesIO()
    buffers: list[bytes] = []
    writer.write = opcodes.write  # type: ignore[method-assign]
    writer.write_payload = lambda raw, itemsize: buffers.append(bytes(raw))  # type: ignore[method-assign]
    writer.write_payload_pieces = lambda nbytes, pieces, itemsize: buffers.append(  # type: ignore[method-assign]
        b"".join(bytes(piece) for piece in pieces)
    )
    Pickler(writer).dump(obj)
    names: set[str] = set()

    class Recording(pickle._Unpickler):  # type: ignore[name-defined,misc]
        def find_class(self, module: str, name: str) -> Any:
            names.add(f"{module}.{name}")
            return super().find_class(module, name)

    Recording(io.BytesIO(opcodes.getvalue()), buffers=iter(buffers)).load()
    return names


def test_numpy_data_is_written_through_codecpickle_constructors_only() -> None:
    objects = [sample(np.dtype(spec)) for spec in DTYPES] + [
        np.float64(1.5),
        np.datetime64("2020-01-01"),
        np.dtype("c8"),
        np.zeros(2, [("a", "O"), ("b", "f8")])[0],
        np.ma.masked_array([1, 2], mask=[0, 1]),
        np.matrix([[1]]),
        np.arange(10)[::2],
    ]
    names = opcode_globals(objects)
    assert names <= {f"codecpickle._construct.{name}" for name in _construct.__all__}, names
    assert not any(name.startswith("numpy") for name in names)


# -- the description grammar ----------------------------------------------------------


@pytest.mark.parametrize("spec", DTYPES, ids=str)
def test_descriptions_parse_back_to_the_dtype(spec: Any) -> None:
    dtype = np.dtype(spec)
    descr = describe(dtype)
    assert same_dtype(DescrParser().dtype(descr), dtype)
    assert same_dtype(_construct.dtype(descr), dtype)


@pytest.mark.parametrize(
    ("descr", "match"),
    [
        ("f8", "builtin dtype|belongs"),
        ("<l", "belongs|builtin"),
        ("=f8", "belongs"),
        ("<f3", "does not know|builtin"),
        ("|b2", "does not know|builtin"),
        ("<M8[parsec]", "belongs"),
        ("<M8[xs]", "unit"),
        ("<M8[0s]", "unit count"),
        ("<i8[s]", "unit"),
        ("|S99999999999", "belongs|impossible"),
        ("|V" + "9" * 40, "belongs"),
        (b"<f8", "where a dtype description"),
        (("struct",), "unknown"),
        (("nope", 1, 2), "unknown"),
        (("struct", (("a", None, "<f8", 4),), 8, False), "outside"),
        (("struct", (("a", None, "<f8", -1),), 8, False), "outside"),
        (("struct", (("a", None, "<f8", 0), ("a", None, "<f8", 0)), 8, False), "twice"),
        (("struct", (("a", "a", "<f8", 0),), 8, False), "twice"),
        (("struct", ((1, None, "<f8", 0),), 8, False), "not a str"),
        (("struct", (("a", None, "|O", 0), ("b", None, "|O", 4)), 16, False), "refuses"),
        (("struct", (("a", None, "<i4", 0),), 6, True), "layout|refuses"),
        (("struct", [("a", None, "<f8", 0)], 8, False), "field list"),
        (("subarray", "<f8", ()), "subarray shape"),
        (("subarray", "<f8", (-1,)), "subarray shape"),
        (("subarray", "<f8", (1 << 30, 1 << 30)), "subarray shape"),
        (("subarray", "<f8", (1,) * 33), "subarray shape"),
        (("string", 1, ()), "options"),
        (("string", True, ([],)), "options"),
        (("meta", "<f8", (("k", []),)), "metadata"),
        (("meta", "<f8", {"k": 1}), "metadata"),
    ],
)
def test_malformed_descriptions_are_refused(descr: Any, match: str) -> None:
    with pytest.raises(codecpickle.CorruptDataError, match=match):
        DescrParser().dtype(descr)
    opcodes = pickle.dumps(_Call(_construct.dtype, (descr,)), protocol=5)
    with pytest.raises(codecpickle.CorruptDataError):
        codecpickle.loads(container(opcodes), safe=True)


def test_description_depth_and_size_are_bounded() -> None:
    descr: Any = "<f8"
    for _ in range(63):
        descr = ("struct", (("a", None, descr, 0),), 8, False)
    assert DescrParser().dtype(descr).itemsize == 8
    with pytest.raises(codecpickle.CorruptDataError, match="nested more than 64"):
        DescrParser().dtype(("struct", (("a", None, descr, 0),), 8, False))
    wide = ("struct", tuple((f"f{i}", None, "<f8", 0) for i in range(10_000)), 8, False)
    with pytest.raises(codecpickle.CorruptDataError, match="more than 10000 parts"):
        DescrParser().dtype(wide)


class _Call:
    def __init__(self, func: Any, args: tuple[Any, ...]) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> Any:
        return self.func, self.args


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (((2,), "<f8", "C", b"x" * 15), "15 bytes of data"),
        (((2,), "<f8", "K", b"x" * 16), "memory order"),
        (((-2,), "<f8", "C", b""), "array shape"),
        (([2], "<f8", "C", b"x" * 16), "array shape"),
        (((2,), "<f8", "C", [1.0, 2.0]), "list where array data"),
        (((2,), "|O", "C", b"x" * 16), "where a list of 2"),
        (((2,), "|O", "C", [1]), "where a list of 2"),
        (((1 << 40,), "|O", "C", None), "over the limit"),
        (((1,), ("struct", (("a", None, "|O", 0),), 8, False), "C", [1]), "not a tuple"),
        (((1,), ("string", True, ()), "C", [b"x"]), "not a str"),
        (((1,), ("string", True, ()), "C", None), "list of 1 strings"),
    ],
)
def test_arrays_with_parts_that_do_not_fit_are_refused(args: Any, match: str) -> None:
    opcodes = pickle.dumps(_Call(_construct.array, args), protocol=5)
    with pytest.raises(codecpickle.CorruptDataError, match=match):
        codecpickle.loads(container(opcodes), safe=True, max_buffer_size=1 << 30)


def test_fill_only_completes_an_array_this_load_made_empty() -> None:
    made = _Call(_construct.array, ((2,), "|O", "C", None))
    ok = _Call(_construct.fill, (made, [1, "x"]))
    loaded = codecpickle.loads(container(pickle.dumps((made, ok), protocol=5)), safe=True)
    assert loaded[0].tolist() == [1, "x"]
    assert loaded[1] is None
    twice = (made, ok, _Call(_construct.fill, (made, [2, "y"])))
    with pytest.raises(codecpickle.CorruptDataError, match="did not just make"):
        codecpickle.loads(container(pickle.dumps(twice, protocol=5)), safe=True)
    full = _Call(_construct.array, ((1,), "|O", "C", ["kept"]))
    other = (full, _Call(_construct.fill, (full, ["changed"])))
    with pytest.raises(codecpickle.CorruptDataError, match="did not just make"):
        codecpickle.loads(container(pickle.dumps(other, protocol=5)), safe=True)


# -- plain pickles of numpy data -----------------------------------------------------


PLAIN = [
    np.arange(12.0).reshape(3, 4),
    np.asfortranarray(np.arange(12, dtype=">i4").reshape(3, 4)),
    np.array(["a", "bc"]),
    np.array([b"a", b"bc"]),
    np.array([1, "x", None, [1]], dtype=object),
    np.asfortranarray(np.array([[1, None], ["x", 2.5]], dtype=object)),
    np.zeros(2, [("a", "O"), ("b", ">f8", (2,)), ("c", "M8[ms]")]),
    np.arange(5).astype("m8[h]"),
    np.array(["a", None], dtype=STRINGS(na_object=None)),
    np.ma.masked_array([1.0, 2.0], mask=[0, 1]),
    np.array([[1, 2]]).view(np.matrix),
    np.float32(2.5),
    np.datetime64("2020-01-01T10:00", "m"),
    np.zeros(2, dtype=[("a", "O"), ("b", "f8")])[0],
    np.str_("text"),
    np.dtype({"names": ["x"], "formats": ["<i4"], "titles": ["X"]}),
]


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
@pytest.mark.parametrize("obj", PLAIN, ids=lambda o: f"{type(o).__name__}-{getattr(o, 'dtype', o)}")
def test_plain_pickles_of_numpy_data_load_restricted(obj: Any, protocol: int) -> None:
    opcodes = pickle.dumps(obj, protocol=protocol)
    loaded = codecpickle.loads(container(opcodes), safe=True)
    reference = pickle.loads(opcodes)
    if isinstance(obj, np.void) or getattr(obj, "dtype", np.dtype("f8")).hasobject:
        assert type(loaded) is type(reference)
        assert loaded.dtype == reference.dtype
        assert repr(loaded.tolist()) == repr(reference.tolist())
    else:
        assert_same(loaded, reference)


@pytest.mark.parametrize("protocol", [0, 1, 2])
def test_python2_names_of_old_protocols_are_checked_as_what_they_mean(protocol: int) -> None:
    # Protocol 0-2 pickles name builtins as __builtin__.set and the like.
    obj = [{1, 2}, frozenset({3}), complex(1, 2), bytearray(b"x"), b"bytes", np.arange(3)]
    opcodes = pickle.dumps(obj, protocol=protocol)
    assert b"__builtin__" in opcodes
    assert_same(codecpickle.loads(container(opcodes), safe=True), obj)
