"""Restricted loads (``safe=True``) against normal loads, side by side.

    python benchmarks/safe_load.py [--quick] [--repeat 3] [--codec zstd]

Restricted loads run the pure-Python unpickler (so that every BUILD opcode
can be checked, see docs/security.md); array data bypasses the unpickler.
For each workload this dumps once, then alternates normal and restricted
loads of the same bytes and prints the best time of each and their ratio.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import workloads

import codecpickle


def object_arrays(quick: bool) -> list[np.ndarray]:
    n = 100 if quick else 10_000
    return [np.array([i, "x", None], dtype=object) for i in range(n)]


CASES = {
    "random float64 array, 256 MiB": lambda quick: workloads.random_f64_256(quick),
    "list of 300,000 small dicts": lambda quick: workloads.list_of_dicts(quick),
    "200 mixed-dtype arrays + Fortran + strided": lambda quick: workloads.mixed_arrays(quick),
    "10,000 object arrays of 3 items": object_arrays,
}


def timed_load(data: bytes, **options: Any) -> float:
    start = time.perf_counter()
    codecpickle.loads(data, **options)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--codec", default="zstd", help="compression for the dumped bytes")
    args = parser.parse_args()
    compress = None if args.codec == "none" else args.codec

    sizes = "quick (tiny) sizes" if args.quick else "full sizes"
    print(f"codec {args.codec}, best of {args.repeat}, {sizes}\n")
    print("| workload | normal load | safe=True | ratio |")
    print("|---|---|---|---|")
    for name, make in CASES.items():
        data = codecpickle.dumps(make(args.quick), compress=compress)
        normal = safe = float("inf")
        for _ in range(args.repeat):  # interleaved, so drift hits both alike
            normal = min(normal, timed_load(data))
            safe = min(safe, timed_load(data, safe=True))
        print(f"| {name} | {normal:.3f} s | {safe:.3f} s | {safe / normal:.2f} |", flush=True)


if __name__ == "__main__":
    main()
