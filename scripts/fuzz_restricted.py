"""Crash hunt for restricted loads: seeded mutations of pickle opcode streams,
each loaded with ``safe=True`` in a worker process that is restarted when a
case kills it.

    python scripts/fuzz_restricted.py [--start 0] [--count 200000] [--workers 2] [--pandas]

pytest runs its fuzz cases (tests/test_fuzz.py) in its own process, so a
segmentation fault ends the run without naming the input.  Here every case
is a seed: the worker prints it before loading, and a worker that dies takes
only its current seed with it.  Each case takes one of the opcode streams of
``tests/test_fuzz.py`` and applies 1-8 random edits (byte replaced, inserted
or deleted, a slice repeated, a slice of another stream spliced in), wraps
it in a valid container and loads it (with ``--pandas``: codecpickle's
pickles of pandas objects, loaded with ``allow=PANDAS_GLOBALS``).  It must
end in a value or a ``CodecPickleError``; what loads is then used as an
application would (``fuzz_grammar.use``: repr, hash, ==, arithmetic, array
conversion, ctime ...).  Crashes, other exceptions from the load and cases
that run past ``--timeout`` seconds are reported with their seeds, and the
exit status is 1 if there were any.  ``--start S --count 1
--verbose`` replays one case.
"""

from __future__ import annotations

import argparse
import itertools
import random
import signal
import subprocess
import sys
import threading
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def mutate(seed: int, streams: list[bytes]) -> bytes:
    rng = random.Random(seed)
    data = bytearray(rng.choice(streams))
    for _ in range(rng.randint(1, 8)):
        edit = rng.randrange(5)
        at = rng.randrange(len(data) + 1)
        if edit == 0 and at < len(data):
            data[at] = rng.randrange(256)
        elif edit == 1:
            data[at:at] = bytes([rng.randrange(256)])
        elif edit == 2 and at < len(data):
            del data[at]
        elif edit == 3:
            start = rng.randrange(len(data))
            data[at:at] = data[start : start + rng.randint(1, 40)]
        else:
            other = rng.choice(streams)
            start = rng.randrange(len(other))
            size = rng.randint(1, 60)
            data[at : at + rng.randint(0, size)] = other[start : start + size]
    return bytes(data)


def opcodes_of(obj: object) -> bytes:
    """The opcode stream codecpickle writes for ``obj``, with every buffer
    in-band (as in a compressed file), so that it stands alone."""
    import io

    from codecpickle._pickling import Pickler
    from codecpickle._writer import ContainerWriter
    from codecpickle.codecs import resolve_compress

    writer = ContainerWriter(io.BytesIO(), resolve_compress("zlib"), chunk_size=1 << 20)
    opcodes = io.BytesIO()
    writer.write = opcodes.write  # type: ignore[method-assign]
    Pickler(writer).dump(obj)
    return opcodes.getvalue()


def pandas_streams() -> list[bytes]:
    """codecpickle's own pickles of pandas objects (its pandas constructors,
    which PANDAS_GLOBALS admits), and pandas' own pickles (refused)."""
    import pickle

    import numpy as np
    import pandas as pd

    frame = pd.DataFrame(
        {
            "i": np.arange(5),
            "f": np.linspace(0, 1, 5),
            "s": list("abcde"),
            "c": pd.Categorical(list("xyxyx")),
            "t": pd.date_range("2020", periods=5, tz="UTC"),
            "n": pd.array([1, None, 3, 4, 5], dtype="Int64"),
        }
    )
    objects = [
        frame,
        frame["i"],
        pd.Index(list("abc")),
        pd.date_range("2020", periods=3, freq="D"),
        pd.Series([1.5, None], dtype="Float64"),
    ]
    ours = [opcodes_of(obj) for obj in objects]
    return ours * 4 + [pickle.dumps(obj, protocol=5) for obj in objects[:2]]


def work(start: int, stop: int, verbose: bool, pandas: bool, timeout: int) -> None:
    """Worker: load cases start..stop-1, printing each seed first."""
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "scripts"))
    warnings.simplefilter("ignore")  # numpy deprecations on odd arguments
    from fuzz_grammar import _on_alarm, _Timeout, use

    import codecpickle
    from tests.test_safe import container

    signal.signal(signal.SIGALRM, _on_alarm)

    if pandas:
        streams, options = pandas_streams(), {"allow": codecpickle.PANDAS_GLOBALS}
    else:
        from tests.test_fuzz import _OPCODES

        streams, options = _OPCODES, {"safe": True}
    for seed in range(start, stop):
        print(seed, flush=True)
        stream = container(mutate(seed, streams))
        signal.alarm(timeout)
        try:
            try:
                value = codecpickle.loads(stream, **options)
            except codecpickle.CodecPickleError as exc:
                outcome = f"{type(exc).__name__}: {exc}"
            except _Timeout:
                print(f"FOREIGN {seed} hang: no result in {timeout} s", flush=True)
                continue
            except BaseException as exc:  # reporting it is the point
                print(f"FOREIGN {seed} {type(exc).__name__}: {exc}", flush=True)
                continue
            else:
                outcome = f"loaded {type(value).__name__}"
                use(value)
        except _Timeout:
            print(f"FOREIGN {seed} hang while using the result", flush=True)
            continue
        finally:
            signal.alarm(0)
        if verbose:
            print(f"  {outcome[:200]}", flush=True)


def lane(start: int, stop: int, flags: list[str], report: dict[str, list[str]]) -> None:
    """Run workers over start..stop-1, restarting after each crash."""
    while start < stop:
        proc = subprocess.run(
            [sys.executable, __file__, "--worker", str(start), str(stop), *flags],
            capture_output=True,
            text=True,
            check=False,
        )
        lines = proc.stdout.splitlines()
        if "--verbose" in flags:
            print(proc.stdout, end="")
        report["foreign"] += [line for line in lines if line.startswith("FOREIGN")]
        if proc.returncode == 0:
            return
        seeds = [line for line in lines if line.isdigit()]
        if not seeds:  # died before its first case: not the input's doing
            report["broken"].append(f"a worker failed to start:\n{proc.stderr[-2000:]}")
            return
        report["crashes"].append(f"seed {seeds[-1]}: exit status {proc.returncode}")
        start = int(seeds[-1]) + 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--verbose", action="store_true", help="print every case's outcome")
    parser.add_argument(
        "--pandas", action="store_true", help="pandas pickles, loaded with PANDAS_GLOBALS"
    )
    parser.add_argument("--timeout", type=int, default=20, help="seconds per case")
    parser.add_argument("--worker", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        work(*args.worker, args.verbose, args.pandas, args.timeout)
        return
    flags = [flag for flag in ("--verbose", "--pandas") if getattr(args, flag[2:])]
    flags += ["--timeout", str(args.timeout)]

    report: dict[str, list[str]] = {"crashes": [], "foreign": [], "broken": []}
    bounds = [args.start + args.count * i // args.workers for i in range(args.workers + 1)]
    lanes = [
        threading.Thread(target=lane, args=(lo, hi, flags, report))
        for lo, hi in itertools.pairwise(bounds)
    ]
    for thread in lanes:
        thread.start()
    for thread in lanes:
        thread.join()
    for line in report["broken"] + report["crashes"] + report["foreign"]:
        print(line)
    if report["broken"]:
        sys.exit(2)
    print(
        f"{args.count} cases (seeds {args.start}..{args.start + args.count - 1}): "
        f"{len(report['crashes'])} crashes, {len(report['foreign'])} foreign exceptions"
    )
    sys.exit(1 if report["crashes"] or report["foreign"] else 0)


if __name__ == "__main__":
    main()
