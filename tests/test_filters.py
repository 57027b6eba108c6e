"""Filters: byte shuffle and delta before the codec, chosen per chunk.

Round trips of every dtype family and layout with each filter and codec,
the choice (deterministic, whatever the thread count), the ``filters=``
option, and the format rules a reader enforces on the filter fields.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xxhash

import codecpickle
from codecpickle import _filters, _probe
from codecpickle import _format as fmt
from codecpickle.codecs import available_codecs
from tests.conftest import assert_same
from tests.test_container import walk

MiB = 1 << 20
CHUNK = 1 << 16
BUILTIN_CODECS = ["zstd", "lz4", "zlib", "gzip", "bz2", "lzma"]
PLUGIN_CODECS = [name for name in ("blosc2", "brotli") if name in available_codecs()]
FILTER_OPTIONS = ["auto", None, "shuffle", "delta"]


def _families(n: int) -> dict[str, np.ndarray]:
    """One array of every dtype family, ``n`` elements, smooth enough that
    filters pay off on most of them."""
    ramp = np.arange(n)
    wave = np.sin(ramp / 200.0)
    return {
        "bool": ramp % 3 == 0,
        "int8": (ramp % 100).astype(np.int8),
        "uint16": (ramp * 7 % 60_000).astype(np.uint16),
        "int32": (ramp * 3).astype(np.int32),
        "int64": np.cumsum(ramp % 5),
        "uint64": (ramp * 1_000_003).astype(np.uint64),
        "float16": wave.astype(np.float16),
        "float32": wave.astype(np.float32),
        "float64": wave,
        "longdouble": wave.astype(np.longdouble),
        "complex64": (wave + 1j * wave[::-1]).astype(np.complex64),
        "complex128": wave + 1j * ramp,
        "datetime64": (ramp * 1_000).astype("datetime64[ms]"),
        "timedelta64": ramp.astype("timedelta64[s]"),
        "bytes": np.array([b"ab", b"cde", b"f"] * (n // 3 + 1))[:n],
        "unicode": np.array(["x", "yy", "zzz"] * (n // 3 + 1))[:n],
        "structured": np.array(
            list(zip(ramp % 1000, wave, strict=True)), dtype=[("id", "<i4"), ("v", ">f8")]
        ),
        "big_endian": (ramp * 11).astype(">i8"),
        "void": np.frombuffer(np.repeat((wave * 1000).astype(np.int64), 3).tobytes(), "V24"),
    }


def _layouts(array: np.ndarray) -> dict[str, np.ndarray]:
    grid = array[: array.size // 64 * 64].reshape(-1, 64)
    return {
        "c": array,
        "fortran": np.asfortranarray(grid),
        "strided": grid[:, 1::2],
        "negative": array[::-3],
    }


def _filter_ids(data: bytes) -> set[int]:
    _, records = walk(data)
    return {c.filter_id for r in records if r.kind == 0x02 for c in r.chunks or ()}


# -- the transforms ------------------------------------------------------------


@pytest.mark.parametrize(
    ("filter_id", "itemsize"),
    [(f, n) for f in (_filters.SHUFFLE, _filters.DELTA) for n in (1, 2, 3, 4, 8, 12, 16, 64, 100)
     if _filters.valid_for(f, n)],
)
@pytest.mark.parametrize("length", [0, 1, 7, 4096, 100_003])
def test_transforms_invert_exactly(filter_id, itemsize, length):
    raw = np.random.default_rng(length).integers(0, 256, length, dtype=np.uint8)
    filtered = np.empty_like(raw)
    _filters.encode(filter_id, memoryview(raw), memoryview(filtered), itemsize)
    back = np.full_like(raw, 0xAA)
    _filters.decode(filter_id, memoryview(filtered), memoryview(back), itemsize)
    assert back.tobytes() == raw.tobytes()


def test_shuffle_groups_bytes_by_position():
    raw = np.array([0x0102, 0x0304, 0x0506], dtype="<u2").view(np.uint8)
    out = np.empty_like(raw)
    _filters.encode(_filters.SHUFFLE, memoryview(raw), memoryview(out), 2)
    assert out.tolist() == [0x02, 0x04, 0x06, 0x01, 0x03, 0x05]


def test_delta_stores_wrapping_steps_then_shuffles():
    values = np.array([5, 7, 6, 2**64 - 1], dtype="<u8")
    raw = values.view(np.uint8)
    out = np.empty_like(raw)
    _filters.encode(_filters.DELTA, memoryview(raw), memoryview(out), 8)
    steps = np.array([5, 2, 2**64 - 1, 2**64 - 7], dtype="<u8").view(np.uint8)
    expected = np.empty_like(steps)
    _filters.encode(_filters.SHUFFLE, memoryview(steps), memoryview(expected), 8)
    assert out.tobytes() == expected.tobytes()


def test_filters_are_defined_for_their_element_sizes():
    assert _filters.valid_for(_filters.NONE, 0)
    assert not _filters.valid_for(_filters.SHUFFLE, 1)
    assert _filters.valid_for(_filters.SHUFFLE, 3)
    assert [n for n in range(17) if _filters.valid_for(_filters.DELTA, n)] == [1, 2, 4, 8]
    assert not _filters.valid_for(3, 8)
    assert _filters.candidates(8) == (_filters.NONE, _filters.SHUFFLE, _filters.DELTA)
    assert _filters.candidates(1) == (_filters.NONE, _filters.DELTA)
    assert _filters.candidates(200) == (_filters.NONE,)


# -- round trips -----------------------------------------------------------------


@pytest.mark.parametrize("filters", FILTER_OPTIONS)
@pytest.mark.parametrize("family", sorted(_families(3)))
def test_every_dtype_family_and_layout_round_trips(family, filters):
    array = _families(40_000)[family]
    obj = _layouts(array)
    data = codecpickle.dumps(obj, compress="zstd", chunk_size=CHUNK, filters=filters)
    assert_same(codecpickle.loads(data), obj)
    if filters is None:
        assert _filter_ids(data) == {0}


@pytest.mark.parametrize("filters", FILTER_OPTIONS)
@pytest.mark.parametrize("codec", BUILTIN_CODECS + PLUGIN_CODECS)
def test_every_codec_round_trips_filtered_chunks(codec, filters):
    families = _families(20_000)
    obj = {name: _layouts(array)["strided"] for name, array in families.items()}
    obj["big"] = np.sin(np.arange(300_000) / 1e3)  # 2.3 MiB: out of band, several chunks
    obj["tail"] = families["structured"][:-1]  # 12-byte records: a partial element per chunk
    # Larger chunks than elsewhere: lzma and bz2 pay a fixed cost per call.
    data = codecpickle.dumps(obj, compress=codec, chunk_size=4 * CHUNK, filters=filters)
    for threads in (1, 2):
        assert_same(codecpickle.loads(data, threads=threads), obj)
    ids = _filter_ids(data)
    expected = {None: {0}, "shuffle": {_filters.SHUFFLE}, "delta": {_filters.DELTA}}
    if filters in expected:
        # Forced filters apply wherever the element size allows; elsewhere none.
        assert ids - {0} == expected[filters] - {0}
    else:
        assert ids & {_filters.SHUFFLE, _filters.DELTA}


def test_filtered_streams_load_from_files_and_pipes(tmp_path):
    obj = {"wave": np.sin(np.arange(500_000) / 1e4).astype(np.float32)}
    path = tmp_path / "wave.cpkl"
    codecpickle.dump(obj, path, compress="zstd", chunk_size=CHUNK)
    assert _filter_ids(path.read_bytes()) - {0}
    assert_same(codecpickle.load(path), obj)
    stream = io.BufferedReader(io.BytesIO(path.read_bytes() * 2))  # type: ignore[arg-type]
    assert_same(codecpickle.load(stream), obj)
    assert_same(codecpickle.load(stream), obj)


def test_uncompressed_streams_are_never_filtered():
    array = np.sin(np.arange(300_000) / 1e3)
    data = codecpickle.dumps(array)
    _, records = walk(data)
    assert {r.kind for r in records} >= {0x03}
    assert 0x02 not in {r.kind for r in records}


# -- the choice ------------------------------------------------------------------


def _mixed() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    n = 600_000
    # Sizes all differ, so that a payload is found by its size.
    return {
        "smooth": np.sin(np.arange(n, dtype=np.float32) / 1e3),
        "sorted": np.cumsum(rng.integers(1, 50, n)),
        "rounded": np.round(rng.standard_normal(n + 1) * 3, 2),
        "noise": rng.integers(0, 256, 2 * MiB, dtype=np.uint8),
        "random": rng.standard_normal(n + 2),
        "digits_like": np.asarray(rng.integers(0, 17, (2000, 64)), dtype=np.float64),
    }


def test_output_is_identical_for_any_thread_count():
    obj = _mixed()
    outputs = {
        threads: codecpickle.dumps(obj, compress="zstd", chunk_size=1 << 18, threads=threads)
        for threads in (1, 2, 3, 8)
    }
    assert len(set(outputs.values())) == 1
    assert _filter_ids(outputs[1]) >= {0, _filters.SHUFFLE, _filters.DELTA}


def test_choice_follows_the_data():
    obj = _mixed()
    data = codecpickle.dumps(obj, compress="zstd", chunk_size=1 << 18, threads=1)
    _, records = walk(data)
    payloads = [r for r in records if r.kind == 0x02]
    by_size = {r.raw_size: r for r in payloads}

    def chunks(name: str) -> set[tuple[int, bool]]:
        record = by_size[obj[name].nbytes]
        return {(c.filter_id, c.stored_raw) for c in record.chunks or ()}

    assert chunks("sorted") == {(_filters.DELTA, False)}
    assert chunks("noise") == {(0, True)}
    # Rounded decimals compress better as they are than shuffled.
    assert chunks("rounded") == {(0, False)}
    assert chunks("random") == {(_filters.SHUFFLE, False)}
    assert_same(codecpickle.loads(data), obj)


def test_a_smooth_float64_signal_is_no_longer_stored_raw():
    # The old probe stored this raw: its sample shrank by less than 10%.
    signal = np.sin(np.arange(4 * MiB // 8) / 1e5)
    data = codecpickle.dumps(signal, compress="zstd")
    assert len(data) < signal.nbytes / 3
    _, records = walk(data)
    assert not any(c.stored_raw for r in records if r.kind == 0x02 for c in r.chunks or ())


def _chunk_states(data: bytes) -> set[tuple[int, bool]]:
    _, records = walk(data)
    return {(c.filter_id, c.stored_raw) for r in records if r.kind == 0x02 for c in r.chunks or ()}


def test_near_random_floats_are_stored_raw_at_fast_levels():
    # Byte shuffle saves 12-16% here, for seven times the time of storing it
    # raw: below the 15% a chunk of 1 MiB or more must save at a fast level.
    noise = np.random.default_rng(0).random(MiB)  # 8 MiB: two 4 MiB chunks
    for compress in ("zstd", ("zstd", 3), ("zstd", 1), "lz4"):
        data = codecpickle.dumps(noise, compress=compress)
        assert _chunk_states(data) == {(0, True)}, compress
        assert_same(codecpickle.loads(data), noise)
    # Asking for more than the default level asks for ratio: 12% counts.
    data = codecpickle.dumps(noise, compress=("zstd", 4))
    assert _chunk_states(data) == {(_filters.SHUFFLE, False)}
    assert len(data) < noise.nbytes * 0.9
    assert_same(codecpickle.loads(data), noise)
    # So do chunks under 1 MiB, which cost milliseconds to compress.
    data = codecpickle.dumps(noise, compress="zstd", chunk_size=MiB // 2)
    assert _chunk_states(data) == {(_filters.SHUFFLE, False)}


def test_a_chunk_stored_raw_costs_only_the_screen():
    calls = []

    class Recording(codecpickle.codecs.zstd.ZstdCodec):  # type: ignore[name-defined]
        def encode(self, data, itemsize=1):
            calls.append(memoryview(data).nbytes)
            return super().encode(data, itemsize)

    pool = _filters.ScratchPool(0)
    noise = memoryview(np.random.default_rng(0).random(4 * MiB // 8)).cast("B")
    assert _probe.choose(Recording(), noise, 8, _filters.candidates(8), pool) == _probe.STORE_RAW
    screen = _probe.SAMPLE_PIECES * _probe.SCREEN_PIECE
    assert calls == [screen] * 3  # none, shuffle, delta on 16 KiB; nothing more
    # A chunk that passes the screen has its filter picked on the whole sample.
    calls.clear()
    smooth = memoryview(np.sin(np.arange(4 * MiB // 8) / 1e5)).cast("B")
    assert _probe.choose(Recording(), smooth, 8, _filters.candidates(8), pool) == _filters.DELTA
    assert calls == [screen] * 3 + [_probe.SAMPLE_PIECES * _probe.SAMPLE_PIECE] * 3
    # One candidate: the screen is the whole decision.
    calls.clear()
    rounded = memoryview(np.round(np.sin(np.arange(4 * MiB // 8) / 1e3), 2)).cast("B")
    only = (_filters.NONE,)
    assert _probe.choose(Recording(), rounded, 8, only, pool) == _filters.NONE
    assert calls == [screen]
    calls.clear()  # plain zstd saves 11% on the sine: stored raw at level 3
    assert _probe.choose(Recording(), smooth, 8, only, pool) == _probe.STORE_RAW
    assert calls == [screen]


def test_the_screen_keeps_output_identical_for_any_thread_count():
    rng = np.random.default_rng(5)
    obj = {
        "noise": rng.random(MiB),  # stored raw after the screen
        "smooth": np.sin(np.arange(MiB) / 1e5),  # passes it: delta
        "mixed": np.concatenate([rng.random(MiB // 2), np.arange(MiB // 2, dtype=np.float64)]),
    }
    outputs = {threads: codecpickle.dumps(obj, compress="zstd", threads=threads)
               for threads in (1, 2, 3)}
    assert len(set(outputs.values())) == 1
    assert _chunk_states(outputs[1]) == {(0, True), (_filters.DELTA, False)}
    assert_same(codecpickle.loads(outputs[2]), obj)


def test_the_minimum_saving_depends_on_level_and_chunk_size():
    big, small = _probe.MIN_PROBED_CHUNK, _probe.MIN_PROBED_CHUNK - 1
    zstd, zlib = codecpickle.codecs.ZstdCodec, codecpickle.codecs.ZlibCodec
    assert _probe.min_saving(zstd(), big) == _probe.FAST_MIN_SAVING
    assert _probe.min_saving(zstd(-5), big) == _probe.FAST_MIN_SAVING
    assert _probe.min_saving(zstd(4), big) == _probe.MIN_SAVING
    assert _probe.min_saving(zstd(), small) == _probe.MIN_SAVING
    assert _probe.min_saving(zlib(6), big) == _probe.FAST_MIN_SAVING
    assert _probe.min_saving(zlib(9), big) == _probe.MIN_SAVING
    # lz4's levels 0 to 2 are one fast compressor: all ask for speed.
    lz4 = codecpickle.codecs.Lz4Codec
    assert [_probe.min_saving(lz4(level), big) for level in (0, 1, 2)] == [
        _probe.FAST_MIN_SAVING
    ] * 3
    assert _probe.min_saving(lz4(3), big) == _probe.MIN_SAVING

    class NoLevel(zstd):
        level = None  # a plugin that keeps no integer level: its default

    assert _probe.min_saving(NoLevel(), big) == _probe.FAST_MIN_SAVING


def test_small_arrays_go_out_of_band_when_a_filter_pays_off():
    ramp = np.arange(50_000, dtype=np.int64)  # 400 KB: in band without a filter
    data = codecpickle.dumps(ramp, compress="zstd")
    assert _filter_ids(data) == {_filters.DELTA}
    noise = np.random.default_rng(1).integers(0, 256, 400_000, dtype=np.uint8)
    _, records = walk(codecpickle.dumps(noise, compress="zstd"))
    assert 0x02 not in {r.kind for r in records}  # nothing to gain: stays in band
    _, records = walk(codecpickle.dumps(ramp, compress="zstd", filters=None))
    assert 0x02 not in {r.kind for r in records}


def test_estimates_use_whole_elements_and_a_small_sample():
    calls = []

    class Recording(codecpickle.codecs.zstd.ZstdCodec):  # type: ignore[name-defined]
        def encode(self, data, itemsize=1):
            calls.append((memoryview(data).nbytes, itemsize))
            return super().encode(data, itemsize)

    raw = memoryview(np.sin(np.arange(MiB // 4) / 50.0).astype(np.float32)).cast("B")
    pool = _filters.ScratchPool(0)
    choice = _probe.choose(Recording(), raw, 4, _filters.candidates(4), pool)
    assert choice in _filters.candidates(4)
    assert len(calls) == 6  # the screen, then the whole sample
    screen = _probe.SAMPLE_PIECES * _probe.SCREEN_PIECE
    sample = _probe.SAMPLE_PIECES * _probe.SAMPLE_PIECE
    assert [size for size, _ in calls] == [screen] * 3 + [sample] * 3
    # The codec is told the element size only for unfiltered bytes.
    assert [hint for _, hint in calls] == [4, 1, 1, 4, 1, 1]


# -- the option ------------------------------------------------------------------


@pytest.mark.parametrize("bad", [1, True, "bitshuffle", "Shuffle", ["shuffle"], b"auto"])
def test_bad_filters_are_option_errors(bad, tmp_path):
    with pytest.raises(codecpickle.InvalidOptionError, match="filters"):
        codecpickle.dumps(np.zeros(10), compress="zstd", filters=bad)
    path = tmp_path / "x.cpkl"
    with pytest.raises(codecpickle.InvalidOptionError, match="'auto', None, 'shuffle'"):
        codecpickle.dump(np.zeros(10), path, compress="zstd", filters=bad)
    assert not path.exists()


@pytest.mark.parametrize("forced", ["shuffle", "delta"])
def test_a_forced_filter_needs_a_codec(forced):
    with pytest.raises(codecpickle.InvalidOptionError, match="compress"):
        codecpickle.dumps(np.zeros(10), filters=forced)
    for fine in ("auto", None):
        assert codecpickle.loads(codecpickle.dumps(np.zeros(10), filters=fine)).shape == (10,)


# -- format rules ------------------------------------------------------------------


def _reseal_header(stream: bytes, version: int) -> bytes:
    (meta_size,) = struct.unpack_from("<I", stream, 12)
    end = 16 + meta_size
    head = stream[:8] + struct.pack("<H", version) + stream[10:end]
    return head + struct.pack("<Q", xxhash.xxh3_64_intdigest(head, seed=0)) + stream[end + 8 :]


def _filtered_stream() -> tuple[bytes, list]:
    array = np.sin(np.arange(200_000) / 1e3)
    data = codecpickle.dumps(array, compress="zstd", chunk_size=CHUNK, filters="shuffle")
    _, records = walk(data)
    return data, records


def _loads_error(data: bytes) -> Exception:
    with pytest.raises(codecpickle.CodecPickleError) as info:
        codecpickle.loads(data)
    return info.value


def test_filter_bits_are_refused_in_version_1_streams():
    data, records = _filtered_stream()
    error = _loads_error(_reseal_header(data, 1))
    assert isinstance(error, codecpickle.CorruptDataError)
    assert isinstance(error, ValueError)
    # The element size in the payload header is reserved (0) in version 1.
    assert "reserved" in str(error)
    payload = next(r for r in records if r.kind == 0x02)
    patched = bytearray(_reseal_header(data, 1))
    patched[payload.offset + 2 : payload.offset + 4] = b"\0\0"
    error = _loads_error(bytes(patched))
    assert isinstance(error, codecpickle.CorruptDataError)
    assert "version 2" in str(error)


def _with_chunk_flags(data: bytes, records: list, flags: int) -> bytes:
    chunk = next(r for r in records if r.kind == 0x02).chunks[0]
    patched = bytearray(data)
    patched[chunk.offset + 1] = flags
    return bytes(patched)


@pytest.mark.parametrize("filter_id", [3, 4, 5, 6, 7])
def test_undefined_filter_ids_are_refused(filter_id):
    data, records = _filtered_stream()
    error = _loads_error(_with_chunk_flags(data, records, filter_id << 1))
    assert isinstance(error, codecpickle.CorruptDataError)
    assert "not defined" in str(error)


def test_filters_on_raw_chunks_and_high_flag_bits_are_refused():
    data, records = _filtered_stream()
    for flags in (0x03, 0x10, 0x80):
        error = _loads_error(_with_chunk_flags(data, records, flags))
        assert isinstance(error, codecpickle.CorruptDataError), flags


def test_filters_on_opcode_chunks_are_refused():
    data = codecpickle.dumps(list(range(100_000)), compress="zstd")
    _, records = walk(data)
    opcodes = next(r for r in records if r.kind == 0x01 and not r.stored_raw)
    patched = bytearray(data)
    patched[opcodes.offset + 1] = _filters.SHUFFLE << 1
    error = _loads_error(bytes(patched))
    assert isinstance(error, codecpickle.CorruptDataError)
    assert "opcode chunk" in str(error)


@pytest.mark.parametrize(("filters", "element_size"), [("shuffle", 1), ("delta", 3), ("delta", 0)])
def test_a_filter_undefined_for_the_element_size_is_refused(filters, element_size):
    array = np.sin(np.arange(200_000) / 1e3)
    data = codecpickle.dumps(array, compress="zstd", chunk_size=CHUNK, filters=filters)
    _, records = walk(data)
    payload = next(r for r in records if r.kind == 0x02)
    patched = bytearray(data)
    patched[payload.offset + 2 : payload.offset + 4] = struct.pack("<H", element_size)
    error = _loads_error(bytes(patched))
    assert isinstance(error, codecpickle.CorruptDataError)
    assert "element size" in str(error)


@pytest.mark.parametrize("change", ["filter", "element_size"])
def test_the_checksum_covers_the_filter_and_element_size(change):
    # Swapping shuffle for delta, or the element size for another valid one,
    # would decode to wrong bytes: the chunk checksum must catch it.
    data, records = _filtered_stream()
    payload = next(r for r in records if r.kind == 0x02)
    patched = bytearray(data)
    if change == "filter":
        for chunk in payload.chunks or ():
            patched[chunk.offset + 1] = _filters.DELTA << 1
    else:
        patched[payload.offset + 2 : payload.offset + 4] = struct.pack("<H", 4)
    error = _loads_error(bytes(patched))
    assert isinstance(error, codecpickle.ChecksumMismatchError)


def test_version_2_is_written_and_versions_1_and_2_are_read():
    assert fmt.VERSION == 2
    assert sorted(fmt.SUPPORTED_VERSIONS) == [1, 2]
    data = codecpickle.dumps(np.arange(10))
    assert data[8:10] == b"\x02\x00"


def test_corpus_benchmark_quick_run(tmp_path):
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "corpus.py"
    out = tmp_path / "corpus.json"
    run = subprocess.run(
        [sys.executable, str(script), "--quick", "--json", str(out)],
        capture_output=True, text=True, timeout=600, check=True,
    )
    results = json.loads(out.read_text())
    assert len(results["arrays"]) == 5
    assert results["summary"]["count"] == 5
    assert "synthetic sorted int64" in run.stdout
    for row in results["arrays"].values():
        assert set(row["methods"]) >= {"codecpickle", "zstd-3", "blosc2 default"}
        assert row["filters"]["best of 3"] >= row["filters"]["none"]


def test_corpus_speed_benchmark_quick_run(tmp_path):
    root = Path(__file__).resolve().parent.parent
    out = tmp_path / "speed.json"
    src = str(root / "src")
    table = subprocess.run(
        [sys.executable, str(root / "benchmarks" / "corpus_speed.py"), "--before", src,
         "--tree", f"same={src}", "--quick", "--only", "random_f64", "--json", str(out)],
        check=True, capture_output=True, text=True,
    ).stdout
    assert "| random_f64 |" in table
    assert "same/before dump speed" in table
    row = json.loads(out.read_text())["random_f64"]
    assert set(row) == {f"{tree} {op}" for tree in ("before", "same", "now")
                        for op in ("dump", "load")}
    assert all(case["seconds"] > 0 for case in row.values())
