"""The opcode scanner: what it finds in genuine pickles, and that damaged
or hostile opcode streams end in CorruptDataError, in linear time and
bounded memory, without importing or calling anything."""

from __future__ import annotations

import _compat_pickle
import collections
import contextlib
import datetime
import decimal
import fractions
import io
import pickle
import signal
import sys
import tracemalloc
import zoneinfo
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import codecpickle
from codecpickle._pickling import Pickler
from codecpickle._scan import ARRAY_CONSTRUCTORS, OpcodeScanner, scan_opcodes
from codecpickle._writer import ContainerWriter
from codecpickle.codecs import resolve_compress
from tests.test_fuzz import FUZZ, HANG_SECONDS, hang_guard  # noqa: F401 (its SIGALRM handler)

OBJECTS: list[Any] = [
    {"ints": list(range(50)), "text": "x" * 300, "nested": [(1, 2.5), {"a": None}]},
    collections.OrderedDict(a=1),
    collections.defaultdict(list, {"k": [1]}),
    collections.Counter("abracadabra"),
    datetime.datetime(2024, 1, 2, tzinfo=zoneinfo.ZoneInfo("UTC")),
    decimal.Decimal("1.5"),
    fractions.Fraction(1, 3),
    np.arange(12.0).reshape(3, 4),
    np.zeros(3, dtype=[("a", "<f8"), ("b", "O")]),
    np.ma.masked_array([1, 2, 3], [0, 1, 0]),
    np.float32(1.5),
]


class RecordingUnpickler(pickle.Unpickler):
    """The reference: the names a real unpickler asks find_class for."""

    def __init__(self, data: bytes, protocol: int) -> None:
        super().__init__(io.BytesIO(data))
        self.protocol = protocol
        self.names: list[str] = []

    def find_class(self, module: str, name: str) -> Any:
        # Recorded under the Python 3 name the stdlib maps a protocol 0-2
        # pickle's Python 2 spelling to (what loads check, and the scan reports).
        if self.protocol < 3:
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            else:
                module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        self.names.append(f"{module}.{name}")
        return super().find_class(module, name)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize("index", range(len(OBJECTS)))
def test_globals_are_those_the_unpickler_resolves(protocol: int, index: int) -> None:
    data = pickle.dumps(OBJECTS[index], protocol=protocol)
    reference = RecordingUnpickler(data, protocol)
    reference.load()
    found = scan_opcodes(data)
    direct = [ref.dotted for ref in found.globals if ref.opcode != "getattr"]
    assert direct == reference.names
    assert found.opcode_bytes == len(data)
    assert found.protocol == (protocol if protocol >= 2 else None)


def test_getattr_calls_name_the_attribute_as_a_global() -> None:
    found = scan_opcodes(pickle.dumps(zoneinfo.ZoneInfo("UTC"), protocol=5))
    assert [(ref.dotted, ref.opcode) for ref in found.globals] == [
        ("builtins.getattr", "STACK_GLOBAL"),
        ("zoneinfo.ZoneInfo", "STACK_GLOBAL"),
        ("zoneinfo.ZoneInfo._unpickle", "getattr"),
    ]


def test_stack_global_names_resolved_through_the_memo() -> None:
    # 'mod' and 'A' memoized, fetched back with BINGET / LONG_BINGET / GET.
    data = (
        b"\x80\x04\x8c\x03mod\x94\x8c\x01A\x94\x93\x94"  # mod.A, memo 0,1,2
        b"h\x00\x8c\x01B\x93"  # mod.B via BINGET 0
        b"j\x00\x00\x00\x00h\x01\x93"  # mod.A via LONG_BINGET 0, BINGET 1
        b"g0\ng1\n\x93"  # GET (text)
        b"\x87."
    )
    assert [ref.dotted for ref in scan_opcodes(data).globals] == [
        "mod.A", "mod.B", "mod.A", "mod.A"
    ]


def test_unresolvable_stack_global_is_counted_not_guessed() -> None:
    found = scan_opcodes(b"\x80\x04K\x01\x8c\x01x\x93.")
    assert found.globals == []
    assert found.unresolved == [("STACK_GLOBAL", 7)]


def test_extension_codes_are_reported_without_copyreg() -> None:
    found = scan_opcodes(b"\x80\x02\x82\x05\x83\x00\x01\x84\xff\xff\xff\x7f\x87.")
    assert found.extensions == [(5, 2), (256, 4), (2**31 - 1, 7)]
    with pytest.raises(codecpickle.CorruptDataError, match="not positive"):
        scan_opcodes(b"\x80\x02\x82\x00.")


def test_nothing_is_imported() -> None:
    data = b"cno_such_module_xyz\nThing\n(ino_such_module_abc\nOther\n\x86."
    found = scan_opcodes(data)
    assert [ref.dotted for ref in found.globals] == [
        "no_such_module_xyz.Thing", "no_such_module_abc.Other"
    ]
    assert "no_such_module_xyz" not in sys.modules


def _container_opcodes(obj: Any, compress: Any = None) -> tuple[bytes, list[int]]:
    """The opcode stream codecpickle writes for ``obj`` and the sizes of
    its out-of-band buffers."""
    sink = io.BytesIO()
    codec = resolve_compress(compress) if compress else None
    writer = ContainerWriter(sink, codec, chunk_size=1 << 20)
    opcodes: list[bytes] = []
    sizes: list[int] = []
    original_write, original_payload = writer.write, writer.write_payload

    def write(data: Any) -> Any:
        opcodes.append(bytes(data))
        return original_write(data)

    def write_payload(data: Any, itemsize: int = 1) -> Any:
        sizes.append(memoryview(data).nbytes)
        return original_payload(data, itemsize)

    writer.write = write  # type: ignore[method-assign]
    writer.write_payload = write_payload  # type: ignore[method-assign]
    Pickler(writer).dump(obj)
    return b"".join(opcodes), sizes


def test_array_calls_of_codecpickles_writer() -> None:
    arrays = {
        "c": np.arange(24.0).reshape(2, 3, 4),
        "f": np.asfortranarray(np.ones((5, 7), dtype=">i4")),
        "strided": np.arange(100, dtype=np.int16).reshape(10, 10)[:, ::3],
        "dt": np.zeros(4, dtype="M8[ms]"),
        "td": np.zeros(4, dtype="m8[5us]"),
        "struct": np.zeros(3, dtype=[("a", "<f8"), ("b", "u1")]),
        "text": np.array(["ab", "c"]),
        "scalar": np.array(3.5),
        "empty": np.zeros((0, 3), dtype=np.uint8),
    }
    opcodes, _ = _container_opcodes(arrays)
    found = scan_opcodes(opcodes)
    got = {(c.shape, c.dtype, c.order, c.buffer) for c in found.arrays}
    assert got == {
        ((2, 3, 4), "<f8", "C", 0),
        ((5, 7), ">i4", "F", 1),
        ((10, 4), "<i2", "C", 2),
        ((4,), "<M8[ms]", "C", 3),
        ((4,), "<m8[5us]", "C", 4),
        ((3,), "|V9 with fields a, b", "C", 5),
        ((2,), "<U2", "C", 6),
        ((), "<f8", "C", 7),
        ((0, 3), "|u1", "C", 8),
    }
    assert found.buffers == 9
    (constructor,) = {c.constructor for c in found.arrays}
    assert constructor in ARRAY_CONSTRUCTORS


def test_in_band_arrays_of_compressed_streams() -> None:
    opcodes, sizes = _container_opcodes({"small": np.arange(10, dtype=np.int32)}, "zstd")
    assert sizes == []
    (call,) = scan_opcodes(opcodes).arrays
    assert (call.shape, call.dtype, call.buffer, call.inband_bytes) == ((10,), "<i4", None, 40)


def test_numpys_own_protocol_5_reduction() -> None:
    buffers: list[Any] = []
    data = pickle.dumps(np.ones((2, 3), order="F"), protocol=5, buffer_callback=buffers.append)
    (call,) = scan_opcodes(data).arrays
    assert call.constructor.endswith("numeric._frombuffer")
    assert call.constructor in ARRAY_CONSTRUCTORS
    assert (call.shape, call.dtype, call.order, call.buffer) == ((2, 3), "<f8", "F", 0)


@pytest.mark.parametrize(
    ("descr", "expected"),
    [
        (b"\x8c\x03<f8", "<f8"),
        (b"(\x8c\x06struct(\x8c\x01aN\x8c\x03<f8K\x00t\x85K\x08\x89t", "|V8 with fields a"),
        (b"\x8c\x08subarray\x8c\x03<i4K\x02\x85\x87", "('<i4', (2,))"),
        (b"\x8c\x04meta\x8c\x03>u2)\x87", ">u2"),
    ],
)
def test_declarative_array_constructor(descr: bytes, expected: str) -> None:
    # The writer's declarative form: codecpickle._construct.array(shape,
    # descr, order, data) with the dtype as a plain description.
    data = (
        b"\x80\x05\x8c\x16codecpickle._construct\x8c\x05array\x93("
        b"K\x02K\x03\x86" + descr + b"\x8c\x01F\x97\x98tR."
    )
    (call,) = scan_opcodes(data).arrays
    assert call.constructor == "codecpickle._construct.array"
    assert (call.shape, call.dtype, call.order, call.buffer) == ((2, 3), expected, "F", 0)


def test_subarray_dtype_description() -> None:
    opcodes, _ = _container_opcodes(np.zeros(2, dtype=[("a", "<f4", (2, 3))]))
    (call,) = scan_opcodes(opcodes).arrays
    assert call.dtype == "|V24 with fields a"


# -- damaged and hostile streams ---------------------------------------------------


def _pieces(data: bytes, size: int = 7) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _scan_or_corrupt(data: bytes) -> None:
    signal.alarm(HANG_SECONDS)
    try:
        for chunks in ((data,), _pieces(data), _pieces(data, 1)):
            with contextlib.suppress(codecpickle.CorruptDataError):
                OpcodeScanner(chunks).run()
    finally:
        signal.alarm(0)


GENUINE = [pickle.dumps(obj, protocol=p) for obj in OBJECTS for p in (0, 2, 4, 5)]


def test_truncated_at_every_byte() -> None:
    data = pickle.dumps(OBJECTS[:6], protocol=5)
    for cut in range(len(data)):
        with pytest.raises(codecpickle.CorruptDataError):
            scan_opcodes(data[:cut])
    for cut in range(0, len(data), 13):
        with pytest.raises(codecpickle.CorruptDataError):
            OpcodeScanner(_pieces(data[:cut], 3)).run()


@FUZZ
@given(opcodes=st.sampled_from(GENUINE), data=st.data())
def test_mutated_streams_scan_or_fail_cleanly(opcodes: bytes, data: st.DataObject) -> None:
    mutated = bytearray(opcodes)
    for _ in range(data.draw(st.integers(1, 6))):
        position = data.draw(st.integers(0, len(mutated) - 1))
        mutated[position] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        del mutated[data.draw(st.integers(0, len(mutated) - 1)) :]
    _scan_or_corrupt(bytes(mutated))


@FUZZ
@given(body=st.binary(max_size=400))
def test_random_bytes(body: bytes) -> None:
    _scan_or_corrupt(b"\x80\x05" + body)


def _peak(chunks: Any) -> int:
    tracemalloc.start()
    try:
        with pytest.raises(codecpickle.CorruptDataError):
            OpcodeScanner(chunks).run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(
    "head",
    [
        b"\x8e" + (2**63).to_bytes(8, "little"),  # BINBYTES8
        b"\x96" + (2**64 - 1).to_bytes(8, "little"),  # BYTEARRAY8
        b"\x8d" + (2**62).to_bytes(8, "little"),  # BINUNICODE8
        b"X\xff\xff\xff\xff",  # BINUNICODE
        b"B\xff\xff\xff\xff",  # BINBYTES
        b"\x8b\xff\xff\xff\x7f",  # LONG4
        b"T\xff\xff\xff\x7f",  # BINSTRING
        b"\x95" + (2**63).to_bytes(8, "little") + b"N",  # FRAME
    ],
)
def test_huge_declared_sizes_allocate_nothing(head: bytes) -> None:
    # A few MiB of stream after a header declaring exabytes: skipped in
    # pieces, never allocated, and the stream ends before STOP.
    def chunks() -> Iterator[bytes]:
        yield b"\x80\x05" + head
        for _ in range(64):
            yield b"\0" * 65536

    assert _peak(chunks()) < 2 << 20


def test_long_text_lines_are_not_kept() -> None:
    def chunks() -> Iterator[bytes]:
        yield b"\x80\x02S'"
        for _ in range(256):
            yield b"a" * 65536

    assert _peak(chunks()) < 2 << 20


def test_deep_stacks_and_marks_cost_pointers_not_objects() -> None:
    count = 100_000
    for body in (b"(" * count, b"N" * count, b"N" + b"2" * count, b"]" + b"\x85" * count):
        data = b"\x80\x05" + body
        signal.alarm(HANG_SECONDS)
        try:
            peak = _peak(_pieces(data, 1 << 16))
        finally:
            signal.alarm(0)
        # A pointer a slot (plus list growth), or one small tuple an opcode
        # for TUPLE1: proportional to the stream, as an unpickler's memory is.
        assert peak < 64 * count, body[:2]


def test_memo_abuse_is_bounded() -> None:
    # Keys near 2**32 and ever-growing sparse keys stay sparse; MEMOIZE
    # thousands of times costs a pointer each.
    sparse = b"".join(b"Nr" + (2**32 - 1 - i * 7919).to_bytes(4, "little") for i in range(10_000))
    dense = b"N" + b"\x94" * 100_000
    for data in (sparse, dense):
        assert _peak(_pieces(b"\x80\x05" + data, 1 << 16)) < 40 * len(data)
    with pytest.raises(codecpickle.CorruptDataError, match="memo key 7 is not defined"):
        scan_opcodes(b"\x80\x05N\x94h\x07.")
    with pytest.raises(codecpickle.CorruptDataError, match="negative memo key"):
        scan_opcodes(b"Np-1\n.")
    with pytest.raises(codecpickle.CorruptDataError, match="negative memo key"):
        scan_opcodes(b"Ng-1\n.")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x80\x06N.", "unsupported pickle protocol"),
        (b"\xffN.", "invalid opcode"),
        (b".", "stack underflow"),
        (b"(.", "stack underflow"),
        (b"1.", "no MARK"),
        (b"(Nd.", "odd number of items for DICT"),
        (b"}(Nu.", "odd number of items for SETITEMS"),
        (b"Pabc\n.", "persistent ID"),
        (b"S'abc\n.", "must be quoted"),
        (b"Iabc\n.", "malformed argument"),
        (b"\x8c\x02\xff\xfe.", "malformed argument"),
        (b"(o.", "OBJ without a class"),
    ],
)
def test_malformed_streams(data: bytes, message: str) -> None:
    with pytest.raises(codecpickle.CorruptDataError, match=message):
        scan_opcodes(data)


class _Py2Named:
    """A user class, refused by restricted loads."""


@pytest.mark.parametrize("protocol", [0, 1, 2])
def test_python2_spellings_are_reported_as_loads_check_them(protocol: int) -> None:
    """Protocols 0-2 write ``__builtin__.set``; loads map it to
    ``builtins.set`` before checking, and the scan reports the same name."""
    data = pickle.dumps([{1, 2}, _Py2Named()], protocol=protocol)
    assert b"__builtin__" in data
    found = {ref.dotted for ref in scan_opcodes(data).globals}
    assert "builtins.set" in found
    assert not any(name.startswith("__builtin__.") for name in found)
    with pytest.raises(codecpickle.ForbiddenGlobalError) as refused:
        codecpickle.loads(data, safe=True)
    names = list(refused.value.names)
    assert f"{__name__}._Py2Named" in names
    assert "builtins.set" not in names  # admitted, under the name loads check
    assert not any(name.startswith("__builtin__.") for name in names)
