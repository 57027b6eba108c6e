"""Dump and load time with zstd-3 of this tree against another one, side by side.

    python benchmarks/corpus_speed.py --before /tmp/before/src
    python benchmarks/corpus_speed.py --before /tmp/before/src --quick   # smoke run
    python benchmarks/corpus_speed.py --before /tmp/before/src --tree other=/tmp/other/src

``--before`` is the ``src`` directory of another checkout (say, the commit
before filters: ``git archive <commit> src | tar -x -C /tmp/before``);
``--tree name=src`` adds more trees, measured in the same run and compared
with ``before`` as this tree is.  Each case (one
tree, one workload, one operation) runs in a fresh process that imports
codecpickle from that tree, touches and frees twice the payload first (see
DESIGN.md section 3), and keeps the best of three calls; the trees alternate
case by case so that load on the machine hits both alike (``--rounds n``
repeats the whole alternation and keeps each case's best).  Dumps go to a
file in a temporary directory (page cache), ``compress="zstd"`` (level 3) and
the default ``filters``; loads read that file.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
MiB = 1 << 20
REPEATS = 3


def build(name: str, quick: bool) -> Any:
    sys.path.insert(0, str(HERE))
    import workloads

    size = (8 if quick else 128) * MiB
    rng = np.random.default_rng(0)
    if name == "smooth_f32":
        t = np.arange(size // 4, dtype=np.float32)
        signal = np.sin(t * np.float32(1e-4)) * np.float32(100.0)
        signal += np.round(rng.standard_normal(t.size).astype(np.float32) * 4) / 64
        return signal
    if name == "random_f64":
        return rng.standard_normal(size // 8)
    if name == "uniform_f64":
        return rng.random(size // 8)
    if name == "sin_f64":
        # The signal the old 10% raw probe stored raw.
        return np.sin(np.arange(size // 8) / 1e5)
    if name == "dicts":
        return workloads.list_of_dicts(quick)
    if name == "dataframe":
        return workloads.dataframe(quick)
    if name == "forest":
        return workloads.forest(quick)
    raise ValueError(name)


WORKLOADS = ("smooth_f32", "random_f64", "uniform_f64", "sin_f64", "dicts", "dataframe", "forest")


def cached(name: str, quick: bool, cache: Path) -> Any:
    path = cache / f"{name}{'-quick' if quick else ''}.pkl"
    if not path.exists():
        with open(path, "wb") as f:
            pickle.dump(build(name, quick), f, protocol=5)
    with open(path, "rb") as f:
        return pickle.load(f)


def run_case(name: str, op: str, quick: bool, cache: Path, target: Path) -> dict[str, float]:
    """In the case's own process: time one operation."""
    import codecpickle

    obj = cached(name, quick, cache)
    nbytes = len(pickle.dumps(obj, protocol=5))
    best = float("inf")
    for _ in range(REPEATS):
        block = np.ones(2 * nbytes, dtype=np.uint8)  # warm the allocator
        del block
        if op == "dump":
            with open(target, "wb") as f:
                start = time.perf_counter()
                codecpickle.dump(obj, f, compress="zstd")
                best = min(best, time.perf_counter() - start)
        else:
            with open(target, "rb") as f:
                start = time.perf_counter()
                loaded = codecpickle.load(f)
                best = min(best, time.perf_counter() - start)
            del loaded
    return {"seconds": best, "size": target.stat().st_size, "pickle_bytes": nbytes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", type=Path, required=True, help="src/ of the other tree")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", help="comma-separated workload names")
    parser.add_argument("--tree", action="append", default=[], metavar="NAME=SRC",
                        help="another tree to measure (repeatable)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run every case this many times (alternating), keep the best")
    parser.add_argument("--json", type=Path, default=HERE / "corpus_speed.json")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    cache = Path(tempfile.gettempdir()) / "codecpickle-corpus-speed"
    cache.mkdir(exist_ok=True)
    if args.case:
        name, op, target = json.loads(args.case)
        print(json.dumps(run_case(name, op, args.quick, cache, Path(target))))
        return
    trees = {"before": args.before.resolve()}
    for spec in args.tree:
        label, _, src = spec.partition("=")
        trees[label] = Path(src).resolve()
    trees["now"] = (HERE.parent / "src").resolve()
    names = args.only.split(",") if args.only else WORKLOADS
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for name in names:
                cached(name, args.quick, cache)
                row = results.setdefault(name, {})
                for op in ("dump", "load"):
                    for tree, src in trees.items():
                        target = Path(tmp) / f"{name}-{tree}.cpkl"
                        env = {**os.environ, "PYTHONPATH": str(src)}
                        spec = json.dumps([name, op, str(target)])
                        command = [sys.executable, __file__, "--before", str(args.before),
                                   "--case", spec] + (["--quick"] if args.quick else [])
                        out = json.loads(subprocess.run(
                            command, env=env, check=True, capture_output=True, text=True
                        ).stdout)
                        key = f"{tree} {op}"
                        if key not in row or out["seconds"] < row[key]["seconds"]:
                            row[key] = out
                        print(name, tree, op, out, file=sys.stderr)
    args.json.write_text(json.dumps(results, indent=1) + "\n")
    print(table(results, list(trees)))


def table(results: dict[str, dict[str, Any]], trees: list[str]) -> str:
    """Markdown: size, dump and load seconds of every tree, and each tree's
    speed relative to ``before`` (above 1: faster)."""
    others = [tree for tree in trees if tree != "before"]
    head = ["workload"] + [f"size {tree} MiB" for tree in trees]
    for op in ("dump", "load"):
        head += [f"{op} s {tree}" for tree in trees]
        head += [f"{tree}/before {op} speed" for tree in others]
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
    for name, row in results.items():
        cells = [name] + [f"{row[f'{tree} dump']['size'] / MiB:.1f}" for tree in trees]
        for op in ("dump", "load"):
            cells += [f"{row[f'{tree} {op}']['seconds']:.3f}" for tree in trees]
            base = row[f"before {op}"]["seconds"]
            cells += [f"{base / row[f'{tree} {op}']['seconds']:.2f}" for tree in others]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
