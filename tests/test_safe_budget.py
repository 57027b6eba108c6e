"""The work budget of restricted loads (``_budget.py``, ``_keys.py``): every
class of work a stream can ask for is counted against one budget, on every
path (codecpickle containers, plain pickles bare or compressed, joblib
files), so that loads stop in time proportional to their input.

The tests shrink the budget's floor, so that small streams reach it, and
assert what happens (refused with ``SizeLimitError``, or loaded), never
how long it takes (``benchmarks/safe_budget.py`` measures that).
"""

from __future__ import annotations

import bz2
import collections
import gzip
import io
import lzma
import pickle
import zlib
from typing import Any

import joblib
import lz4.frame
import numpy as np
import pytest
import zstandard

import codecpickle
from codecpickle import _budget, _construct, _restricted
from codecpickle._keys import MAX_KEY_NESTING, MAX_SHARED_HASH
from codecpickle._writer import ContainerWriter
from codecpickle.codecs import resolve_compress
from codecpickle.errors import CodecPickleError, CorruptDataError, SizeLimitError

FLOOR = 20_000


@pytest.fixture(autouse=True)
def small_floor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_budget, "MIN_WORK", FLOOR)


def container(opcodes: bytes, codec: str | None = None) -> bytes:
    out = io.BytesIO()
    writer = ContainerWriter(out, resolve_compress(codec), chunk_size=1 << 20)
    writer.write(opcodes)
    writer.finish()
    return out.getvalue()


WRAPPERS = {
    "container zstd": lambda ops: container(ops, "zstd"),
    "container stored": container,
    "pickle": lambda ops: ops,
    "pickle gzip": gzip.compress,
    "pickle zstd": lambda ops: zstandard.ZstdCompressor().compress(ops),
    "pickle xz": lzma.compress,
    "pickle bz2": bz2.compress,
    "pickle lz4": lz4.frame.compress,
    "joblib zlib": zlib.compress,
}

P4 = b"\x80\x04"
FLOODS = {
    "EMPTY_TUPLE POP": (P4, b")0", b"N."),
    "NONE POP": (P4, b"N0", b"N."),
    "MARK POP_MARK": (P4, b"(1", b"N."),
    "DUP": (P4 + b"N", b"2", b"."),
    "MEMOIZE": (P4 + b"N", b"\x94", b"."),
    "BINGET POP": (P4 + b"Nq\x00", b"h\x000", b"."),
    "EMPTY_LIST": (P4, b"]", b"."),
    "APPENDS with one huge mark": (P4 + b"](", b"N", b"e."),
    "SETITEMS with one huge mark": (P4 + b"}(", b"K\x01N", b"u."),
    "ADDITEMS with one huge mark": (P4 + b"\x8f(", b"K\x01", b"\x90."),
}


def flood(name: str, count: int) -> bytes:
    head, unit, tail = FLOODS[name]
    return head + unit * count + tail


UNCOMPRESSED = ("container stored", "pickle")


@pytest.mark.parametrize("wrapper", WRAPPERS.keys())
@pytest.mark.parametrize("name", FLOODS.keys())
def test_opcode_floods_stop_at_the_budget_on_every_path(name: str, wrapper: str) -> None:
    wrap = WRAPPERS[wrapper]
    data = wrap(flood(name, 4 * FLOOR))
    if wrapper in UNCOMPRESSED:
        # Opcodes of one byte or more: the input pays for them (4 units a byte).
        codecpickle.loads(data, safe=True)
    else:
        with pytest.raises(SizeLimitError, match="units of work"):
            codecpickle.loads(data, safe=True)
    # Within the budget, the same stream loads.
    codecpickle.loads(wrap(flood(name, FLOOR // 4)), safe=True)


def test_the_budget_grows_with_the_input_and_with_max_buffer_size() -> None:
    # Incompressible data in the stream pays for opcodes (4 units a byte).
    noise = np.random.default_rng(0).bytes(3 * FLOOR)
    padded = P4 + b"C" + b"\xff" + noise[:255] + b"0"
    padded += b"\x8e" + (len(noise)).to_bytes(8, "little") + noise + b"0"
    opcodes = padded + flood("NONE POP", 2 * FLOOR)[2:]
    assert codecpickle.loads(container(opcodes, "zstd"), safe=True) is None
    bomb = container(flood("NONE POP", 4 * FLOOR), "zstd")
    with pytest.raises(SizeLimitError):
        codecpickle.loads(bomb, safe=True)
    assert codecpickle.loads(bomb, safe=True, max_buffer_size=16 * FLOOR) is None
    assert codecpickle.loads(bomb) is None  # normal loads: no work budget


def test_data_bytes_in_the_stream_are_work_too() -> None:
    # 4 MiB of zero bytes (a few KB compressed): 16,384 units of copying.
    blob = P4 + b"\x8e" + (4 << 20).to_bytes(8, "little") + b"\0" * (4 << 20)
    opcodes = blob + b"0" + blob + b"0N."
    with pytest.raises(SizeLimitError):
        codecpickle.loads(container(opcodes, "zstd"), safe=True)
    raised = codecpickle.loads(container(opcodes, "zstd"), safe=True, max_buffer_size=8 << 20)
    assert raised is None


def test_marks_nest_at_most_max_mark_depth(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_restricted, "MAX_MARK_DEPTH", 100)
    with pytest.raises(SizeLimitError, match="MARKs"):
        # Checked every 256 opcodes.
        codecpickle.loads(container(P4 + b"(" * 400 + b"N."), safe=True)
    nested: list[Any] = []
    for _ in range(90):
        nested = [1, 2, nested]
    assert codecpickle.loads(codecpickle.dumps(nested), safe=True) == nested


# -- constructors a stream names again and again ------------------------------------------


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _pickled(value: Any) -> bytes:
    """``value``'s opcodes alone: no memo, frame, PROTO or STOP."""
    out = io.BytesIO()
    pickler = pickle.Pickler(out, protocol=3)
    pickler.fast = True
    pickler.dump(value)
    return out.getvalue()[2:-1]


def called(func: bytes, args: bytes, times: int) -> bytes:
    """``func(*args)`` ``times`` times, ``func`` and ``args`` stored once
    (compressed: the input pays for little)."""
    opcodes = P4 + func + b"\x94" + args + b"\x94" + b"h\x00h\x01R0" * times + b"N."
    return container(opcodes, "zstd")


BIG = list(range(2_000))


def _args(*values: Any) -> bytes:
    return _pickled(tuple(values))


AMPLIFIERS = {
    "list": (_global("builtins", "list"), _args(BIG)),
    "tuple": (_global("builtins", "tuple"), _args(BIG)),
    "set": (_global("builtins", "set"), _args(BIG)),
    "frozenset": (_global("builtins", "frozenset"), _args(BIG)),
    "dict": (_global("builtins", "dict"), _args(dict.fromkeys(BIG))),
    "OrderedDict": (_global("collections", "OrderedDict"), _args(dict.fromkeys(BIG))),
    "Counter": (_global("collections", "Counter"), _args(BIG)),
    "deque": (_global("collections", "deque"), _args(BIG)),
    "bytes from ints": (_global("builtins", "bytes"), _args([1] * 2_000)),
    "bytearray": (_global("builtins", "bytearray"), _args(b"\0" * 100_000)),
    "str from bytes": (_global("builtins", "str"), _args(b"a" * 100_000, "utf-8")),
    "int from text": (_global("builtins", "int"), _args("9" * 1_000)),
    "Decimal of an int": (_global("decimal", "Decimal"), _args(10**1_000)),
    "construct.array of a list": (
        _global("codecpickle._construct", "array"),
        _args((2_000,), "|O", "C", BIG),
    ),
    "construct.array made empty": (
        _global("codecpickle._construct", "array"),
        _args((4_000,), "|O", "C", None),
    ),
    "ZoneInfo": (_global("zoneinfo", "ZoneInfo"), _args("UTC")),
    "datetime": (_global("datetime", "datetime"), _args(2000, 1, 1)),
}


@pytest.mark.parametrize("name", AMPLIFIERS.keys())
def test_constructors_named_again_and_again_charge_their_work(name: str) -> None:
    func, args = AMPLIFIERS[name]
    with pytest.raises(SizeLimitError, match="units of work"):
        codecpickle.loads(called(func, args, 2_000), safe=True)
    codecpickle.loads(called(func, args, 1), safe=True)


def test_pandas_constructors_charge_their_work() -> None:
    pytest.importorskip("pandas")
    from codecpickle import PANDAS_GLOBALS, _construct_pandas

    frame = codecpickle.dumps(__import__("pandas").DataFrame({"a": [1, 2]}))
    assert codecpickle.loads(frame, allow=PANDAS_GLOBALS)["a"].tolist() == [1, 2]
    func = _global("codecpickle._construct_pandas", "range_index")
    assert _construct_pandas.range_index(0, 3, 1, None).tolist() == [0, 1, 2]
    with pytest.raises(SizeLimitError):
        codecpickle.loads(called(func, _args(0, 3, 1, None), 800), allow=PANDAS_GLOBALS)


class Settable:
    """A class a caller admits with allow=: BUILD sets its __dict__."""


def test_build_with_a_large_state_named_again_and_again_is_charged() -> None:
    state = _pickled({f"k{i}": i for i in range(2_000)})
    obj = _global(__name__, "Settable") + b")\x81"  # Settable.__new__(Settable)
    opcodes = P4 + state + b"\x94" + (obj + b"h\x00b0") * 50 + b"N."
    with pytest.raises(SizeLimitError):
        codecpickle.loads(container(opcodes, "zstd"), allow=[Settable])
    once = P4 + state + b"\x94" + obj + b"h\x00b."
    assert codecpickle.loads(container(once), allow=[Settable]).k5 == 5


def test_chain_map_state_named_again_and_again_is_charged() -> None:
    maps = _pickled({"maps": [{} for _ in range(2_000)]})
    chain = _global("collections", "ChainMap") + b")\x81"
    opcodes = P4 + maps + b"\x94" + (chain + b"h\x00b0") * 50 + b"N."
    with pytest.raises(SizeLimitError):
        codecpickle.loads(container(opcodes, "zstd"), safe=True)
    loaded = codecpickle.loads(codecpickle.dumps(collections.ChainMap({1: 2}, {3: 4})), safe=True)
    assert loaded == collections.ChainMap({1: 2}, {3: 4})


def test_numpy_state_translation_is_charged() -> None:
    # numpy's own pickle of a dtype, named many times (each a translation).
    body = pickle.dumps(np.dtype("f8"), protocol=4)[2:-1] + b"0"
    with pytest.raises(SizeLimitError):
        codecpickle.loads(container(P4 + body * 2_000 + b"N.", "zstd"), safe=True)
    assert codecpickle.loads(pickle.dumps(np.arange(3.0), protocol=4), safe=True).tolist() == [
        0.0,
        1.0,
        2.0,
    ]


@pytest.mark.parametrize("opcode", [b"L", b"I"])
def test_text_integers_are_charged_for_their_quadratic_parse(opcode: bytes) -> None:
    end = b"L\n" if opcode == b"L" else b"\n"
    one = opcode + b"9" * 4_000 + end + b"0"
    with pytest.raises(SizeLimitError):
        codecpickle.loads(container(one * 100 + b"N.", "zstd"), safe=True)
    assert codecpickle.loads(container(opcode + b"123" + end + b"."), safe=True) == 123


@pytest.mark.parametrize("key", [b"9" * 30, b"-1", b"", b"1_0"])
def test_text_memo_keys_are_small_non_negative_integers(key: bytes) -> None:
    with pytest.raises(CodecPickleError):
        codecpickle.loads(container(b"Np" + key + b"\n."), safe=True)
    assert codecpickle.loads(container(b"Np12\n0g12\n."), safe=True) is None


def test_joblib_inline_pickles_are_counted() -> None:
    # joblib writes an object array as a pickle inside its stream: its
    # opcodes count like the outer ones.
    buffer = io.BytesIO()
    items = np.empty(10_000, dtype=object)
    items[:] = [[1, 2] for _ in range(10_000)]  # 60,000 opcodes, compressed to little
    joblib.dump(items, buffer, compress=3)
    data = buffer.getvalue()
    with pytest.raises(SizeLimitError):
        codecpickle.loads(data, safe=True)
    assert len(codecpickle.loads(data, safe=True, max_buffer_size=1 << 20)) == 10_000


# -- keys ---------------------------------------------------------------------------------


def _dict_of(keys: list[Any]) -> bytes:
    return container(P4 + b"}(" + b"".join(_pickled(key) + b"N" for key in keys) + b"u.")


def _colliding_tuples(count: int) -> list[tuple[int, ...]]:
    # hash(-1) == hash(-2): tuples of them collide by the 2**n.
    width = count.bit_length()
    return [tuple(-1 - ((i >> bit) & 1) for bit in range(width)) for i in range(count)]


@pytest.mark.parametrize(
    "keys",
    [
        [i * ((1 << 61) - 1) for i in range(1, 2 * MAX_SHARED_HASH)],
        [complex(1000003.0 * i, -float(i)) for i in range(2, 2 * MAX_SHARED_HASH)],
        _colliding_tuples(2 * MAX_SHARED_HASH),
    ],
    ids=["ints", "complex", "tuples"],
)
def test_keys_sharing_one_hash_are_refused(keys: list[Any]) -> None:
    assert len({hash(key) for key in keys}) == 1
    with pytest.raises(CorruptDataError, match="same hash"):
        codecpickle.loads(_dict_of(keys), safe=True)
    as_set = container(P4 + b"\x8f(" + b"".join(_pickled(k) for k in keys) + b"\x90.")
    with pytest.raises(CorruptDataError, match="same hash"):
        codecpickle.loads(as_set, safe=True)
    # One at a time, as SETITEM: the same (the count is per container).
    one_by_one = P4 + b"}" + b"".join(_pickled(key) + b"Ns" for key in keys) + b"."
    with pytest.raises(CorruptDataError, match="same hash"):
        codecpickle.loads(container(one_by_one), safe=True)
    assert len(pickle.loads(pickle.dumps(dict.fromkeys(keys)))) == len(keys)  # normal: quadratic


def test_genuine_keys_load() -> None:
    obj = {
        "tuples": {(i, -i, str(i)): i for i in range(5_000)},
        "frozensets": {frozenset((i, i + 1)) for i in range(2_000)},
        "floats": {float(i) / 7: i for i in range(2_000)},
        "few collisions": dict.fromkeys(_colliding_tuples(MAX_SHARED_HASH // 2)),
        "big ints": {i * ((1 << 61) - 1) + i: None for i in range(2_000)},
    }
    for data in (codecpickle.dumps(obj), pickle.dumps(obj, protocol=2)):
        assert codecpickle.loads(data, safe=True, max_buffer_size=1 << 22) == obj


@pytest.mark.parametrize("site", [b"s", b"u", b"\x91", b"\x90", b"d"])
def test_keys_nested_too_deeply_are_refused_before_they_are_hashed(site: bytes) -> None:
    deep = b")" + b"\x85" * (MAX_KEY_NESTING + 1)
    opcodes = {
        b"s": P4 + b"}" + deep + b"Ns.",  # SETITEM
        b"u": P4 + b"}(" + deep + b"Nu.",  # SETITEMS
        b"\x91": P4 + b"(" + deep + b"\x91.",  # FROZENSET
        b"\x90": P4 + b"\x8f(" + deep + b"\x90.",  # ADDITEMS
        b"d": b"(" + deep + b"Nd.",  # DICT
    }[site]
    with pytest.raises(CorruptDataError, match=f"more than {MAX_KEY_NESTING} levels"):
        codecpickle.loads(container(opcodes, "zstd"), safe=True, max_buffer_size=1 << 22)
    shallow = b")" + b"\x85" * (MAX_KEY_NESTING - 1)
    assert codecpickle.loads(container(P4 + b"}" + shallow + b"Ns."), safe=True)


@pytest.mark.parametrize("opcode", [b"\x85", b"K\x01\x86", b"K\x01K\x02\x87", b"(K\x01t"])
def test_tuples_nested_too_deeply_are_refused_wherever_they_go(opcode: bytes) -> None:
    # hash() of a tuple nested a million levels deep crashes CPython: the
    # load refuses it even when it is only returned.
    if opcode == b"(K\x01t":  # TUPLE: its MARK comes first
        deep = b"(" * (MAX_KEY_NESTING + 1) + b")" + b"K\x01t" * (MAX_KEY_NESTING + 1)
    else:
        deep = b")" + opcode * (MAX_KEY_NESTING + 1)
    with pytest.raises(CorruptDataError, match=f"more than {MAX_KEY_NESTING} levels"):
        codecpickle.loads(container(P4 + deep + b"."), safe=True)
    nested: Any = ()
    for _ in range(400):  # as deep as the pickler's recursion goes
        nested = (nested, 1)
    assert codecpickle.loads(pickle.dumps(nested, protocol=2), safe=True) == nested
    func = _global("builtins", "tuple")
    tupled = P4 + func + b"]" + b")" + b"\x85" * (MAX_KEY_NESTING - 1) + b"a\x85R."
    with pytest.raises(CorruptDataError, match=f"more than {MAX_KEY_NESTING} levels"):
        codecpickle.loads(container(tupled), safe=True)


def test_a_large_key_hashed_again_and_again_is_charged() -> None:
    key = b"(" + b"K\x01" * 20_000 + b"t\x94"
    opcodes = P4 + b"}\x94" + key + b"0" + b"h\x00h\x01Ns0" * 200 + b"h\x00."
    with pytest.raises(SizeLimitError):
        codecpickle.loads(container(opcodes, "zstd"), safe=True)


def test_set_of_a_list_checks_its_items_as_keys() -> None:
    keys = [i * ((1 << 61) - 1) for i in range(1, 2 * MAX_SHARED_HASH)]
    with pytest.raises(CorruptDataError, match="same hash"):
        codecpickle.loads(called(_global("builtins", "set"), _args(keys), 1), safe=True)
    assert codecpickle.loads(_construct_round_trip(), safe=True).shape == (3,)


def _construct_round_trip() -> bytes:
    return codecpickle.dumps(_construct.array((3,), "<f8", "C", b"\0" * 24))
