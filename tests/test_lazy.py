"""Lazy arrays: ``load(..., lazy=True)`` and ``codecpickle.open``."""

from __future__ import annotations

import gc
import io
import pickle
import sys
import warnings
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import codecpickle
from codecpickle._index import read_index
from tests.conftest import assert_same
from tests.test_index import CountingFile

CODECS = [None, "zlib", "gzip", "bz2", "lzma", "lz4", "zstd"]
DATA = Path(__file__).parent / "data"
sys.path.insert(0, str(DATA))
import make_golden  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")

RNG = np.random.default_rng(3)
ARRAYS = {
    "c": RNG.standard_normal((700, 300)).round(2),
    "f": np.asfortranarray(np.arange(700 * 60, dtype=np.int32).reshape(700, 60) % 97),
    "c3": np.arange(300 * 20 * 10, dtype=np.float32).reshape(300, 20, 10),
    "f3": np.asfortranarray(np.arange(300 * 20 * 10, dtype=np.int16).reshape(300, 20, 10)),
    "vector": np.arange(500_000, dtype=np.int64),
    "structured": np.array(
        [(i, i / 3) for i in range(90_000)], dtype=[("id", "<i4"), ("v", ">f8")]
    ),
    "dates": np.arange(200_000).astype("datetime64[s]"),
}
KEYS = [
    0, 5, -1, 699 % 300, slice(None), slice(10, 20), slice(None, None, 7), slice(250, 10, -3),
    slice(-40, None), slice(5, 5), (slice(3, 9, 2), 1), (4, 2), (slice(1, 4), Ellipsis),
    Ellipsis, (), (slice(2, 8), slice(None, None, -1)), np.int64(3), [1, 3, 2],
]
# Payloads of every array (1 MiB in-band limit with a codec): small chunks.
CHUNK = 1 << 16


def _dumped(obj: Any, compress: Any) -> bytes:
    big = {k: np.concatenate([v] * 1) for k, v in obj.items()} if isinstance(obj, dict) else obj
    return codecpickle.dumps(big, compress=compress, chunk_size=CHUNK)


def _materialise(obj: Any) -> Any:
    if isinstance(obj, codecpickle.LazyArray):
        return np.asarray(obj)
    if type(obj) is dict:
        return {k: _materialise(v) for k, v in obj.items()}
    if type(obj) in (list, tuple):
        return type(obj)(_materialise(v) for v in obj)
    return obj


@pytest.mark.parametrize("compress", CODECS)
def test_lazy_slices_equal_eager_ones(compress):
    data = codecpickle.dumps(ARRAYS, compress=compress, chunk_size=CHUNK)
    eager = codecpickle.loads(data)
    with codecpickle.open(io.BytesIO(data)) as file:
        lazy = file.load(lazy=True)
        for name, array in eager.items():
            proxy = lazy[name]
            if array.nbytes >= 1 << 20 or compress is None:
                assert isinstance(proxy, codecpickle.LazyArray), name
            else:
                continue  # small arrays travel in-band with a codec: real arrays
            assert proxy.shape == array.shape
            assert proxy.dtype == array.dtype
            assert proxy.nbytes == array.nbytes
            assert proxy.ndim == array.ndim
            assert proxy.size == array.size
            assert len(proxy) == len(array)
            assert proxy.order == ("F" if name.startswith("f") else "C")
            for key in KEYS:
                try:
                    expected = array[key]
                except IndexError:
                    with pytest.raises(IndexError):
                        proxy[key]
                    continue
                got = proxy[key]
                assert type(got) is type(expected), (name, key)
                assert_same(np.asarray(got), np.asarray(expected), f"{name}[{key!r}]")
            whole = np.asarray(proxy)
            assert_same(whole, array, name)
            assert whole.flags.f_contiguous == array.flags.f_contiguous


@pytest.mark.parametrize("compress", [None, "zstd"])
def test_a_slice_reads_only_the_chunks_that_cover_it(compress):
    vector = np.arange(4_000_000, dtype=np.float64).round(1)  # 32 MiB
    data = codecpickle.dumps({"v": vector, "tag": "x"}, compress=compress, chunk_size=1 << 20)
    file = CountingFile(data)
    with codecpickle.open(file) as opened:
        lazy = opened.load(lazy=True)["v"]
        reads_to_load = file.reads
        # Footer, END + trailer, one opcode chunk: nothing of the payload.
        assert reads_to_load <= 4
        assert file.bytes_read < 4096
        index = read_index(data)
        payload = index.payloads[0]
        rows_per_chunk = (1 << 20) // 8
        file.reads = file.bytes_read = 0
        start = 3 * rows_per_chunk + 100
        got = lazy[start : start + 1000]
        np.testing.assert_array_equal(got, vector[start : start + 1000])
        if compress is None:
            # Raw payloads are read exactly: one read of the 8000 bytes.
            assert (file.reads, file.bytes_read) == (1, 8000)
        else:
            chunk = payload.chunks[3]
            assert file.reads == 1
            assert file.bytes_read == chunk.stored_size + 8
        # A slice across two chunks reads both; repeated, it hits the cache.
        file.reads = file.bytes_read = 0
        across = slice(5 * rows_per_chunk - 10, 5 * rows_per_chunk + 10)
        np.testing.assert_array_equal(lazy[across], vector[across])
        expected_reads = 1 if compress is None else 2
        assert file.reads == expected_reads
        if compress is not None:
            file.reads = 0
            np.testing.assert_array_equal(lazy[across], vector[across])
            assert file.reads == 0


def test_fortran_slices_read_only_the_rows_of_each_column():
    array = np.asfortranarray(np.arange(1_000_000, dtype=np.float64).reshape(250_000, 4))
    data = codecpickle.dumps(array, compress="zstd", chunk_size=1 << 16)
    file = CountingFile(data)
    with codecpickle.open(file) as opened:
        lazy = opened.load(lazy=True)
        file.reads = 0
        np.testing.assert_array_equal(lazy[100:200], array[100:200])
        # One chunk per column: 4 of the payload's chunks.
        assert file.reads == 4
        assert len(read_index(data).payloads[0].chunks) > 100


def test_load_lazy_on_a_path_keeps_the_file_open_while_arrays_live(tmp_path):
    path = tmp_path / "x.cpkl"
    codecpickle.dump(ARRAYS, path, compress="lz4", chunk_size=CHUNK)
    lazy = codecpickle.load(path, lazy=True)
    assert isinstance(lazy["c"], codecpickle.LazyArray)
    np.testing.assert_array_equal(lazy["c"][3], ARRAYS["c"][3])
    file = weakref.ref(lazy["c"]._reader._file)
    handle = file()._file
    del lazy
    gc.collect()
    assert file() is None
    assert handle.closed


def test_a_closed_file_refuses_reads(tmp_path):
    path = tmp_path / "x.cpkl"
    codecpickle.dump(ARRAYS, path)
    with codecpickle.open(path) as file:
        lazy = file.load(lazy=True)
    with pytest.raises(ValueError, match="closed"):
        lazy["c"][0]


def test_file_objects_stay_open_and_end_after_the_stream():
    buffer = io.BytesIO()
    codecpickle.dump(ARRAYS, buffer)
    codecpickle.dump("second", buffer)
    buffer.seek(0)
    lazy = codecpickle.load(buffer, lazy=True)
    assert codecpickle.load(buffer) == "second"
    np.testing.assert_array_equal(lazy["f"][2:4], ARRAYS["f"][2:4])


def test_streams_load_one_after_another_lazily_or_not():
    buffer = io.BytesIO()
    for obj, compress in (({"a": np.ones(300_000)}, "zstd"), ([1, 2], None), (ARRAYS, None)):
        codecpickle.dump(obj, buffer, compress=compress)
    buffer.seek(0)
    with codecpickle.open(buffer) as file:
        first = file.load(lazy=True)
        assert file.load() == [1, 2]
        third = file.load(lazy=True)
        np.testing.assert_array_equal(np.asarray(first["a"]), np.ones(300_000))
        assert_same(_materialise(third), ARRAYS)
        with pytest.raises(codecpickle.EmptyInputError):
            file.load(lazy=True)


class Plain:
    """A user class with default pickling: keeps lazy arrays."""

    def __init__(self, weights: Any) -> None:
        self.weights = weights


class Stateful:
    """A user class that sets its own state: gets real arrays."""

    def __init__(self, weights: Any) -> None:
        self.weights = weights

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.weights = state["weights"] * 1  # needs a real array
        self.__dict__.update({k: v for k, v in state.items() if k != "weights"})


def test_which_objects_keep_lazy_arrays():
    big = np.arange(300_000, dtype=np.float64)
    obj = {
        "list": [big, big + 1],
        "tuple": (big + 2,),
        "plain": Plain(big + 3),
        "stateful": Stateful(big + 4),
        "after": big + 5,
    }
    data = codecpickle.dumps(obj)
    with codecpickle.open(io.BytesIO(data)) as file:
        lazy = file.load(lazy=True)
        assert isinstance(lazy["list"][0], codecpickle.LazyArray)
        assert lazy["list"][0] is not lazy["list"][1]
        assert isinstance(lazy["tuple"][0], codecpickle.LazyArray)
        assert isinstance(lazy["plain"].weights, codecpickle.LazyArray)
        # From the first class that sets its own state on, arrays are real.
        assert type(lazy["stateful"].weights) is np.ndarray
        assert type(lazy["after"]) is np.ndarray
        np.testing.assert_array_equal(lazy["stateful"].weights, big + 4)
        np.testing.assert_array_equal(lazy["plain"].weights[7:9], (big + 3)[7:9])


def test_lazy_arrays_dump_as_the_arrays_they_stand_for():

    data = codecpickle.dumps({"c": ARRAYS["c"], "f": ARRAYS["f"]})
    with codecpickle.open(io.BytesIO(data)) as file:
        lazy = file.load(lazy=True)
        again = codecpickle.loads(codecpickle.dumps(lazy, compress="zstd"))
        plain = pickle.loads(pickle.dumps(lazy))
    for name in ("c", "f"):
        assert_same(again[name], ARRAYS[name])
        assert_same(plain[name], ARRAYS[name])


def test_the_same_array_twice_is_one_lazy_array():
    big = np.arange(300_000)
    with codecpickle.open(io.BytesIO(codecpickle.dumps([big, big]))) as file:
        first, second = file.load(lazy=True)
    assert first is second


def test_pandas_and_scikit_learn_objects_get_real_arrays():
    pd = pytest.importorskip("pandas")
    ensemble = pytest.importorskip("sklearn.ensemble")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2000, 8))
    forest = ensemble.RandomForestRegressor(n_estimators=3, random_state=0).fit(x, x[:, 0])
    frame = pd.DataFrame({"a": np.arange(300_000.0), "b": np.arange(300_000)})
    obj = {"first": np.arange(300_000.0), "frame": frame, "forest": forest}
    data = codecpickle.dumps(obj)
    with codecpickle.open(io.BytesIO(data)) as file:
        lazy = file.load(lazy=True)
    assert isinstance(lazy["first"], codecpickle.LazyArray)
    pd.testing.assert_frame_equal(lazy["frame"], frame)
    np.testing.assert_array_equal(lazy["forest"].predict(x[:50]), forest.predict(x[:50]))


def test_masked_arrays_and_matrices_are_read_whole():
    masked = np.ma.masked_array(np.arange(300_000.0), mask=np.arange(300_000) % 3 == 0)
    matrix = np.matrix(np.arange(300_000.0).reshape(600, 500))
    data = codecpickle.dumps({"masked": masked, "matrix": matrix})
    with codecpickle.open(io.BytesIO(data)) as file:
        lazy = file.load(lazy=True)
    assert_same(lazy["masked"], masked)
    assert_same(lazy["matrix"], matrix)


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("codec", make_golden.CODECS)
@pytest.mark.parametrize("safe", [False, True])
def test_golden_files_load_lazily(codec, version, safe):
    path = make_golden.golden_dir(version) / f"{codec}.cpkl"
    with codecpickle.open(path) as file:
        lazy = file.load(lazy=True, safe=safe)
        if codec == "none":
            assert isinstance(lazy["float64"], codecpickle.LazyArray)
        assert_same(_materialise(lazy), make_golden.golden_object())


def test_damage_is_found_when_the_chunk_is_read():
    vector = np.arange(2_000_000, dtype=np.float64)
    data = bytearray(codecpickle.dumps(vector, compress="zstd", chunk_size=1 << 16))
    chunk = read_index(bytes(data)).payloads[0].chunks[10]
    data[chunk.data_offset + 5] ^= 1
    with codecpickle.open(io.BytesIO(bytes(data))) as file:
        lazy = file.load(lazy=True)
        np.testing.assert_array_equal(lazy[:100], vector[:100])  # another chunk
        with pytest.raises(codecpickle.ChecksumMismatchError, match="checksum"):
            lazy[10 * 8192 + 3]


SAFE_OBJECT = {
    **ARRAYS,
    "masked": np.ma.masked_array(np.arange(200_000.0), mask=np.arange(200_000) % 3 == 0),
    "matrix": np.arange(90_000).reshape(300, 300).view(np.matrix),
    "scalar": np.float32(2.5),
    "objects": np.array([1, "two", None], dtype=object),
    "nested": [{"v": np.arange(300_000, dtype=np.uint16)}],
}


@pytest.mark.parametrize("compress", [None, "zstd"])
def test_restricted_lazy_loads_keep_arrays_lazy(compress):
    data = codecpickle.dumps(SAFE_OBJECT, compress=compress, chunk_size=CHUNK)
    for options in ({"safe": True}, {"allow": []}, {"allow": ["collections.OrderedDict"]}):
        with codecpickle.open(io.BytesIO(data)) as file:
            lazy = file.load(lazy=True, **options)
            for name in ARRAYS:
                assert isinstance(lazy[name], codecpickle.LazyArray), name
            assert isinstance(lazy["nested"][0]["v"], codecpickle.LazyArray)
            np.testing.assert_array_equal(lazy["c"][5:9], ARRAYS["c"][5:9])
            assert_same(_materialise(lazy), SAFE_OBJECT)
    lazy = codecpickle.load(io.BytesIO(data), lazy=True, safe=True)
    assert isinstance(lazy["vector"], codecpickle.LazyArray)


def test_restricted_lazy_loads_of_pandas_objects_get_real_arrays_from_them_on():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": np.arange(300_000), "b": np.arange(300_000.0)})
    data = codecpickle.dumps({"x": np.arange(300_000.0), "frame": frame, "y": np.ones(300_000)})
    with codecpickle.open(io.BytesIO(data)) as file:
        lazy = file.load(lazy=True, allow=codecpickle.PANDAS_GLOBALS)
        assert isinstance(lazy["x"], codecpickle.LazyArray)
        assert type(lazy["y"]) is np.ndarray
        pd.testing.assert_frame_equal(lazy["frame"], frame)
    with pytest.raises(codecpickle.ForbiddenGlobalError) as refused:
        codecpickle.load(io.BytesIO(data), lazy=True, safe=True)
    assert "codecpickle._construct_pandas.frame" in refused.value.names


def test_restricted_lazy_loads_refuse_what_restricted_loads_refuse():
    obj = {"a": np.arange(300_000), "plain": Plain(np.arange(300_000.0)), "path": Path("x")}
    data = codecpickle.dumps(obj)
    with pytest.raises(codecpickle.ForbiddenGlobalError) as refused:
        codecpickle.load(io.BytesIO(data), lazy=True, safe=True)
    expected = {f"{__name__}.Plain", f"{type(Path('x')).__module__}.{type(Path('x')).__name__}"}
    assert set(refused.value.names) == expected
    # Allowed by the caller: loaded, the class's arrays still lazy.
    with codecpickle.open(io.BytesIO(data)) as file:
        lazy = file.load(lazy=True, allow=[Plain, type(Path("x"))])
        assert isinstance(lazy["plain"].weights, codecpickle.LazyArray)
        np.testing.assert_array_equal(lazy["plain"].weights[3:5], [3.0, 4.0])
        assert lazy["path"] == Path("x")


class _Evil:
    def __reduce__(self) -> Any:
        return (eval, ("1 + 1",))


class _Mismatched:
    """Reduces to the array constructor with a payload of the wrong size."""

    def __reduce__(self) -> Any:
        from codecpickle import _construct

        return (_construct.array, ((7,), "<i8", "C", np.zeros(2 << 20, np.uint8)))


def test_restricted_lazy_loads_refuse_hostile_streams():
    data = codecpickle.dumps({"a": np.arange(300_000), "evil": _Evil()})
    with pytest.raises(codecpickle.ForbiddenGlobalError, match=r"builtins\.eval"):
        codecpickle.load(io.BytesIO(data), lazy=True, safe=True)
    # An admitted constructor given a payload that does not fit: refused
    # by its checks, as in an eager restricted load.
    bad = codecpickle.dumps({"a": np.arange(300_000), "bad": _Mismatched()})
    assert read_index(bad).payloads[-1].raw_size == 2 << 20  # out of band
    with pytest.raises(codecpickle.CorruptDataError) as eager:
        codecpickle.loads(bad, safe=True)
    with pytest.raises(codecpickle.CorruptDataError) as lazy:
        codecpickle.load(io.BytesIO(bad), lazy=True, safe=True)
    assert str(lazy.value) == str(eager.value)


def test_lazy_loads_refuse_mmap_mode_and_say_why():
    data = codecpickle.dumps(ARRAYS)
    for mode in ("r", "r+", "c"):
        with pytest.raises(codecpickle.InvalidOptionError, match="mmap_mode") as refused:
            codecpickle.load(io.BytesIO(data), lazy=True, mmap_mode=mode)
        assert "np.memmap" in str(refused.value)
        with codecpickle.open(io.BytesIO(data)) as file, pytest.raises(
            codecpickle.InvalidOptionError, match="Choose one"
        ):
            file.load(lazy=True, mmap_mode=mode)
    with pytest.raises(codecpickle.InvalidOptionError, match="unexpected options"):
        codecpickle.open(io.BytesIO(data)).load(lazy=True, compress="zstd")  # a dump option
    with pytest.raises(codecpickle.InvalidOptionError, match="safe=False contradicts"):
        codecpickle.load(io.BytesIO(data), lazy=True, safe=False, allow=[])
    # threads is accepted (lazy arrays decode in the thread that reads them).
    lazy = codecpickle.load(io.BytesIO(data), lazy=True, threads=1)
    np.testing.assert_array_equal(lazy["c"][1], ARRAYS["c"][1])


def _raw_payload_flipped() -> tuple[np.ndarray, bytes]:
    vector = np.arange(2_000_000, dtype=np.int64)
    data = bytearray(codecpickle.dumps({"v": vector}))
    payload = read_index(bytes(data)).payloads[0]
    assert payload.kind == "raw"
    data[payload.data_offset + 8 * 1000] ^= 1  # element 1000
    return vector, bytes(data)


def test_verify_false_skips_the_checksums_of_raw_payloads():
    vector, data = _raw_payload_flipped()
    with codecpickle.open(io.BytesIO(data)) as file:
        lazy = file.load(lazy=True)
        with pytest.raises(codecpickle.ChecksumMismatchError):
            np.asarray(lazy["v"])
    expected = vector.copy()
    expected[1000] ^= 1
    for load in (
        lambda: codecpickle.load(io.BytesIO(data), lazy=True, verify=False),
        lambda: codecpickle.open(io.BytesIO(data)).load(lazy=True, verify=False),
    ):
        np.testing.assert_array_equal(np.asarray(load()["v"]), expected)
    # Compressed chunks are always verified, as in eager loads.
    packed = bytearray(codecpickle.dumps(vector, compress="zstd", chunk_size=1 << 16))
    chunk = read_index(bytes(packed)).payloads[0].chunks[3]
    packed[chunk.data_offset + 5] ^= 1
    lazy = codecpickle.load(io.BytesIO(bytes(packed)), lazy=True, verify=False)
    with pytest.raises(codecpickle.ChecksumMismatchError):
        np.asarray(lazy)


def test_lazy_loads_accept_raw_payloads_changed_through_mmap_r_plus(tmp_path):
    path = tmp_path / "x.cpkl"
    codecpickle.dump({"v": np.arange(2_000_000, dtype=np.int64)}, path)
    mapped = codecpickle.load(path, mmap_mode="r+")
    mapped["v"][:10] = -1
    mapped["v"].flush()
    del mapped
    with codecpickle.open(path) as file:
        lazy = file.load(lazy=True)
        whole = np.asarray(lazy["v"])  # stale checksum: not verified, as for load()
    assert whole[:10].tolist() == [-1] * 10
    assert whole[10] == 10
    np.testing.assert_array_equal(codecpickle.load(path)["v"], whole)


def test_max_buffer_size_bounds_chunks_and_reads_of_lazy_arrays():
    vector = np.arange(1 << 20, dtype=np.int64)  # 8 MiB
    data = codecpickle.dumps({"v": vector}, compress="zstd", chunk_size=1 << 16)
    # A chunk over the bound: refused when loading, before any is read.
    with pytest.raises(codecpickle.SizeLimitError, match="max_buffer_size"):
        codecpickle.load(io.BytesIO(data), lazy=True, max_buffer_size=1 << 15)
    # Chunks within it: the load works and slices up to the bound read.
    bound = 1 << 20
    for options in ({}, {"safe": True}):
        lazy = codecpickle.load(io.BytesIO(data), lazy=True, max_buffer_size=bound, **options)
        np.testing.assert_array_equal(lazy["v"][:1000], vector[:1000])
        with pytest.raises(codecpickle.SizeLimitError, match="over the limit"):
            np.asarray(lazy["v"])  # 8 MiB at once
        with pytest.raises(codecpickle.SizeLimitError):
            lazy["v"][: bound // 8 + 1]
    # A pickled bytes object over the bound, in the opcode stream.
    blob = codecpickle.dumps({"b": b"x" * 200_000, "v": vector})
    for options in ({}, {"safe": True}):
        with pytest.raises(codecpickle.SizeLimitError):
            codecpickle.load(io.BytesIO(blob), lazy=True, max_buffer_size=100_000, **options)
    with pytest.raises(codecpickle.InvalidOptionError, match="max_buffer_size"):
        codecpickle.load(io.BytesIO(data), lazy=True, max_buffer_size=0)


def test_pipes_cannot_be_opened():
    class Pipe(io.RawIOBase):
        def readable(self) -> bool:
            return True

    with pytest.raises(codecpickle.InvalidOptionError, match="seek"):
        codecpickle.open(Pipe())
    with pytest.raises(codecpickle.InvalidOptionError, match="seek"):
        codecpickle.load(Pipe(), lazy=True)


def test_lazy_load_warns_about_versions_too(monkeypatch):
    from codecpickle import _manifest

    data = codecpickle.dumps({"a": np.arange(300_000)})
    monkeypatch.setattr(np, "__version__", "1.0.0")
    data = codecpickle.dumps({"a": np.arange(300_000)})
    monkeypatch.undo()
    _manifest._warned.clear()
    with pytest.warns(codecpickle.VersionMismatchWarning, match="numpy 1.0.0"):
        codecpickle.load(io.BytesIO(data), lazy=True)
    _manifest._warned.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        codecpickle.load(io.BytesIO(data))


def test_urls_load_lazily_with_range_requests(s3_server, s3_bucket, monkeypatch):
    s3fs = pytest.importorskip("s3fs")
    vector = np.arange(4_000_000, dtype=np.float64).round(1)
    url = f"s3://{s3_bucket}/lazy.cpkl"
    options = s3_server.storage_options()
    codecpickle.dump({"v": vector}, url, compress="zstd", storage_options=options)
    ranges: list[tuple[int, int]] = []
    original = s3fs.core.S3File._fetch_range

    def fetch_range(file: Any, start: int, end: int) -> bytes:
        ranges.append((start, end))
        return original(file, start, end)

    monkeypatch.setattr(s3fs.core.S3File, "_fetch_range", fetch_range)
    with codecpickle.open(url, storage_options=options) as file:
        lazy = file.load(lazy=True)["v"]
        loaded = len(ranges)
        assert loaded <= 4  # footer, END + trailer, opcode chunk(s)
        np.testing.assert_array_equal(lazy[2_000_000:2_000_100], vector[2_000_000:2_000_100])
    assert len(ranges) == loaded + 1  # one chunk
    fetched = sum(end - start for start, end in ranges)
    assert fetched < 2 * (4 << 20)


def test_memory_urls_load_lazily():
    url = "memory://lazy-test/x.cpkl"
    codecpickle.dump({"a": np.arange(1_000_000.0)}, url, compress="lz4")
    lazy = codecpickle.load(url, lazy=True)
    assert isinstance(lazy["a"], codecpickle.LazyArray)
    np.testing.assert_array_equal(lazy["a"][-3:], [999_997.0, 999_998.0, 999_999.0])
