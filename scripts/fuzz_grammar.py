"""Crash hunt for restricted loads, by grammar: streams built from the
admitted globals with random typed arguments, loaded with ``safe=True``
(or ``allow=PANDAS_GLOBALS``), and the loaded objects then *used*.

    python scripts/fuzz_grammar.py [--start 0] [--count 20000] [--workers 2] [--timeout 10]

Byte mutation of genuine pickles rarely reaches the interesting states: a
crafted stream names only admitted callables, but gives them arguments no
genuine stream would (a subarray dtype to a scalar, a state whose items are
the array itself, a date byte state with day 255, a dtype whose fields share
one part, huge integers, odd encodings).  Each case here is a seed: a small
random program of calls (each global called with arguments drawn from
typed generators, which mix plausible and hostile values and the objects
earlier calls built, the pending ones included), pickled with a random
protocol, wrapped in a valid container and loaded.  Whatever loads is then
used the way an application would: ``repr``, ``str``, ``hash``, ``==``,
``np.asarray``, ``tolist``, arithmetic, ``ctime``, iteration.

Every case runs in a worker process with a per-case timeout (``SIGALRM``);
a worker that dies (a crash) or stops answering (a deadlock) is replaced
and its seed reported.  The load must end in a value or a
``CodecPickleError``; using the value may raise anything but must not
crash or hang.  The exit status is 1 if any case crashed, hung or raised
another exception from the load.  ``--start S --count 1 --verbose``
replays one case.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime
import decimal
import io
import itertools
import math
import pickle
import queue
import random
import signal
import subprocess
import sys
import threading
import warnings
import zoneinfo
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


class Call:
    """Pickles as a call of ``func`` with ``args`` (and a BUILD ``state``)."""

    def __init__(self, func: Any, args: tuple[Any, ...], state: Any = None) -> None:
        self.func, self.args, self.state = func, args, state

    def __reduce__(self) -> Any:
        if self.state is None:
            return self.func, self.args
        return self.func, self.args, self.state


class Grammar:
    """Random typed values and calls of admitted globals."""

    def __init__(self, rng: random.Random) -> None:
        import numpy as np

        from codecpickle import _construct

        self.rng = rng
        self.np = np
        self.construct = _construct
        self.built: list[Any] = []  # values made so far, reused as arguments
        self.reconstruct = np.ndarray.__reduce__(np.empty(0))[0]
        self.scalar_func = np.float64(0).__reduce__()[0]
        self.frombuffer = np.arange(1).__reduce_ex__(5)[0]

    # -- plain values ----------------------------------------------------------------

    def small_int(self) -> int:
        return self.rng.choice(
            [0, 1, 2, 3, -1, 7, 8, 16, 255, 256, 2**31 - 1, 2**31, 2**63, -(2**63), 10**6]
        )

    def integer(self) -> int:
        if self.rng.random() < 0.02:
            return 10 ** self.rng.choice([100, 4000, 4400, 20000])
        return self.small_int()

    def text(self) -> str:
        return self.rng.choice(
            ["", "a", "x" * 40, "ü", "\ud800", "1e5", "NaN", "<f8", "UTC", "9" * 50]
        )

    def raw(self, size: int | None = None) -> bytes:
        if size is None:
            size = self.rng.choice([0, 1, 2, 4, 6, 7, 8, 10, 16, 24, 64])
        return bytes(self.rng.randrange(256) for _ in range(min(size, 4096)))

    def shape(self) -> Any:
        r = self.rng.random()
        if r < 0.8:
            return tuple(self.rng.choice([0, 1, 2, 3]) for _ in range(self.rng.randint(0, 3)))
        return self.rng.choice([(-1,), (2**40,), (1,) * 40, [2], 3, (2.0,), (True,), None])

    def plain_descr(self) -> str:
        return self.rng.choice(
            [
                "<f8",
                "|b1",
                "|i1",
                ">i4",
                "<u2",
                "<f2",
                "<c16",
                "|S0",
                "|S3",
                "<U2",
                ">U1",
                "|V0",
                "|V3",
                "|O",
                "<M8",
                "<M8[ns]",
                ">m8[25s]",
                "<M8[D]",
                "<f16",
                "f8",
                "=f8",
                "<l",
                "|V99999999999",
                "<M8[parsec]",
            ]
        )

    def descr(self, depth: int = 0) -> Any:
        r = self.rng.random()
        if depth > 3 or r < 0.5:
            return self.plain_descr()
        if r < 0.75:
            count = self.rng.randint(0, 3)
            parts = [self.descr(depth + 1) for _ in range(count)]
            if self.rng.random() < 0.3 and parts:  # fields sharing one part
                parts = [parts[0]] * count
            names = [self.rng.choice(["a", "b", "c", "a", ""]) for _ in range(count)]
            fields = tuple(
                (
                    name,
                    self.rng.choice([None, None, "T", name]),
                    part,
                    self.rng.choice([0, 0, 4, 8, -1, 99]),
                )
                for name, part in zip(names, parts, strict=True)
            )
            return ("struct", fields, self.rng.choice([0, 8, 16, 24, 3]), self.rng.random() < 0.3)
        if r < 0.85:
            return ("subarray", self.descr(depth + 1), self.shape())
        if r < 0.93:
            return (
                "string",
                self.rng.choice([True, False, 1]),
                self.rng.choice([(), (None,), (math.nan,), ("NA",), ([],)]),
            )
        return (
            "meta",
            self.descr(depth + 1),
            self.rng.choice([(), (("k", 1),), (("k", []),), {"k": 1}]),
        )

    def dtype_value(self) -> Any:
        """A dtype as numpy's own pickles carry it (dtype + BUILD), a
        codecpickle description call, or a simple dtype call."""
        np = self.np
        r = self.rng.random()
        if r < 0.4:
            return Call(self.construct.dtype, (self.descr(),))
        if r < 0.5:
            return Call(np.dtype, (self.rng.choice(["f8", "i4", "O", "(2,)i4", "f8,i4", 7]),))
        base = self.rng.choice(
            [
                np.dtype("f8"),
                np.dtype("O"),
                np.dtype("V8"),
                np.dtype(("u1", (1,))),
                np.dtype([("a", "O")]),
                np.dtype("M8[ns]"),
                np.dtype("U3"),
                np.dtypes.StringDType(),
                np.dtype([("a", "i4"), ("b", "f4")]),
            ]
        )
        reduced = base.__reduce__()
        func, args = reduced[:2]
        state = list(reduced[2]) if len(reduced) > 2 else [self.any_value(1)]
        if self.rng.random() < 0.6:
            index = self.rng.randrange(len(state))
            state[index] = self.any_value(1)
        return Call(func, args, tuple(state))

    def array_value(self) -> Any:
        np = self.np
        r = self.rng.random()
        if r < 0.35:
            data = self.rng.choice(
                [
                    self.raw(),
                    None,
                    [self.any_value(2) for _ in range(self.rng.randint(0, 4))],
                    self.any_value(1),
                ]
            )
            return Call(
                self.construct.array,
                (self.shape(), self.descr(), self.rng.choice(["C", "F", "K"]), data),
            )
        if r < 0.55:
            # numpy's own reduction: an empty start and a state, which may
            # name the array itself.
            target = Call(self.reconstruct, (np.ndarray, (0,), b"b"))
            items: list[Any] = [target, "x", self.any_value(1)]
            data = self.rng.choice([self.raw(), items, items[:1], [target]])
            dtype = self.rng.choice(
                [self.dtype_value(), np.dtype("O"), np.dtypes.StringDType(), np.dtype("f8")]
            )
            target.state = (1, self.shape(), dtype, self.rng.choice([False, True, 2]), data)
            return target
        if r < 0.65:
            return Call(
                self.scalar_func,
                self.rng.choice(
                    [
                        (self.dtype_value(), self.raw()),
                        (self.dtype_value(),),
                        (np.dtype("O"), self.any_value(1)),
                    ]
                ),
            )
        if r < 0.75:
            return Call(self.frombuffer, (self.raw(), self.dtype_value(), self.shape(), "C"))
        if r < 0.85:
            return Call(np.ndarray, (self.shape(), self.dtype_value(), self.raw(), 0, None, "C"))
        if r < 0.92:
            data = Call(self.construct.array, ((3,), "<f8", "C", self.raw(24)))
            mask = Call(self.construct.array, ((3,), "|b1", "C", self.raw(3)))
            return Call(
                self.construct.masked, (data, mask, self.any_value(1), self.rng.random() < 0.5)
            )
        made = Call(self.construct.array, ((2,), "|O", "C", None))
        return Call(
            self.construct.fill, (self.rng.choice([made, self.pick()]), [made, self.any_value(1)])
        )

    def builtin_value(self) -> Any:
        rng = self.rng
        choices = [
            lambda: Call(
                str,
                (self.raw(), rng.choice(["latin-1", "utf-8", "idna", "rot13", "utf-16", "ascii"])),
            ),
            lambda: Call(str, (self.pick(),)),
            lambda: Call(bytes, (rng.choice([self.pick(), self.small_int(), self.text()]),)),
            lambda: Call(bytearray, (self.pick(),)),
            lambda: Call(int, (rng.choice([self.text(), "9" * 5000, self.pick()]),)),
            lambda: Call(float, (rng.choice([self.text(), self.pick()]),)),
            lambda: Call(complex, (self.pick(), self.pick())),
            lambda: Call(list, (rng.choice([self.pick(), Call(range, (10**12,))]),)),
            lambda: Call(frozenset, (self.pick(),)),
            lambda: Call(range, (self.integer(), self.integer(), rng.choice([1, 0, -1]))),
            lambda: Call(slice, (self.pick(), None, 2)),
            lambda: Call(datetime.date, (self.raw(4),)),
            lambda: Call(
                datetime.datetime,
                (self.raw(10), rng.choice([None, datetime.UTC, self.pick()])),
            ),
            lambda: Call(datetime.time, (self.raw(6),)),
            lambda: Call(datetime.timedelta, (self.integer(), self.integer())),
            lambda: Call(
                decimal.Decimal, (rng.choice([self.integer(), self.text(), self.pick()]),)
            ),
            lambda: Call(collections.deque, (self.pick(), rng.choice([None, 2, -1]))),
            lambda: Call(collections.defaultdict, (rng.choice([list, None, self.pick()]),)),
            lambda: Call(collections.Counter, (self.pick(),)),
            lambda: Call(collections.OrderedDict, (self.pick(),)),
            lambda: Call(
                zoneinfo.ZoneInfo, (rng.choice(["UTC", "Europe/Paris", "../etc/passwd", ""]),)
            ),
        ]
        return rng.choice(choices)()

    def cycle_value(self) -> Any:
        """An object-holding array that reaches itself: through a list, a
        dict, a tuple or another array, closed before or after the array is
        filled (the holder is pickled first, so its items come late)."""
        np, rng, construct = self.np, self.rng, self.construct
        holder: Any = rng.choice([[], {}, [[]]])
        kind = rng.randrange(6)
        # Made empty, or an empty start with a state: the array may hold
        # itself directly (numpy then recurses on a + 1 until it crashes).
        direct = rng.random() < 0.5
        if kind == 0:  # codecpickle's own: made empty, then filled
            array: Any = Call(construct.array, ((2,), "|O", "C", None))
            items = [array if direct else holder, 1]
            result: Any = [array, Call(construct.fill, (array, items))]
        elif kind == 1:  # from a list of elements
            array = result = Call(construct.array, ((2,), "|O", "C", [holder, "x"]))
        elif kind == 2:  # numpy's own reduction, translated
            array = result = Call(self.reconstruct, (np.ndarray, (0,), b"b"))
            array.state = (1, (2,), np.dtype("O"), False, [array if direct else holder, None])
        elif kind == 3:  # a structured array with an object field
            descr = ("struct", (("a", None, "|O", 0), ("b", None, "<i4", 8)), 16, False)
            array = result = Call(construct.array, ((1,), descr, "C", [(holder, 1)]))
        elif kind == 4:  # a masked array of objects
            data = Call(construct.array, ((2,), "|O", "C", [holder, 2]))
            mask = Call(construct.array, ((2,), "|b1", "C", b"\0\1"))
            array = result = Call(construct.masked, (data, mask, None, False))
        else:  # through a second array
            inner = Call(construct.array, ((1,), "|O", "C", [holder]))
            array = result = Call(construct.array, ((1,), "|O", "C", [inner]))
        via = rng.choice([array, (array,), [array], {"k": array}])
        target = holder[0] if holder == [[]] else holder
        if type(target) is dict:
            target["a"] = via
        else:
            target.append(via)
        return rng.choice([result, holder, [holder, result]])

    def pick(self) -> Any:
        return self.rng.choice(self.built) if self.built else self.small_int()

    def any_value(self, depth: int = 0) -> Any:
        r = self.rng.random()
        if depth > 2 or r < 0.3:
            return self.rng.choice(
                [self.integer, self.text, self.raw, lambda: None, lambda: 1.5, self.pick]
            )()
        if r < 0.5:
            value = self.array_value()
        elif r < 0.55:
            value = self.cycle_value()
        elif r < 0.7:
            value = self.dtype_value()
        elif r < 0.9:
            value = self.builtin_value()
        else:
            value = [self.any_value(depth + 1) for _ in range(self.rng.randint(0, 3))]
        self.built.append(value)
        return value

    def program(self) -> Any:
        return [self.any_value() for _ in range(self.rng.randint(1, 6))]

    def pandas_program(self) -> Any:
        from codecpickle import _construct_pandas as cp

        np = self.np
        idx = Call(
            cp.range_index,
            (0, self.rng.choice([3, 2, 10**12]), 1, self.rng.choice([None, "i", self.pick()])),
        )
        col = Call(
            self.construct.array,
            ((3,), self.plain_descr(), "C", self.raw(self.rng.choice([3, 24, 48]))),
        )
        labels = Call(
            cp.index,
            (
                Call(
                    self.construct.array,
                    ((self.rng.choice([1, 2]),), "|O", "C", ["a", self.pick()]),
                ),
                None,
            ),
        )
        calls = [
            Call(
                cp.frame,
                (labels, [col, self.rng.choice([col, self.pick()])][: self.rng.randint(0, 2)], idx),
            ),
            Call(cp.series, (col, idx, self.rng.choice(["s", self.pick()]))),
            Call(
                cp.categorical,
                (
                    Call(self.construct.array, ((3,), "|i1", "C", self.raw(3))),
                    labels,
                    self.rng.random() < 0.5,
                ),
            ),
            Call(
                cp.datetime_tz,
                (
                    Call(self.construct.array, ((2,), "<M8[ns]", "C", self.raw(16))),
                    self.rng.choice(["UTC", "Europe/Paris", "nope"]),
                ),
            ),
            Call(
                cp.nullable,
                (
                    col,
                    Call(self.construct.array, ((3,), "|b1", "C", self.raw(3))),
                    self.rng.choice(["Int", "Float", "boolean", "x"]),
                ),
            ),
            Call(
                cp.strings,
                (
                    Call(self.construct.array, ((2,), "|O", "C", ["a", self.pick()])),
                    "python",
                    self.rng.choice(["NA", "nan"]),
                ),
            ),
            Call(
                cp.datetime_index,
                (
                    Call(self.construct.array, ((3,), "<M8[D]", "C", self.raw(24))),
                    self.rng.choice(["D", "h", "zz"]),
                    None,
                ),
            ),
        ]
        # A frame whose object column, filled late, holds the frame.
        column = Call(self.construct.array, ((3,), "|O", "C", None))
        holder: list[Any] = []
        name = Call(cp.index, (Call(self.construct.array, ((1,), "|O", "C", ["a"])), None))
        frame = Call(cp.frame, (name, [column], Call(cp.range_index, (0, 3, 1, None))))
        holder.append(frame)
        calls.append([frame, Call(self.construct.fill, (column, [holder, 1, None]))])
        del np
        return self.rng.sample(calls, self.rng.randint(1, 3)) + [self.any_value() for _ in range(2)]


def use(value: Any, depth: int = 0) -> None:
    """Use a loaded value as an application would (errors are fine)."""
    import numpy as np

    if depth > 3:
        return
    # Arithmetic too on object arrays: restricted loads refuse the ones
    # numpy would recurse through without a bound (cycles, deep nesting).
    for action in (
        repr,
        str,
        hash,
        lambda v: v == v,
        np.asarray,
        lambda v: np.asarray(v).tolist(),
        lambda v: v + v,
        lambda v: v * 2,
        lambda v: v + 1,
        lambda v: v.ctime(),
        lambda v: v.isoformat(),
        lambda v: sorted(v),
        lambda v: len(v),
        lambda v: v.copy(),
        lambda v: pickle.loads(pickle.dumps(v)),
    ):
        with contextlib.suppress(Exception):
            action(value)
    if isinstance(value, (list, tuple, set, frozenset)):
        for item in list(value)[:8]:
            use(item, depth + 1)
    elif isinstance(value, dict):
        for item in list(value.items())[:8]:
            use(item, depth + 1)
    elif isinstance(value, np.ndarray) and value.dtype.hasobject:
        for item in value.ravel()[:8]:
            use(item, depth + 1)


class _Timeout(BaseException):
    pass


def _on_alarm(signum: int, frame: Any) -> None:
    raise _Timeout


# Opcode floods: (head, repeated unit, tail).  Cheap opcodes, the costliest
# (MARK, MEMOIZE, containers), deep tuples, and calls a stream names again
# and again for a few bytes each (constructors given one large container).
_BIG_LIST = b"](" + b"K\x01" * 5_000 + b"e"
FLOODS = [
    (b"\x80\x04", b")0", b"N."),
    (b"\x80\x04", b"N0", b"N."),
    (b"\x80\x04", b"(1", b"N."),
    (b"\x80\x04", b"(", b"N."),
    (b"\x80\x04N", b"2", b"."),
    (b"\x80\x04N", b"\x94", b"."),
    (b"\x80\x04Nq\x00", b"h\x000", b"."),
    (b"\x80\x04", b"]", b"."),
    (b"\x80\x04", b"}", b"."),
    (b"\x80\x04)", b"\x85", b"."),
    (b"\x80\x04](", b"N", b"e."),
    (b"\x80\x04}(", b"K\x01N", b"u."),
    (b"", b"L" + b"9" * 4299 + b"L\n0", b"N."),
    (b"\x80\x04cbuiltins\nlist\n\x94(" + _BIG_LIST + b"t\x94", b"h\x00h\x01R0", b"N."),
    (b"\x80\x04cbuiltins\nset\n\x94(" + _BIG_LIST + b"t\x94", b"h\x00h\x01R0", b"N."),
    (
        b"\x80\x04cbuiltins\nint\n\x94(X\xcc\x10\x00\x00" + b"9" * 4300 + b"t\x94",
        b"h\x00h\x01R0",
        b"N.",
    ),
    (
        b"\x80\x04ccodecpickle._construct\narray\n\x94(J\x00\x00\x01\x00\x85"
        b"X\x02\x00\x00\x00|OX\x01\x00\x00\x00CNt\x94",
        b"h\x00h\x01R0",
        b"N.",
    ),
]


def flood_case(rng: random.Random) -> bytes:
    """An opcode flood of up to 8 million units, compressed to little."""
    import gzip
    import zlib

    import lz4.frame
    import zstandard

    from codecpickle._writer import ContainerWriter
    from codecpickle.codecs import resolve_compress

    def container(opcodes: bytes, codec: str) -> bytes:
        out = io.BytesIO()
        writer = ContainerWriter(out, resolve_compress(codec), chunk_size=1 << 22)
        for start in range(0, len(opcodes), 1 << 22):
            writer.write(opcodes[start : start + (1 << 22)])
        writer.finish()
        return out.getvalue()

    head, unit, tail = rng.choice(FLOODS)
    count = min(rng.choice([10**5, 10**6, 4 * 10**6, 8 * 10**6]), (32 << 20) // len(unit))
    opcodes = head + unit * count + tail
    wrap = rng.choice(
        [
            lambda ops: container(ops, "zstd"),
            gzip.compress,
            zstandard.ZstdCompressor().compress,
            lz4.frame.compress,
            zlib.compress,  # as joblib writes
        ]
    )
    return wrap(opcodes)


def case(seed: int, pandas: bool) -> bytes:
    rng = random.Random(seed)
    if rng.random() < FLOOD_SHARE:
        return flood_case(rng)
    grammar = Grammar(rng)
    program = grammar.pandas_program() if pandas else grammar.program()
    from tests.test_safe import container

    return container(pickle.dumps(program, protocol=rng.choice([2, 3, 4, 5])))


#: The share of cases that are opcode floods (each takes a second or two).
FLOOD_SHARE = 0.01


def work(start: int, stop: int, verbose: bool, pandas: bool, timeout: int) -> None:
    """Worker: run cases start..stop-1, printing each seed first."""
    sys.path.insert(0, str(ROOT))
    warnings.simplefilter("ignore")
    signal.signal(signal.SIGALRM, _on_alarm)
    import codecpickle

    options = {"allow": codecpickle.PANDAS_GLOBALS} if pandas else {"safe": True}
    for seed in range(start, stop):
        print(seed, flush=True)
        try:
            data = case(seed, pandas)
        except Exception as exc:  # the generator made something unpicklable
            if verbose:
                print(f"  skipped: {type(exc).__name__}: {exc}", flush=True)
            continue
        signal.alarm(timeout)
        try:
            try:
                value = codecpickle.loads(data, **options)
            except codecpickle.CodecPickleError as exc:
                outcome = f"{type(exc).__name__}: {exc}"
            except _Timeout:
                print(f"HANG {seed} during the load", flush=True)
                continue
            except BaseException as exc:  # reporting it is the point
                print(f"FOREIGN {seed} {type(exc).__name__}: {exc}", flush=True)
                continue
            else:
                outcome = f"loaded {type(value).__name__}"
                use(value)
        except _Timeout:
            print(f"HANG {seed} while using the result", flush=True)
            continue
        finally:
            signal.alarm(0)
        if verbose:
            print(f"  {outcome[:300]}", flush=True)


def _pump(stream: Any, lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))
    lines.put(None)


def lane(
    start: int, stop: int, flags: list[str], timeout: int, report: dict[str, list[str]]
) -> None:
    """Run workers over start..stop-1, replacing any that dies or stalls."""
    while start < stop:
        proc = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--worker",
                str(start),
                str(stop),
                "--timeout",
                str(timeout),
                *flags,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        lines: queue.Queue[str | None] = queue.Queue()

        threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True).start()
        last: str | None = None
        stalled = False
        while True:
            try:
                line = lines.get(timeout=3 * timeout + 30)
            except queue.Empty:  # deadlocked: the alarm could not fire
                proc.kill()
                stalled = True
                break
            if line is None:
                break
            if "--verbose" in flags:
                print(line)
            if line.isdigit():
                last = line
            elif line.startswith(("FOREIGN", "HANG")):
                report["problems"].append(line)
        proc.wait()
        if proc.returncode == 0 and not stalled:
            return
        if last is None:
            report["broken"].append(f"a worker failed to start:\n{proc.stderr.read()[-2000:]}")
            return
        what = "no answer (deadlock)" if stalled else f"exit status {proc.returncode}"
        report["crashes"].append(f"seed {last}: {what}")
        start = int(last) + 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=int, default=10, help="seconds per case")
    parser.add_argument("--verbose", action="store_true", help="print every case's outcome")
    parser.add_argument("--pandas", action="store_true", help="pandas constructors, PANDAS_GLOBALS")
    parser.add_argument("--worker", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        work(*args.worker, args.verbose, args.pandas, args.timeout)
        return
    flags = [flag for flag in ("--verbose", "--pandas") if getattr(args, flag[2:])]
    report: dict[str, list[str]] = {"crashes": [], "problems": [], "broken": []}
    bounds = [args.start + args.count * i // args.workers for i in range(args.workers + 1)]
    lanes = [
        threading.Thread(target=lane, args=(lo, hi, flags, args.timeout, report))
        for lo, hi in itertools.pairwise(bounds)
    ]
    for thread in lanes:
        thread.start()
    for thread in lanes:
        thread.join()
    for line in report["broken"] + report["crashes"] + report["problems"]:
        print(line)
    if report["broken"]:
        sys.exit(2)
    print(
        f"{args.count} cases (seeds {args.start}..{args.start + args.count - 1}): "
        f"{len(report['crashes'])} crashes or deadlocks, "
        f"{len(report['problems'])} hangs or foreign exceptions"
    )
    sys.exit(1 if report["crashes"] or report["problems"] else 0)


if __name__ == "__main__":
    main()
