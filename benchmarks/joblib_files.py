"""Loading joblib files: codecpickle.load against joblib.load, side by side.

    python benchmarks/joblib_files.py [--quick] [--repeat 3] [--size-mib 512]

Writes one joblib file per compression setting (uncompressed and zlib 3,
joblib's ``compress=3``) holding a smooth float32 array of ``--size-mib``
MiB (compressible, like real measurements) plus a few small objects, then
alternates ``joblib.load`` and ``codecpickle.load`` of the same file and
prints the best wall time of each and their ratio.  Before each timed load
the previous result is freed and twice the payload is touched and freed
again, so both readers start from the same state of the allocator (memory
freed a moment ago is slow to touch again on these VMs, see DESIGN.md).
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

import joblib
import numpy as np

import codecpickle

MiB = 1 << 20


def make_object(size_mib: int) -> dict[str, Any]:
    count = size_mib * MiB // 4
    smooth = np.sin(np.linspace(0.0, 200.0, count, dtype=np.float32)) * 1000.0
    return {
        "signal": smooth.astype(np.float32),
        "labels": np.arange(1000),
        "meta": {"name": "benchmark", "units": "mV"},
    }


def settle(nbytes: int) -> None:
    gc.collect()
    scratch = np.ones(2 * nbytes // 8)  # touch, then free, twice the payload
    del scratch
    gc.collect()


def best_time(load: Callable[[], Any], nbytes: int, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        settle(nbytes)
        start = time.perf_counter()
        result = load()
        times.append(time.perf_counter() - start)
        del result
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="16 MiB, one round")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--size-mib", type=int, default=512)
    args = parser.parse_args()
    size = 16 if args.quick else args.size_mib
    repeat = 1 if args.quick else args.repeat
    obj = make_object(size)
    nbytes = obj["signal"].nbytes
    print(f"joblib {joblib.__version__}, numpy {np.__version__}, {os.cpu_count()} CPUs")
    print(f"object: {nbytes / MiB:.0f} MiB float32 array + small objects; best of {repeat}\n")
    print(f"{'file':<22}{'size MiB':>10}{'joblib.load s':>15}{'codecpickle s':>15}{'ratio':>8}")
    with tempfile.TemporaryDirectory() as folder:
        for label, compress in (("joblib uncompressed", 0), ("joblib zlib 3", 3)):
            path = os.path.join(folder, f"data-{compress}.joblib")
            joblib.dump(obj, path, compress=compress)
            # Same bytes back from both readers.
            assert np.array_equal(codecpickle.load(path)["signal"], obj["signal"])
            joblib_times, codecpickle_times = [], []
            for _ in range(repeat):  # alternate, so drift affects both
                joblib_times += best_time(lambda p=path: joblib.load(p), nbytes, 1)
                codecpickle_times += best_time(lambda p=path: codecpickle.load(p), nbytes, 1)
            jl, cp = min(joblib_times), min(codecpickle_times)
            file_mib = os.path.getsize(path) / MiB
            print(f"{label:<22}{file_mib:>10.1f}{jl:>15.3f}{cp:>15.3f}{jl / cp:>7.2f}x")
            if compress == 0:
                mapped = best_time(lambda p=path: codecpickle.load(p, mmap_mode="r"), 0, repeat)
                joblib_mapped = best_time(lambda p=path: joblib.load(p, mmap_mode="r"), 0, repeat)
                print(
                    f"{'  mmap_mode=r':<22}{'':>10}{min(joblib_mapped):>15.4f}"
                    f"{min(mapped):>15.4f}"
                )
            os.remove(path)


if __name__ == "__main__":
    main()
