"""Fuzzing damaged and hostile containers.

Every mutated input must either load data equal to the original (a change
that only hit padding, or bytes after the stream) or raise a
``CodecPickleError`` subclass: never another exception, a crash, a hang or
silently wrong data.  Each case goes through ``loads(bytes)``,
``load(BytesIO)``, ``load(path)`` and ``load(<non-seekable stream>)``, since
the reader takes different paths when it knows the input's size.

The CI run keeps to about a minute.  A longer run::

    CODECPICKLE_FUZZ_EXAMPLES=20000 python -m pytest tests/test_fuzz.py -s -p no:cacheprovider

(``CODECPICKLE_FUZZ_EXAMPLES`` is the number of examples per test; the
number of cases tried is printed at the end: about 208,000 in 12 minutes on
two cores.)  Crashes cannot be reported from inside pytest; for the
restricted-load cases, ``scripts/fuzz_restricted.py`` hunts them in worker
processes.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import random
import signal
import struct
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import codecpickle
from codecpickle import _format as fmt
from codecpickle._index import StreamIndex, read_index
from tests.conftest import assert_same
from tests.test_safe import container

CODECS = ["none", "zlib", "gzip", "bz2", "lzma", "lz4", "zstd"]
EXAMPLES = int(os.environ.get("CODECPICKLE_FUZZ_EXAMPLES", "400"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=EXAMPLES <= 400,  # CI runs are reproducible; long runs explore
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
HANG_SECONDS = 20

CASES_TRIED = 0


@dataclass(frozen=True)
class Sample:
    """One valid file, its object, and where its records start."""

    name: str
    obj: Any
    data: bytes
    records: tuple[tuple[int, int, int], ...]  # (offset, length, kind)
    header_size: int


def _objects(with_arrays: bool) -> Any:
    obj: dict[str, Any] = {"ints": list(range(300)), "text": "codecpickle " * 50, "t": (1.5, None)}
    if with_arrays:
        rng = np.random.default_rng(7)
        # >= 64 KiB so they travel out of band as payload records with a codec too.
        obj["smooth"] = np.linspace(0, 1, 10_000)
        obj["noise"] = rng.integers(0, 255, 70_000, dtype=np.uint8)
        obj["strided"] = np.arange(40_000, dtype=np.int32).reshape(200, 200)[:, ::2]
    return obj


# Pseudo kinds for the parts of a version-2 trailer, so they are fuzzed
# like records: the index and manifest bytes, and the footer.
TRAILER_BODY = 0x100
FOOTER = 0x101


def parse_records(data: bytes) -> tuple[int, list[tuple[int, int, int]]]:
    """Split a valid stream into (offset, length, kind) records, the
    trailer's body and footer last."""
    _, _, _, meta_size = fmt.HEADER_FIXED.unpack_from(data)
    pos = fmt.HEADER_FIXED.size + meta_size + fmt.CHECKSUM.size
    header_size = pos
    records = []
    while True:
        kind = data[pos]
        if kind in (fmt.KIND_OPCODES, fmt.KIND_DATA):
            _, _, _, stored = fmt.CHUNK_HEADER.unpack_from(data, pos)
            length = fmt.CHUNK_HEADER.size + stored + fmt.CHECKSUM.size
        elif kind == fmt.KIND_PAYLOAD:
            length = fmt.PAYLOAD_HEADER.size
        elif kind == fmt.KIND_RAW_PAYLOAD:
            _, pad, _, size = fmt.RAW_PAYLOAD_HEADER.unpack_from(data, pos)
            length = fmt.RAW_PAYLOAD_HEADER.size + pad + size + fmt.CHECKSUM.size
        elif kind == fmt.KIND_END:
            length = fmt.END_RECORD_V2.size + fmt.CHECKSUM.size
        else:
            raise AssertionError(f"unknown kind {kind} at {pos}")
        records.append((pos, length, kind))
        pos += length
        if kind == fmt.KIND_END:
            footer = len(data) - fmt.FOOTER.size
            records.append((pos, footer - pos, TRAILER_BODY))
            records.append((footer, fmt.FOOTER.size, FOOTER))
            return header_size, records


def _build_samples() -> list[Sample]:
    samples = []
    for codec in CODECS:
        for with_arrays in (False, True):
            obj = _objects(with_arrays)
            compress = None if codec == "none" else codec
            data = codecpickle.dumps(obj, compress=compress, chunk_size=fmt.MIN_CHUNK_SIZE * 4)
            header_size, records = parse_records(data)
            name = f"{codec}-{'arrays' if with_arrays else 'plain'}"
            samples.append(Sample(name, obj, data, tuple(records), header_size))
    return samples


SAMPLES = _build_samples()


class NonSeekable(io.RawIOBase):
    """Like a pipe: readable, no fileno, no seek, no tell, short reads."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self._pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        # Short reads, as a pipe gives them.
        count = min(len(buffer), 7919, len(self._data) - self._pos)
        buffer[:count] = self._data[self._pos : self._pos + count]
        self._pos += count
        return count

    def seekable(self) -> bool:
        return False


def _via_path(data: bytes) -> Any:
    with tempfile.NamedTemporaryFile(suffix=".cpkl", delete=False) as handle:
        handle.write(data)
    try:
        return codecpickle.load(handle.name, threads=2)
    finally:
        os.unlink(handle.name)


def _lazy(data: bytes) -> Any:
    """A lazy load, every lazy array then read whole (the samples are dicts
    of arrays, lists and tuples)."""

    def read(value: Any) -> Any:
        if isinstance(value, codecpickle.LazyArray):
            return np.asarray(value)
        if type(value) is dict:
            return {k: read(v) for k, v in value.items()}
        return value

    with codecpickle.open(io.BytesIO(data)) as file:
        return read(file.load(lazy=True))


LOADERS: dict[str, Callable[[bytes], Any]] = {
    "loads": lambda data: codecpickle.loads(data, threads=1),
    "BytesIO": lambda data: codecpickle.load(io.BytesIO(data), threads=1),
    "path": _via_path,
    "stream": lambda data: codecpickle.load(NonSeekable(data), threads=1),
    "lazy": _lazy,
}


@pytest.fixture(autouse=True, scope="module")
def report_cases() -> Iterator[None]:
    yield
    # Past pytest's capture, so that a long run reports its count.
    print(
        f"\ntest_fuzz: {CASES_TRIED} damaged inputs tried, each through up to "
        f"{len(LOADERS)} loaders; none loaded wrong data or raised a foreign error",
        file=sys.__stderr__,
    )


@pytest.fixture(autouse=True)
def hang_guard() -> Iterator[None]:
    def on_alarm(signum: int, frame: Any) -> None:
        raise AssertionError(f"a load hung for {HANG_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# The lazy loader reads through the index: it joins the mutations that may
# reach the index or the chunk tables (flips, size fields, trailers).
EAGER = ("loads", "BytesIO", "path", "stream")
WITH_LAZY = (*EAGER, "lazy")


def check(sample: Sample, data: bytes, loaders: tuple[str, ...] = EAGER) -> None:
    """The fuzz oracle: equal data or a CodecPickleError, through every loader."""
    global CASES_TRIED
    CASES_TRIED += 1
    for name in loaders:
        signal.alarm(HANG_SECONDS)
        try:
            result = LOADERS[name](data)
        except codecpickle.CodecPickleError:
            continue
        except Exception as exc:  # the property under test
            raise AssertionError(
                f"{sample.name} via {name}: {type(exc).__name__} is not a CodecPickleError"
            ) from exc
        finally:
            signal.alarm(0)
        assert_same(result, sample.obj, f"{sample.name} via {name}")
    check_index(sample, data)


def _index_within(index: StreamIndex, size: int) -> None:
    """Everything an index points at lies inside the input."""
    assert 0 <= index.offset < index.end_offset < index.end <= size
    for chunk in index.opcode_chunks:
        assert index.offset < chunk.offset < chunk.end <= index.end_offset
    for payload in index.payloads:
        assert index.offset < payload.offset
        assert payload.offset + payload.record_size <= index.end_offset
        for chunk in payload.chunks:
            assert payload.offset < chunk.offset < chunk.end <= index.end_offset
        if payload.data_offset is not None:
            assert payload.data_offset + payload.raw_size <= index.end_offset


def check_index(sample: Sample, data: bytes) -> None:
    """The index oracle: reading a damaged file's index gives an index that
    stays inside the input, or a CodecPickleError; never another error."""
    for method in ("auto", "scan"):
        signal.alarm(HANG_SECONDS)
        try:
            index = read_index(data, method=method)
        except codecpickle.CodecPickleError:
            continue
        except Exception as exc:  # the property under test
            raise AssertionError(
                f"{sample.name} index ({method}): {type(exc).__name__} is not a CodecPickleError"
            ) from exc
        finally:
            signal.alarm(0)
        _index_within(index, len(data))


samples = st.sampled_from(SAMPLES)


def test_samples_load() -> None:
    for sample in SAMPLES:
        check(sample, sample.data, WITH_LAZY)
        assert len(sample.records) > (3 if "arrays" in sample.name else 1)


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.name)
def test_truncated_at_every_record_boundary(sample: Sample) -> None:
    cuts = {0, 1, len(fmt.MAGIC), sample.header_size - 1, sample.header_size}
    for offset, length, _ in sample.records:
        cuts.update({offset, offset + 1, offset + length - 1})
    for cut in sorted(cuts):
        if cut < len(sample.data):
            check(sample, sample.data[:cut], ("loads", "BytesIO", "stream"))


@FUZZ
@given(sample=samples, data=st.data())
def test_truncated_at_random_offsets(sample: Sample, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(sample.data) - 1))
    check(sample, sample.data[:cut])


@FUZZ
@given(sample=samples, data=st.data())
def test_single_bit_flips(sample: Sample, data: st.DataObject) -> None:
    position = data.draw(st.integers(0, len(sample.data) - 1))
    bit = data.draw(st.integers(0, 7))
    mutated = bytearray(sample.data)
    mutated[position] ^= 1 << bit
    check(sample, bytes(mutated), WITH_LAZY)


@FUZZ
@given(sample=samples, data=st.data())
def test_burst_flips(sample: Sample, data: st.DataObject) -> None:
    start = data.draw(st.integers(0, len(sample.data) - 1))
    noise = data.draw(st.binary(min_size=1, max_size=64))
    mutated = bytearray(sample.data)
    for index, byte in enumerate(noise[: len(mutated) - start]):
        mutated[start + index] ^= byte or 0xFF
    check(sample, bytes(mutated), WITH_LAZY)


HUGE = [0, 1, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**40, 2**63 - 1, 2**63, 2**64 - 1]


def _size_fields(kind: int) -> list[tuple[int, str]]:
    """(offset within the record, struct format) of a record's size fields."""
    if kind in (fmt.KIND_OPCODES, fmt.KIND_DATA):
        return [(2, "<I"), (6, "<I")]  # raw size, stored size
    if kind in (fmt.KIND_PAYLOAD, fmt.KIND_RAW_PAYLOAD):
        return [(4, "<Q")]
    if kind == FOOTER:
        return [(0, "<Q"), (8, "<I"), (12, "<I")]  # stream, index, manifest sizes
    if kind == TRAILER_BODY:
        return [(0, "<B"), (1, "<H"), (2, "<I")]  # varints of the index's head
    # END: payloads, units, opcode bytes, trailer size
    return [(4, "<I"), (8, "<I"), (12, "<Q"), (20, "<Q")]


@FUZZ
@given(sample=samples, data=st.data())
def test_size_fields_set_to_hostile_values(sample: Sample, data: st.DataObject) -> None:
    offset, _, kind = data.draw(st.sampled_from(sample.records))
    field, layout = data.draw(st.sampled_from(_size_fields(kind)))
    limit = 2 ** (8 * struct.calcsize(layout)) - 1
    value = data.draw(st.sampled_from([v for v in HUGE if v <= limit]) | st.integers(0, limit))
    mutated = bytearray(sample.data)
    struct.pack_into(layout, mutated, offset + field, value)
    check(sample, bytes(mutated), WITH_LAZY)


FILTERED = [s for s in SAMPLES if any(kind == fmt.KIND_PAYLOAD for _, _, kind in s.records)]


@FUZZ
@given(sample=st.sampled_from(FILTERED), data=st.data())
def test_filter_fields_set_to_any_value(sample: Sample, data: st.DataObject) -> None:
    """A chunk's flags byte (filter bits 1-3) and a payload's element size,
    both of which decide how bytes are unfiltered, set to anything."""
    chunks = [r for r in sample.records if r[2] in (fmt.KIND_DATA, fmt.KIND_OPCODES)]
    payloads = [r for r in sample.records if r[2] == fmt.KIND_PAYLOAD]
    mutated = bytearray(sample.data)
    if data.draw(st.booleans()):
        offset, _, _ = data.draw(st.sampled_from(chunks))
        mutated[offset + 1] = data.draw(st.integers(0, 255))
    else:
        offset, _, _ = data.draw(st.sampled_from(payloads))
        size = data.draw(st.sampled_from([0, 1, 2, 3, 4, 5, 8, 12, 16, 64, 65535])
                         | st.integers(0, 65535))
        struct.pack_into("<H", mutated, offset + 2, size)
    check(sample, bytes(mutated))


@FUZZ
@given(sample=samples, data=st.data())
def test_header_metadata_size_field(sample: Sample, data: st.DataObject) -> None:
    value = data.draw(
        st.sampled_from([0, 1, fmt.MAX_META_SIZE, 2**32 - 1]) | st.integers(0, 2**32 - 1)
    )
    mutated = bytearray(sample.data)
    struct.pack_into("<I", mutated, 12, value)
    check(sample, bytes(mutated))


def _rewrite_header(sample: Sample, meta: Any, fix_checksum: bool) -> bytes:
    body = json.dumps(meta).encode() if not isinstance(meta, bytes) else meta
    head = fmt.HEADER_FIXED.pack(fmt.MAGIC, fmt.VERSION, 0, len(body)) + body
    old_checksum = sample.data[sample.header_size - fmt.CHECKSUM.size : sample.header_size]
    checksum = fmt.CHECKSUM.pack(fmt.checksum(head, 0)) if fix_checksum else old_checksum
    return head + checksum + sample.data[sample.header_size :]


_PARAMS = st.one_of(
    st.just({}),
    st.fixed_dictionaries({"level": st.integers(-(2**70), 2**70)}),
    st.fixed_dictionaries({"level": st.sampled_from(["3", None, 1.5, [], True])}),
    st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3),
    st.sampled_from([[], "x", 3, None]),
)


@FUZZ
@given(sample=samples, data=st.data())
def test_codec_names_and_params_swapped_or_garbled(sample: Sample, data: st.DataObject) -> None:
    meta = json.loads(sample.data[fmt.HEADER_FIXED.size : sample.header_size - fmt.CHECKSUM.size])
    name = data.draw(
        st.sampled_from([*CODECS, "brotli", "nope", "", "ZSTD", "zstd\x00"]) | st.text(max_size=12)
    )
    meta["codec"] = name
    if data.draw(st.booleans()):
        meta["params"] = data.draw(_PARAMS)
    if data.draw(st.booleans()):
        meta["chunk_size"] = data.draw(st.sampled_from([0, -1, 2**31, fmt.MAX_CHUNK_SIZE, "4096"]))
    if data.draw(st.booleans()):
        meta["provider"] = data.draw(st.sampled_from([None, "x", {"distribution": 3}]))
    fix = data.draw(st.booleans())
    check(sample, _rewrite_header(sample, meta, fix_checksum=fix), ("loads", "stream"))


@FUZZ
@given(sample=samples, data=st.data())
def test_header_metadata_garbled(sample: Sample, data: st.DataObject) -> None:
    body = data.draw(
        st.binary(min_size=1, max_size=200)
        | st.sampled_from([b"[]", b"null", b'{"codec": 1}', b"{", b'"zstd"', b"\xff\xfe"])
    )
    check(sample, _rewrite_header(sample, body, fix_checksum=True), ("loads", "stream"))


@FUZZ
@given(sample=samples, data=st.data())
def test_records_reordered_or_duplicated(sample: Sample, data: st.DataObject) -> None:
    pieces = [sample.data[o : o + n] for o, n, _ in sample.records]
    operation = data.draw(st.sampled_from(["swap", "duplicate", "drop", "move"]))
    i = data.draw(st.integers(0, len(pieces) - 1))
    j = data.draw(st.integers(0, len(pieces) - 1))
    if operation == "swap":
        pieces[i], pieces[j] = pieces[j], pieces[i]
    elif operation == "duplicate":
        pieces.insert(j, pieces[i])
    elif operation == "drop":
        del pieces[i]
    else:
        pieces.insert(j, pieces.pop(i))
    check(sample, sample.data[: sample.header_size] + b"".join(pieces))


@FUZZ
@given(sample=samples, tail=st.binary(min_size=1, max_size=100))
def test_trailing_garbage(sample: Sample, tail: bytes) -> None:
    # load() reads exactly one stream and leaves the rest; loads() refuses
    # bytes after the END record.
    with pytest.raises(codecpickle.CorruptDataError, match="trailing"):
        codecpickle.loads(sample.data + tail)
    check(sample, sample.data + tail, ("BytesIO", "stream"))


@FUZZ
@given(sample=samples, seed=st.integers(0, 2**32 - 1))
def test_random_splices(sample: Sample, seed: int) -> None:
    # Bytes copied from elsewhere in the file (a sector written to the wrong
    # place): plausible-looking records in the wrong position.
    rng = random.Random(seed)
    size = len(sample.data)
    length = rng.randint(1, 256)
    src, dst = rng.randrange(size), rng.randrange(size)
    mutated = bytearray(sample.data)
    mutated[dst : dst + length] = sample.data[src : src + length]
    check(sample, bytes(mutated))


# -- crafted trailers (checksums made valid again) ------------------------------


def _reseal(data: bytearray, body_start: int) -> bytes:
    """Recompute the footer's and the trailer body's checksums after the
    footer or the body was changed, keeping the bytes' layout."""
    footer = len(data) - fmt.FOOTER.size
    stream_size, index_size, manifest_size, _, _, magic = fmt.FOOTER.unpack_from(data, footer)
    body = bytes(data[body_start:footer])
    fields = fmt.FOOTER.pack(
        stream_size, index_size, manifest_size, fmt.checksum(body, stream_size), 0, magic
    )
    data[footer : footer + fmt.FOOTER_CHECKED] = fields[: fmt.FOOTER_CHECKED]
    data[footer + fmt.FOOTER_CHECKED : footer + 32] = fmt.CHECKSUM.pack(
        fmt.checksum(fields[: fmt.FOOTER_CHECKED], 0)
    )
    return bytes(data)


def _trailer_start(sample: Sample) -> int:
    return next(o for o, _, kind in sample.records if kind == TRAILER_BODY)


@FUZZ
@given(sample=samples, data=st.data())
def test_crafted_trailer_bodies(sample: Sample, data: st.DataObject) -> None:
    # Any index bytes with valid checksums: readers of the index, and
    # loads, must stay inside the file and allocate nothing beyond it.
    body_start = _trailer_start(sample)
    mutated = bytearray(sample.data)
    index_size = fmt.FOOTER.unpack_from(mutated, len(mutated) - fmt.FOOTER.size)[1]
    for _ in range(data.draw(st.integers(1, 6))):
        position = body_start + data.draw(st.integers(0, index_size - 1))
        mutated[position] = data.draw(
            st.sampled_from([0x00, 0x01, 0x02, 0x03, 0x7F, 0x80, 0xFF]) | st.integers(0, 255)
        )
    check(sample, _reseal(mutated, body_start), WITH_LAZY)


@FUZZ
@given(sample=samples, data=st.data())
def test_crafted_footers(sample: Sample, data: st.DataObject) -> None:
    body_start = _trailer_start(sample)
    mutated = bytearray(sample.data)
    field, layout = data.draw(st.sampled_from(_size_fields(FOOTER)))
    limit = 2 ** (8 * struct.calcsize(layout)) - 1
    value = data.draw(st.sampled_from([v for v in HUGE if v <= limit]) | st.integers(0, limit))
    struct.pack_into(layout, mutated, len(mutated) - fmt.FOOTER.size + field, value)
    check(sample, _reseal(mutated, body_start), WITH_LAZY)


# -- hostile opcode streams in valid containers (restricted loads) ------------

_OPCODE_OBJECTS = [
    _objects(False),
    {"a": np.arange(50, dtype=np.float32), "m": np.ma.masked_array([1, 2, 3], [0, 1, 0])},
    [np.array([1, "x", None], dtype=object), np.datetime64("2020-01-01"), complex(1, 2)],
    # numpy's own reductions with the most state for BUILD to carry
    # (protocol 3 and up: earlier ones spell bytes through _codecs.encode).
    {
        "record": np.zeros(2, dtype=[("a", "O"), ("b", ">f8", (2,)), ("c", "M8[ms]")]),
        "masked": np.ma.masked_array(np.array([1, "x"], dtype=object), mask=[0, 1]),
        "titled": np.dtype({"names": ["x"], "formats": ["<i4"], "titles": ["X"]}),
        "scalar": np.zeros(1, dtype=[("a", "O"), ("b", "u1")])[0],
        "strings": np.array(["a", "bb"], dtype=np.dtypes.StringDType()),
    },
]
_OPCODES = [
    pickle.dumps(obj, protocol=protocol)
    for index, obj in enumerate(_OPCODE_OBJECTS)
    for protocol in ((0, 2, 5) if index < 3 else (3, 4, 5))
]


@FUZZ
@given(opcodes=st.sampled_from(_OPCODES), data=st.data())
def test_mutated_opcodes_under_restricted_load(opcodes: bytes, data: st.DataObject) -> None:
    # The checksums are valid, so the damage reaches the unpickler itself:
    # a restricted load must still end in a value or a CodecPickleError.
    global CASES_TRIED
    CASES_TRIED += 1
    mutated = bytearray(opcodes)
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(mutated) - 1))
        mutated[position] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        del mutated[data.draw(st.integers(0, len(mutated) - 1)) :]
    stream = container(bytes(mutated))
    for load in (
        lambda: codecpickle.loads(stream, safe=True),
        lambda: codecpickle.load(NonSeekable(stream), safe=True),
    ):
        signal.alarm(HANG_SECONDS)
        try:
            load()
        except codecpickle.CodecPickleError:
            pass
        finally:
            signal.alarm(0)


def test_restricted_crash_hunt_script_runs_clean() -> None:
    # scripts/fuzz_restricted.py runs each case in a worker process that
    # may die; a short run must find nothing on the current code.
    script = Path(__file__).resolve().parent.parent / "scripts" / "fuzz_restricted.py"
    for extra in ([], ["--pandas"]):
        proc = subprocess.run(
            [sys.executable, str(script), "--count", "400", "--workers", "2", *extra],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert "400 cases (seeds 0..399): 0 crashes, 0 foreign exceptions" in proc.stdout
