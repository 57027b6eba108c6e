"""The work budget of restricted loads, measured: genuine workloads load at
default settings, crafted inputs under 1 MB stop (load or refuse) quickly.

    python benchmarks/safe_budget.py [--only genuine|crafted] [--match TEXT] [--quick]

For each case it prints the input size, the outcome (``loaded`` or the error
class), the seconds the restricted load took, and the work units it spent
(``_budget.py``; the budget is at least ``MIN_WORK``).  Crafted cases
are floods of the cheapest and the costliest opcodes, as codecpickle
containers (stored and zstd), plain pickle files (bare and through every
compression wrapper, joblib's among them), and the amplifiers a stream can
name many times for free: constructors given one large container, text
integers at the digit limit, time zones, colliding and deeply nested keys.
"""

from __future__ import annotations

import argparse
import bz2
import gc
import gzip
import io
import lzma
import pickle
import struct
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import workloads

import codecpickle
from codecpickle import _restricted
from codecpickle._writer import ContainerWriter
from codecpickle.codecs import resolve_compress

ROOT = Path(__file__).resolve().parent.parent
MAX_INPUT = 1 << 20  # crafted inputs stay under 1 MB

# -- measuring -------------------------------------------------------------------------

_spent: list[int] = []
_load = _restricted.RestrictedUnpickler.load


def _recording_load(self: Any) -> Any:
    try:
        return _load(self)
    finally:
        _spent.append(self.meter.spent)


_restricted.RestrictedUnpickler.load = _recording_load  # type: ignore[method-assign]


def run(name: str, data: bytes, **options: Any) -> None:
    gc.collect()
    _spent.clear()
    start = time.perf_counter()
    try:
        codecpickle.loads(data, **options)
        outcome = "loaded"
    except codecpickle.CodecPickleError as exc:
        outcome = f"{type(exc).__name__}"
    elapsed = time.perf_counter() - start
    units = f"{_spent[-1]:,}" if _spent else "-"
    print(f"| {name} | {len(data):,} | {outcome} | {elapsed:.2f} | {units} |", flush=True)


# -- wrapping opcode streams -------------------------------------------------------------


def container(opcodes: bytes, codec: str | None) -> bytes:
    out = io.BytesIO()
    writer = ContainerWriter(out, resolve_compress(codec), chunk_size=1 << 22)
    for start in range(0, len(opcodes), 1 << 22):
        writer.write(opcodes[start : start + (1 << 22)])
    writer.finish()
    return out.getvalue()


WRAPPERS: dict[str, Callable[[bytes], bytes]] = {
    "container zstd": lambda ops: container(ops, "zstd"),
    "container stored": lambda ops: container(ops, None),
    "pickle": lambda ops: ops,
    "pickle gzip": gzip.compress,
    "pickle zstd": lambda ops: __import__("zstandard").ZstdCompressor().compress(ops),
    "pickle xz": lzma.compress,
    "pickle bz2": bz2.compress,
    "pickle lz4": lambda ops: __import__("lz4.frame").frame.compress(ops),
    "joblib zlib": lambda ops: zlib.compress(ops),
}


def fit(wrap: Callable[[bytes], bytes], head: bytes, unit: bytes, tail: bytes) -> bytes:
    """``head + unit * n + tail`` wrapped, with n as large as keeps the
    result under 1 MB (at most 8 Mi units or 64 MiB: the budget stops
    them sooner)."""
    count = max(1, min(1 << 23, (64 << 20) // len(unit)))
    while True:
        data = wrap(head + unit * count + tail)
        if len(data) < MAX_INPUT:
            return data
        # Wrapped sizes grow about linearly with the count.
        count = max(1, min(count - 1, int(count * MAX_INPUT / len(data) * 0.95)))


# -- crafted streams ---------------------------------------------------------------------

P4 = b"\x80\x04"
FLOODS = {
    "EMPTY_TUPLE POP": (P4, b")0", b"N."),
    "NONE POP": (P4, b"N0", b"N."),
    "MARK POP_MARK": (P4, b"(1", b"N."),
    "MARK": (P4, b"(", b"N."),
    "DUP": (P4 + b"N", b"2", b"."),
    "MEMOIZE": (P4 + b"N", b"\x94", b"."),
    "BINGET POP": (P4 + b"Nq\x00", b"h\x000", b"."),
    "APPENDS one huge mark": (P4 + b"](", b"N", b"e."),
    "LONG text at the digit limit": (b"", b"L" + b"9" * 4299 + b"L\n0", b"N."),
    "INT text": (b"", b"I" + b"9" * 4299 + b"\n0", b"N."),
}


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _memo_call(func: bytes, args: bytes) -> tuple[bytes, bytes, bytes]:
    """A stream that memoizes ``func`` and its ``args`` tuple once, then
    calls it again and again: head, repeated unit, tail."""
    head = P4 + func + b"\x94" + args + b"\x94"  # memo 0: func, 1: args
    return head, b"h\x00h\x01R0", b"N."


def _pickled(value: Any) -> bytes:
    """The opcodes of ``value`` alone: no memo, no frame, no PROTO or STOP."""
    out = io.BytesIO()
    pickler = pickle.Pickler(out, protocol=3)
    pickler.fast = True
    pickler.dump(value)
    return out.getvalue()[2:-1]


def _big_list(n: int) -> bytes:
    return b"](" + b"K\x01" * n + b"e"


AMPLIFIERS: dict[str, tuple[bytes, bytes, bytes]] = {
    "list(one 100k-item list)": _memo_call(
        _global("builtins", "list"), b"(" + _big_list(100_000) + b"t"
    ),
    "set(one 100k-item list)": _memo_call(
        _global("builtins", "set"), b"(" + _big_list(100_000) + b"t"
    ),
    "construct.array(object list of 100k)": _memo_call(
        _global("codecpickle._construct", "array"),
        b"(" + _pickled((100_000,)) + _pickled("|O") + _pickled("C") + _big_list(100_000) + b"t",
    ),
    "construct.array(1M Nones)": _memo_call(
        _global("codecpickle._construct", "array"),
        b"(" + _pickled((1_000_000,)) + _pickled("|O") + _pickled("C") + b"Nt",
    ),
    "int(4,300 digits)": _memo_call(_global("builtins", "int"), _pickled(("9" * 4300,))),
    "Decimal(int of 4,300 digits)": _memo_call(
        _global("decimal", "Decimal"), _pickled((10**4299,))
    ),
    "ZoneInfo._unpickle, uncached": _memo_call(
        _global("builtins", "getattr")
        + _global("zoneinfo", "ZoneInfo")
        + _pickled("_unpickle")
        + b"\x86R",
        _pickled(("Europe/Paris", 0)),
    ),
    "bytearray(1 MiB bytes)": _memo_call(
        _global("builtins", "bytearray"),
        b"(B" + struct.pack("<I", 1 << 20) + b"\0" * (1 << 20) + b"t",
    ),
}


def _colliding_ints(n: int) -> bytes:
    modulus = (1 << 61) - 1
    keys = b"".join(b"\x8a\x0b" + (i * modulus).to_bytes(11, "little") + b"N" for i in range(1, n))
    return P4 + b"}(" + keys + b"u."


def _colliding_complex(n: int) -> bytes:
    # hash(complex(x, y)) = hash(x) + 1000003 * hash(y): all 0 here.
    func = _global("builtins", "complex") + b"\x940"
    keys = b"".join(b"h\x00" + _pickled((1000003.0 * i, -float(i))) + b"RN" for i in range(1, n))
    return P4 + func + b"}(" + keys + b"u."


def _deep_tuple_key(levels: int) -> bytes:
    return P4 + b"})" + b"\x85" * levels + b"Ns."


def _big_tuple_key_reused(size: int) -> tuple[bytes, bytes, bytes]:
    key = b"(" + b"K\x01" * size + b"t\x94"
    return P4 + b"}\x94" + key + b"0", b"h\x00h\x01Ns0", b"h\x00."


def crafted(quick: bool, match: str) -> None:
    wrappers = dict(list(WRAPPERS.items())[:3]) if quick else WRAPPERS
    print("| crafted input | bytes | outcome | seconds | work units |")
    print("|---|---|---|---|---|")
    for name, (head, unit, tail) in FLOODS.items():
        for how, wrap in wrappers.items():
            label = f"{name}, {how}"
            if match in label:
                run(label, fit(wrap, head, unit, tail), safe=True)
    for name, (head, unit, tail) in AMPLIFIERS.items():
        for how in ("container zstd", "pickle gzip"):
            label = f"{name}, {how}"
            if match in label:
                run(label, fit(WRAPPERS[how], head, unit, tail), safe=True)
    extra = {
        "60,000 int keys of one hash, pickle": lambda: _colliding_ints(60_000),
        "20,000 complex keys of one hash, pickle": lambda: _colliding_complex(20_000),
        "key tuple nested 2M deep, container zstd": lambda: container(
            _deep_tuple_key(2_000_000), "zstd"
        ),
        "100k-item tuple key set again and again, container zstd": lambda: fit(
            WRAPPERS["container zstd"], *_big_tuple_key_reused(100_000)
        ),
    }
    for label, make in extra.items():
        if match in label:
            run(label, make(), safe=True)


# -- genuine workloads ---------------------------------------------------------------------


def _object_frame(rows: int) -> Any:
    import pandas as pd

    words = np.array([f"item-{i:05d}" for i in range(5_000)], dtype=object)
    rng = np.random.default_rng(6)
    return pd.DataFrame(
        {
            "id": np.arange(rows),
            "label": pd.Series(words[rng.integers(0, len(words), rows)], dtype=object),
            "mixed": pd.Series([i if i % 2 else str(i) for i in range(rows)], dtype=object),
        }
    )


def _forest_arrays(quick: bool) -> Any:
    forest = workloads.forest(quick)
    return [estimator.tree_.__getstate__() for estimator in forest.estimators_]


def _distinct_tuples(count: int) -> list[tuple[int, int]]:
    """Equal small tuples, each its own object (the pickler memoizes by identity)."""
    return [(1, i - i + 2) for i in range(count)]


def genuine(quick: bool, match: str) -> None:
    from codecpickle import PANDAS_GLOBALS

    n = 10 if quick else 1
    cases: dict[str, tuple[Callable[[], bytes], dict[str, Any]]] = {
        "300,000 small dicts, zstd": (
            lambda: codecpickle.dumps(workloads.list_of_dicts(quick), compress="zstd"),
            {},
        ),
        "300,000 small dicts, plain pickle gzip": (
            lambda: gzip.compress(pickle.dumps(workloads.list_of_dicts(quick), protocol=5)),
            {},
        ),
        "10,000 object arrays of 3 items, zstd": (
            lambda: codecpickle.dumps(
                [np.array([i, "x", None], dtype=object) for i in range(10_000 // n)],
                compress="zstd",
            ),
            {},
        ),
        "1e6 equal small tuples (one object), zstd": (
            lambda: codecpickle.dumps([(1, 2)] * (1_000_000 // n), compress="zstd"),
            {},
        ),
        "1e6 equal small tuples (distinct objects), zstd": (
            lambda: codecpickle.dumps(_distinct_tuples(1_000_000 // n), compress="zstd"),
            {},
        ),
        "1e6 equal small tuples (distinct objects), plain pickle zstd": (
            lambda: WRAPPERS["pickle zstd"](
                pickle.dumps(_distinct_tuples(1_000_000 // n), protocol=5)
            ),
            {},
        ),
        "DataFrame, 1e6 rows, 2 object columns, zstd": (
            lambda: codecpickle.dumps(_object_frame(1_000_000 // n), compress="zstd"),
            {"allow": PANDAS_GLOBALS},
        ),
        "fitted forest's tree arrays (100 trees), zstd": (
            lambda: codecpickle.dumps(_forest_arrays(quick), compress="zstd"),
            {},
        ),
    }
    print("| genuine workload | bytes | outcome | seconds | work units |")
    print("|---|---|---|---|---|")
    for name, (make, options) in cases.items():
        if match in name:
            run(name, make(), safe=True, **options)
    if match in "joblib golden files":
        worst = (0.0, "")
        count = 0
        for path in sorted((ROOT / "tests" / "data" / "joblib").glob("*.joblib")):
            _spent.clear()
            start = time.perf_counter()
            try:
                codecpickle.load(path, safe=True)
            except codecpickle.CodecPickleError as exc:
                print(f"| {path.name} | | {type(exc).__name__}: {exc} | | |")
            count += 1
            worst = max(worst, (time.perf_counter() - start, path.name))
        name = f"{count} joblib golden files (slowest: {worst[1]})"
        print(f"| {name} | | loaded | {worst[0]:.2f} | |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("genuine", "crafted"))
    parser.add_argument("--match", default="", help="run the cases whose name holds this")
    parser.add_argument(
        "--quick", action="store_true", help="smaller genuine workloads, fewer wrappers"
    )
    args = parser.parse_args()
    if args.only != "crafted":
        genuine(args.quick, args.match)
        print()
    if args.only != "genuine":
        crafted(args.quick, args.match)


if __name__ == "__main__":
    main()
