"""Reading a 1 MiB slice of one array out of a large compressed file.

    python benchmarks/lazy_slice.py                 # 1 GiB of arrays, zstd-3
    python benchmarks/lazy_slice.py --gib 2 --compress lz4

Writes a dict of float64 arrays (rounded random walks: they compress about
3x with zstd) to a temporary file, then measures, each in a fresh process
(so no decoded data or allocator state is shared):

- ``load``: ``codecpickle.load(path)``, the whole object;
- ``lazy``: ``codecpickle.open(path)`` + ``load(lazy=True)`` + a 1 MiB slice
  of one array from the middle of the file;
- ``index``: ``read_index(path)`` alone.

For each: wall time, bytes read from the file and read calls made (counted
by a wrapper around the file object).  The file is in the page cache for
all of them (it was just written): the counts, not the times, are what a
remote or cold read would pay for.  Prints a markdown table and JSON.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

MiB = 1 << 20
ARRAY_MIB = 64


class CountingFile(io.RawIOBase):
    """A read-only file that counts read calls and bytes returned."""

    def __init__(self, path: str) -> None:
        self._file = open(path, "rb", buffering=0)  # noqa: SIM115 (closed in close())
        self.reads = 0
        self.bytes = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def readinto(self, buffer: Any) -> int:
        self.reads += 1
        count = self._file.readinto(buffer)
        self.bytes += count
        return count

    def close(self) -> None:
        self._file.close()
        super().close()


def make(path: str, gib: float, compress: str) -> dict[str, Any]:
    import numpy as np

    import codecpickle

    rng = np.random.default_rng(0)
    count = max(1, int(gib * 1024 / ARRAY_MIB))
    rows = ARRAY_MIB * MiB // 8
    arrays = {
        f"a{i:03d}": np.cumsum(rng.standard_normal(rows)).round(2) for i in range(count)
    }
    start = time.perf_counter()
    codecpickle.dump(arrays, path, compress=compress)
    return {
        "arrays": count,
        "raw_bytes": count * rows * 8,
        "file_bytes": os.path.getsize(path),
        "dump_s": round(time.perf_counter() - start, 2),
    }


def measure(path: str, what: str) -> dict[str, Any]:
    import numpy as np

    import codecpickle
    from codecpickle._index import read_index

    file = CountingFile(path)
    start = time.perf_counter()
    if what == "load":
        obj = codecpickle.load(file)
        name = sorted(obj)[len(obj) // 2]
        checksum = float(obj[name][: MiB // 8].sum())
    elif what == "lazy":
        with codecpickle.open(file) as opened:
            obj = opened.load(lazy=True)
            name = sorted(obj)[len(obj) // 2]
            rows = len(obj[name])
            middle = rows // 2
            piece = obj[name][middle : middle + MiB // 8]  # 1 MiB of float64
            assert isinstance(piece, np.ndarray)
            assert piece.nbytes == MiB
            checksum = float(piece.sum())
    else:
        index = read_index(file)
        checksum = float(len(index.payloads))
    elapsed = time.perf_counter() - start
    file.close()
    return {"what": what, "s": round(elapsed, 4), "bytes_read": file.bytes,
            "reads": file.reads, "check": checksum}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gib", type=float, default=1.0, help="raw size of the arrays")
    parser.add_argument("--compress", default="zstd:3")
    parser.add_argument("--measure", nargs=2, metavar=("PATH", "WHAT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(*args.measure)))
        return
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        path = os.path.join(tmp, "arrays.cpkl")
        made = make(path, args.gib, args.compress)
        rows = []
        for what in ("index", "lazy", "load"):
            out = subprocess.run(
                [sys.executable, __file__, "--measure", path, what],
                capture_output=True, text=True, check=True,
            ).stdout
            rows.append(json.loads(out))
    print(f"{made['arrays']} arrays, {made['raw_bytes'] / MiB:.0f} MiB raw, "
          f"{made['file_bytes'] / MiB:.0f} MiB file ({args.compress}), dumped in "
          f"{made['dump_s']} s\n")
    print("| operation | time (s) | bytes read | read calls |")
    print("|---|---:|---:|---:|")
    labels = {"index": "read_index", "lazy": "open + lazy load + 1 MiB slice",
              "load": "load (whole object)"}
    for row in rows:
        print(f"| {labels[row['what']]} | {row['s']} | {row['bytes_read']:,} | {row['reads']} |")
    print()
    print(json.dumps({"file": made, "compress": args.compress, "rows": rows}))


if __name__ == "__main__":
    main()
