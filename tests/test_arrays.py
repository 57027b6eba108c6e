"""Every numpy array layout and dtype round-trips exactly, through every
codec, with types, identity and writeability preserved."""

from __future__ import annotations

import numpy as np
import pytest

import codecpickle
from tests.conftest import assert_same

CODECS = [None, "zlib", "gzip", "bz2", "lzma", "lz4", "zstd"]


def arrays(rng: np.random.Generator) -> dict[str, np.ndarray]:
    base = rng.standard_normal((300, 200))
    out: dict[str, np.ndarray] = {
        "c_order": base,
        "fortran": np.asfortranarray(base),
        "non_contiguous": base[:, ::3],
        "negative_stride": base[::-1, ::-2],
        "transposed_3d": rng.random((20, 30, 40)).transpose(2, 0, 1),
        "zero_d": np.array(42.0),
        "zero_d_int": np.array(7, dtype=np.int16),
        "empty": np.empty((0, 5)),
        "empty_strided": np.empty((10, 0))[::2],
        "bool": rng.random(10_000) > 0.5,
        "float16": rng.standard_normal(5000).astype(np.float16),
        "float32": rng.standard_normal(5000).astype(np.float32),
        "longdouble": np.arange(100, dtype=np.longdouble) / 3,
        "complex64": (rng.random(1000) + 1j * rng.random(1000)).astype(np.complex64),
        "complex128": rng.random(1000) + 1j * rng.random(1000),
        "datetime64": np.arange(100_000).astype("datetime64[ns]"),
        "timedelta64": np.arange(50_000).astype("timedelta64[s]"),
        "datetime_strided": np.arange(100_000).astype("datetime64[D]")[::7],
        "bytes": np.array([b"ab", b"cde", b""] * 100),
        "unicode": np.array(["\u00e9t\u00e9", "\u65e5\u672c", "long string"] * 100),
        "structured": np.array(
            [(i, float(i) * 1.5, b"x" * (i % 5)) for i in range(3000)],
            dtype=[("a", "<i8"), ("b", ">f4"), ("c", "S4")],
        ),
        "structured_nested": np.zeros(100, dtype=[("p", [("x", "f8"), ("y", "f8")]), ("n", "u1")]),
        "big_endian_f8": np.arange(10_000, dtype=">f8"),
        "big_endian_i4_strided": np.arange(10_000, dtype=">i4")[::3],
        "objects": np.array([1, "two", None, {"x": 3}, [4]], dtype=object),
        "objects_2d": np.array([[1, "a"], [None, 2.5]], dtype=object),
        "void": np.zeros(10, dtype="V7"),
    }
    for dtype in (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64):
        info = np.iinfo(dtype)
        out[f"int_{np.dtype(dtype).name}"] = rng.integers(
            info.min, info.max, 5000, dtype=dtype, endpoint=True
        )
    return out


@pytest.mark.parametrize("compress", CODECS)
def test_every_array_round_trips_exactly(rng, compress):
    original = arrays(rng)
    loaded = codecpickle.loads(codecpickle.dumps(original, compress=compress))
    assert_same(loaded, original)
    assert loaded["fortran"].flags.f_contiguous
    assert loaded["c_order"].flags.c_contiguous
    for name, array in loaded.items():
        assert array.flags.writeable, name


@pytest.mark.parametrize("compress", [None, "zstd"])
def test_nan_and_special_values_are_bit_exact(compress):
    special = np.array([np.nan, -np.nan, np.inf, -np.inf, -0.0, 0.0, 5e-324])
    loaded = codecpickle.loads(codecpickle.dumps(special, compress=compress))
    assert loaded.tobytes() == special.tobytes()


@pytest.mark.parametrize("compress", [None, "lz4"])
def test_same_array_twice_loads_as_one_object(compress):
    a = np.arange(100_000.0)
    view = a[::2]
    loaded = codecpickle.loads(codecpickle.dumps([a, a, view, view], compress=compress))
    assert loaded[0] is loaded[1]
    assert loaded[2] is loaded[3]
    np.testing.assert_array_equal(loaded[2], view)


@pytest.mark.parametrize("compress", [None, "zstd"])
def test_memmap_input_round_trips_as_its_data(tmp_path, compress):
    mapped = np.memmap(tmp_path / "raw.bin", dtype=np.float32, mode="w+", shape=(500, 300))
    mapped[:] = np.arange(150_000, dtype=np.float32).reshape(500, 300)
    mapped.flush()
    loaded = codecpickle.loads(codecpickle.dumps({"m": mapped, "v": mapped[:, ::2]}, compress))
    assert type(loaded["m"]) is np.ndarray
    np.testing.assert_array_equal(loaded["m"], np.asarray(mapped))
    np.testing.assert_array_equal(loaded["v"], np.asarray(mapped)[:, ::2])
    del mapped


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
@pytest.mark.parametrize("compress", [None, "zstd"])
def test_matrix_and_masked_arrays_keep_their_type(compress):
    matrix = np.matrix(np.arange(12.0).reshape(3, 4))
    masked = np.ma.masked_array(np.arange(1000.0), mask=np.arange(1000) % 7 == 0, fill_value=-1)
    masked_int = np.ma.masked_less(np.arange(20), 5)
    hard = np.ma.masked_array([1, 2, 3], mask=[0, 1, 0], hard_mask=True)
    loaded = codecpickle.loads(codecpickle.dumps([matrix, masked, masked_int, hard], compress))
    assert type(loaded[0]) is np.matrix
    assert_same(loaded[0], matrix)
    for got, expected in zip(loaded[1:], [masked, masked_int, hard], strict=True):
        assert type(got) is np.ma.MaskedArray
        assert_same(got, expected)
    assert loaded[3].hardmask


class TaggedArray(np.ndarray):
    """A plain subclass that relies on numpy's default pickling."""


@pytest.mark.parametrize("compress", [None, "zstd"])
def test_plain_subclass_keeps_its_type(compress):
    tagged = np.arange(10_000.0).view(TaggedArray)
    loaded = codecpickle.loads(codecpickle.dumps(tagged, compress=compress))
    assert type(loaded) is TaggedArray
    np.testing.assert_array_equal(loaded, tagged)


def test_read_only_arrays_stay_read_only_as_with_pickle():
    frozen = np.arange(100_000.0)
    frozen.flags.writeable = False
    for compress in (None, "zstd"):
        loaded = codecpickle.loads(codecpickle.dumps(frozen, compress=compress))
        np.testing.assert_array_equal(loaded, frozen)
        assert not loaded.flags.writeable
    small = np.arange(10.0)
    small.flags.writeable = False
    assert not codecpickle.loads(codecpickle.dumps(small, compress="zstd")).flags.writeable


def test_arrays_inside_objects_and_large_bytes(rng):
    payload = {
        "nested": [{"w": rng.random((50, 50))} for _ in range(20)],
        "blob": bytes(rng.integers(0, 256, 3_000_000, dtype=np.uint8)),
        "bytearray": bytearray(b"x" * 200_000),
    }
    for compress in (None, "zstd"):
        assert_same(codecpickle.loads(codecpickle.dumps(payload, compress=compress)), payload)


def test_datetime_and_strided_arrays_travel_out_of_band():
    # numpy itself pickles these with a whole tobytes() copy inside the
    # opcode stream; codecpickle streams them as payload records.
    from codecpickle._index import read_index

    strided = np.arange(1_000_000.0)[::2]
    dates = np.arange(200_000).astype("datetime64[s]")
    data = codecpickle.dumps([strided, dates])
    opcode_bytes = read_index(data).opcode_bytes
    assert opcode_bytes < 2000
