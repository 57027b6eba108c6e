"""Many threads dumping and loading at once, and readers racing a writer
that replaces the file they read: every call succeeds with correct data."""

from __future__ import annotations

import io
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

import codecpickle
from tests.conftest import assert_same

CODECS = [None, "zlib", "lz4", "zstd", "bz2", "lzma", "gzip"]


def make_object(seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    return {
        "seed": seed,
        "array": rng.random(20_000 + seed),
        "ints": rng.integers(0, 10, (100, 50 + seed % 7)),
        "rows": [{"i": i, "s": str(i)} for i in range(200)],
    }


def test_threads_dump_and_load_different_objects(tmp_path: Path) -> None:
    def round_trip(seed: int) -> None:
        obj = make_object(seed)
        compress = CODECS[seed % len(CODECS)]
        path = tmp_path / f"{seed}.cpkl"
        for _ in range(3):
            codecpickle.dump(obj, path, compress=compress, threads=2)
            assert_same(codecpickle.load(path, threads=2), obj)
            data = codecpickle.dumps(obj, compress=compress)
            assert_same(codecpickle.loads(data, safe=True), obj)
            assert_same(codecpickle.load(io.BytesIO(data)), obj)

    with ThreadPoolExecutor(max_workers=16) as pool:
        for future in [pool.submit(round_trip, seed) for seed in range(32)]:
            future.result()


def test_readers_while_a_writer_replaces_the_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.cpkl"
    versions = [make_object(seed) for seed in range(4)]
    codecpickle.dump(versions[0], path, compress="zstd", fsync=False)
    stop = threading.Event()
    loads_done = [0]

    def writer() -> None:
        index = 0
        while not stop.is_set():
            index = (index + 1) % len(versions)
            codecpickle.dump(versions[index], path, compress=CODECS[index], fsync=False)

    def reader() -> None:
        for _ in range(40):
            loaded = codecpickle.load(path)
            # Whatever version it caught, it caught all of it.
            assert_same(loaded, versions[loaded["seed"]])
            loads_done[0] += 1

    write_thread = threading.Thread(target=writer)
    write_thread.start()
    try:
        with ThreadPoolExecutor(max_workers=6) as pool:
            for future in [pool.submit(reader) for _ in range(6)]:
                future.result()
    finally:
        stop.set()
        write_thread.join()
    assert loads_done[0] == 240
    assert [p.name for p in tmp_path.iterdir()] == ["shared.cpkl"]
