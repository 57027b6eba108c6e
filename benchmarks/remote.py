"""Dump and load throughput to an S3 API server on loopback against a local
file, side by side in one run.

The server is moto's (``python -m moto.server``) in a separate process on
127.0.0.1, so its work does not share this process's GIL; it keeps objects
in memory.  Numbers therefore show what codecpickle and s3fs cost on top of
the network path, not what a real store delivers.

    python benchmarks/remote.py [--mib 100] [--repeat 3] [--codec zstd]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import codecpickle


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_server() -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
            return server, endpoint
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("moto server did not start")


def _timed(repeat: int, action: Callable[[], Any]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _s3fs_alone(options: dict[str, Any], array: np.ndarray) -> tuple[Callable[[], Any], ...]:
    """The same bytes through s3fs directly: a multipart upload of 16 MiB
    parts completed at the end, and reads of 16 MiB with 8 MiB blocks (what
    codecpickle does, without the container and the pickler)."""
    import s3fs

    fs = s3fs.S3FileSystem(**options)
    data = memoryview(array).cast("B")
    piece = 16 << 20

    def upload() -> None:
        file = fs.open("bench/raw", "wb", autocommit=False, block_size=piece)
        for start in range(0, data.nbytes, piece):
            file.write(data[start : start + piece])
        file.close()
        file.commit()

    def download() -> None:
        with fs.open("bench/raw", "rb", block_size=8 << 20) as file:
            while file.read(piece):
                pass

    return upload, download


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=100, help="size of the array (MiB)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--codec", default=None, help="compress= for dump (default: none)")
    args = parser.parse_args()

    # Dummy credentials, no instance-metadata lookups, nothing from ~/.aws.
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=os.path.join(tempfile.gettempdir(), "codecpickle-bench-no-aws"),
        AWS_SHARED_CREDENTIALS_FILE=os.path.join(tempfile.gettempdir(), "codecpickle-bench-no-aws"),
        NO_PROXY="127.0.0.1",
    )
    obj = {"a": np.random.default_rng(0).random(args.mib * (1 << 20) // 8)}
    size_mb = obj["a"].nbytes / 1e6
    server, endpoint = _start_server()
    try:
        import boto3

        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="bench")
        options = {"endpoint_url": endpoint, "key": "bench", "secret": "bench"}
        url = "s3://bench/obj.cpkl"
        with tempfile.TemporaryDirectory() as work:
            path = Path(work) / "obj.cpkl"
            rows = [
                (
                    "local file, fsync",
                    lambda: codecpickle.dump(obj, path, args.codec),
                    lambda: codecpickle.load(path),
                ),
                (
                    "local file, no fsync",
                    lambda: codecpickle.dump(obj, path, args.codec, fsync=False),
                    lambda: codecpickle.load(path),
                ),
                (
                    "s3:// loopback (moto)",
                    lambda: codecpickle.dump(obj, url, args.codec, storage_options=options),
                    lambda: codecpickle.load(url, storage_options=options),
                ),
            ]
            rows.append(("s3fs alone (same bytes)", *_s3fs_alone(options, obj["a"])))
            print(f"{args.mib} MiB float64, compress={args.codec}, median of {args.repeat}")
            print(f"{'target':<24}{'dump s':>9}{'MB/s':>8}{'load s':>9}{'MB/s':>8}")
            for name, dump, load in rows:
                dump_s = _timed(args.repeat, dump)
                load_s = _timed(args.repeat, load)
                print(
                    f"{name:<24}{dump_s:>9.2f}{size_mb / dump_s:>8.0f}"
                    f"{load_s:>9.2f}{size_mb / load_s:>8.0f}"
                )
    finally:
        server.kill()
        server.wait()


if __name__ == "__main__":
    main()
