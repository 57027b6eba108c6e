"""Reading a 1 MiB slice of one array out of a large compressed file, from
a local file and from an S3 API server on loopback.

    python benchmarks/lazy_slice.py                  # 2 GiB of arrays, zstd-3, local + S3
    python benchmarks/lazy_slice.py --gib 0.25 --compress lz4 --no-s3

Writes a dict of float64 arrays (rounded random walks: they compress about
3x with zstd) to a temporary file, uploads the same bytes to moto's S3
server on 127.0.0.1 (``tests/s3_server.py``: a real HTTP S3 API in a thread
of this process, objects kept in memory), then measures, each in a fresh
process (so no decoded data, connection or allocator state is shared):

- ``connect`` (S3 only): one ``HeadObject`` request from a new process, the
  fixed cost (client set-up) that every S3 row includes;
- ``index``: ``read_index`` alone (local only);
- ``inspect``: ``codecpickle.inspect`` of the file or URL;
- ``lazy``: ``codecpickle.open`` + ``load(lazy=True)`` + a 1 MiB slice of
  one array from the middle of the file;
- ``load``: ``codecpickle.load``, the whole object.

For each: wall time, bytes read and read calls made.  Locally, reads are
counted by a wrapper around the file object (the file is in the page cache:
it was just written).  Over S3, requests are counted where s3fs makes them
(``S3FileSystem._call_s3``: every API call, ``HeadObject`` included) and
bytes where it fetches ranges (``S3File._fetch_range``).  The loopback
server has no network latency and keeps objects in memory: the counts, not
the S3 times, are what a real store would charge.  Prints a markdown table
and JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

MiB = 1 << 20
ARRAY_MIB = 64
ROOT = Path(__file__).resolve().parent.parent
# The measuring processes find the loopback server's options here.
_S3_OPTIONS_ENV = "CODECPICKLE_BENCH_S3_OPTIONS"
BUCKET = "bench-lazy"
KEY = "arrays.cpkl"


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


class S3Counter:
    """Counts what s3fs asks of the server in this process: API calls by
    name, and the bytes of the ranges it fetches."""

    def __init__(self) -> None:
        import s3fs.core

        self.calls: dict[str, int] = {}
        self.bytes = 0
        call_s3 = s3fs.core.S3FileSystem._call_s3
        fetch_range = s3fs.core.S3File._fetch_range
        counter = self

        async def counted_call(fs: Any, method: Any, *args: Any, **kwargs: Any) -> Any:
            name = method if isinstance(method, str) else getattr(method, "__name__", "?")
            counter.calls[name] = counter.calls.get(name, 0) + 1
            return await call_s3(fs, method, *args, **kwargs)

        def counted_fetch(file: Any, start: int, end: int) -> bytes:
            data = fetch_range(file, start, end)
            counter.bytes += len(data)
            return data

        s3fs.core.S3FileSystem._call_s3 = counted_call
        s3fs.core.S3File._fetch_range = counted_fetch

    @property
    def requests(self) -> int:
        return sum(self.calls.values())


def make(path: str, gib: float, compress: str, array_mib: int = ARRAY_MIB) -> dict[str, Any]:
    import numpy as np

    import codecpickle

    rng = np.random.default_rng(0)
    count = max(1, int(gib * 1024 / array_mib))
    rows = array_mib * MiB // 8
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


def _work(target: Any, what: str, options: dict[str, Any] | None) -> float:
    """Do ``what`` on ``target`` (a file object or URL); a checksum of
    what was read, so nothing is optimised away."""
    import numpy as np

    import codecpickle
    from codecpickle._index import read_index

    if what == "load":
        obj = codecpickle.load(target, storage_options=options)
        name = sorted(obj)[len(obj) // 2]
        return float(obj[name][: MiB // 8].sum())
    if what == "lazy":
        with codecpickle.open(target, storage_options=options) as opened:
            obj = opened.load(lazy=True)
            name = sorted(obj)[len(obj) // 2]
            middle = len(obj[name]) // 2
            piece = obj[name][middle : middle + MiB // 8]  # 1 MiB of float64
            assert isinstance(piece, np.ndarray)
            assert piece.nbytes == MiB
            return float(piece.sum())
    if what == "connect":
        # One request (HeadObject) from a new process: the fixed cost of
        # reaching the store (client set-up included) in every row below.
        import fsspec

        fs, path = fsspec.core.url_to_fs(target, **(options or {}))
        return float(fs.info(path)["size"])
    if what == "inspect":
        found = codecpickle.inspect(target, storage_options=options)
        return float(len(found.objects[0].arrays))
    return float(len(read_index(target).payloads))


def measure(target: str, what: str) -> dict[str, Any]:
    """One measurement, in this (fresh) process (imports come first, so
    the times count the work only)."""
    import numpy  # noqa: F401

    import codecpickle
    import codecpickle._index  # noqa: F401

    if target.startswith("s3://"):
        import s3fs  # noqa: F401

        options = json.loads(os.environ[_S3_OPTIONS_ENV])
        counter = S3Counter()
        start = time.perf_counter()
        check = _work(target, what, options)
        elapsed = time.perf_counter() - start
        return {"what": what, "where": "s3", "s": round(elapsed, 4), "bytes_read": counter.bytes,
                "reads": counter.requests, "calls": counter.calls, "check": check}
    file = CountingFile(target)
    start = time.perf_counter()
    check = _work(file, what, None)
    elapsed = time.perf_counter() - start
    file.close()
    return {"what": what, "where": "local", "s": round(elapsed, 4), "bytes_read": file.bytes,
            "reads": file.reads, "check": check}


def _run(target: str, what: str, env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--measure", target, what],
        capture_output=True, text=True, check=False, env=env,
    )
    if out.returncode:
        raise RuntimeError(f"measuring {what} on {target} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout)


@contextlib.contextmanager
def _s3_copy(path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """The file uploaded to the loopback S3 server: its URL and the
    storage options that reach it."""
    import logging

    sys.path.insert(0, str(ROOT))
    from tests.s3_server import loopback_s3

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    with loopback_s3() as server:
        server.client.create_bucket(Bucket=BUCKET)
        server.client.upload_file(path, BUCKET, KEY)
        yield f"s3://{BUCKET}/{KEY}", server.storage_options()


LABELS = {
    "connect": "one HeadObject (client set-up included)",
    "index": "read_index",
    "inspect": "inspect",
    "lazy": "open + lazy load + 1 MiB slice",
    "load": "load (whole object)",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gib", type=float, default=2.0, help="raw size of the arrays")
    parser.add_argument("--compress", default="zstd:3")
    parser.add_argument("--array-mib", type=int, default=ARRAY_MIB, help="size of each array")
    parser.add_argument("--no-s3", action="store_true", help="measure the local file only")
    parser.add_argument("--measure", nargs=2, metavar=("TARGET", "WHAT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(*args.measure)))
        return
    rows = []
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        path = os.path.join(tmp, "arrays.cpkl")
        made = make(path, args.gib, args.compress, args.array_mib)
        env = dict(os.environ)
        for what in ("index", "inspect", "lazy", "load"):
            rows.append(_run(path, what, env))
        if not args.no_s3:
            with _s3_copy(path) as (url, options):
                # The server's environment (dummy credentials, no ~/.aws)
                # is in os.environ while it runs.
                env = {**os.environ, _S3_OPTIONS_ENV: json.dumps(options)}
                for what in ("connect", "inspect", "lazy", "load"):
                    rows.append(_run(url, what, env))
    print(f"{made['arrays']} arrays, {made['raw_bytes'] / MiB:.0f} MiB raw, "
          f"{made['file_bytes'] / MiB:.0f} MiB file ({args.compress}), dumped in "
          f"{made['dump_s']} s\n")
    print("| where | operation | time (s) | bytes read | reads / requests |")
    print("|---|---|---:|---:|---:|")
    for row in rows:
        print(f"| {row['where']} | {LABELS[row['what']]} | {row['s']} | "
              f"{row['bytes_read']:,} | {row['reads']} |")
    print()
    print(json.dumps({"file": made, "compress": args.compress, "rows": rows}))


if __name__ == "__main__":
    main()
