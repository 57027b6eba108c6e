"""``codecpickle.inspect`` on a large compressed file, against a full load.

    python benchmarks/inspect_large.py [--gib 1.0] [--codec zstd] [--keep PATH]

Writes (or reuses, with ``--keep``) a dict of arrays holding ``--gib`` GiB
of raw data (smooth float64, float32 and int64 ids, with a Fortran-ordered
array and a few small ones) compressed with ``--codec``, then times
``inspect`` (cold and warm) and a full ``load`` of it, and the bytes each
read from the file (``rchar`` from
``/proc/self/io``, Linux only).  ``inspect`` reads the header, the opcode
chunks, each payload's chunk headers and the END record, and seeks over
everything else.  ``--pickles`` also times a restricted load of 300,000
small dicts against a scan of the same opcode stream, the cost a scan
before every restricted load would add.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

import codecpickle


def _rchar() -> int:
    with open("/proc/self/io") as handle:
        for line in handle:
            if line.startswith("rchar:"):
                return int(line.split()[1])
    raise RuntimeError("no rchar in /proc/self/io")


def _objects(gib: float) -> dict[str, Any]:
    total = int(gib * (1 << 30))
    rng = np.random.default_rng(0)
    n = total // 28 // 1024 * 1024  # 8 + 8 + 8 + 4 bytes of arrays per n
    smooth = np.cumsum(rng.normal(size=n)).round(3)
    return {
        "smooth_f8": smooth,
        "smooth_f4": smooth[: 2 * n].astype(np.float32).repeat(2)[: 2 * n],
        "ids_i8": np.sort(rng.integers(0, 1 << 40, n)),
        "fortran": np.asfortranarray(smooth.reshape(-1, 1024)[:, :512].copy()),
        "small": [np.arange(i, dtype=np.int32) for i in range(1, 200)],
        "meta": {"name": "bench", "rows": n},
    }


def _timed(call: Any) -> tuple[float, int, Any]:
    before = _rchar()
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, _rchar() - before, result


def _cpu(call: Any) -> float:
    start = time.process_time()
    call()
    return time.process_time() - start


def _drop_cache(path: Path) -> None:
    # Best effort: ask the kernel to forget this file's pages.
    with open(path, "rb") as handle:
        os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--codec", default="zstd")
    parser.add_argument("--keep", type=Path, default=None)
    parser.add_argument("--pickles", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "large.cpkl"
        if not path.exists():
            obj = _objects(args.gib)
            raw = sum(a.nbytes for a in obj.values() if isinstance(a, np.ndarray))
            start = time.perf_counter()
            codecpickle.dump(obj, path, compress=args.codec)
            print(f"dump: {raw / 2**30:.2f} GiB of arrays in {time.perf_counter() - start:.1f} s")
            del obj
        size = path.stat().st_size
        print(f"file: {size / 2**20:.1f} MiB ({args.codec})")
        _drop_cache(path)
        cold, cold_read, found = _timed(lambda: codecpickle.inspect(path))
        warm, _, _ = _timed(lambda: codecpickle.inspect(path))
        (obj_info,) = found.objects
        print(
            f"inspect: {cold:.3f} s cold, {warm:.3f} s warm; read {cold_read} bytes "
            f"({cold_read / size:.5%} of the file); {len(obj_info.arrays)} arrays, "
            f"{len(obj_info.payloads)} payloads, "
            f"{sum(p.chunks for p in obj_info.payloads)} payload chunks"
        )
        _drop_cache(path)
        load_time, load_read, loaded = _timed(lambda: codecpickle.load(path))
        del loaded
        print(f"load: {load_time:.3f} s; read {load_read} bytes")
        print(f"inspect/load time: {warm / load_time:.5f}")

    if args.pickles:
        # A scan of the opcodes alone (no payload records in this stream).
        import pickle

        from codecpickle._scan import scan_opcodes

        dicts = [{"id": i, "name": f"n{i}", "score": i * 0.5, "tags": ["a", "b"]}
                 for i in range(300_000)]
        data = codecpickle.dumps(dicts, compress=args.codec)
        opcodes = pickle.dumps(dicts, protocol=5)
        restricted = scan = float("inf")
        for _ in range(3):  # alternating, best of 3 each, in CPU seconds (a busy machine)
            # Trusted input, raised budget: the work budget for hostile
            # streams (docs/security.md, Budgets) refuses these dicts at
            # high compression levels, where they take more work per input
            # byte than it allows.
            restricted = min(restricted, _cpu(
                lambda: codecpickle.loads(data, safe=True, max_buffer_size=1 << 30)))
            scan = min(scan, _cpu(lambda: scan_opcodes(opcodes)))
        print(
            f"300k dicts: restricted load {restricted:.3f} s CPU, scan of its opcodes {scan:.3f} s "
            f"(+{scan / restricted:.0%} if every restricted load scanned first)"
        )


if __name__ == "__main__":
    main()
