"""codecpickle end to end: dump and load a realistic object with every codec.

Builds a dataset like the ones people persist (sensor signals, labels, a
pandas DataFrame, a list of records, metadata), then for each codec dumps it
to a file, loads it back, checks that it is identical, and prints the file
size, compression ratio and timings.  Finishes with a memory-mapped load.

Run: ``bash scripts/demo.sh`` (installs into .venv first), or
``python examples/quickstart.py`` in an environment with codecpickle.
"""

from __future__ import annotations

import pickle
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import codecpickle


def build_dataset() -> dict:
    rng = np.random.default_rng(2026)
    t = np.arange(4_000_000, dtype=np.float64) / 1000.0
    dataset: dict = {
        "signal": (np.sin(t) + 0.01 * rng.standard_normal(t.size)).astype(np.float32),
        "labels": rng.integers(0, 10, 2_000_000, dtype=np.int64),
        "weights": np.asfortranarray(rng.standard_normal((500, 400))),
        "every_third": t[::3],
        "records": [{"id": i, "name": f"user{i}", "score": i * 0.5} for i in range(50_000)],
        "meta": {"source": "quickstart", "version": 1},
    }
    try:
        import pandas as pd

        dataset["frame"] = pd.DataFrame(
            {
                "when": pd.date_range("2026-01-01", periods=200_000, freq="s"),
                "sensor": pd.Categorical(rng.choice(["a", "b", "c"], 200_000)),
                "value": rng.standard_normal(200_000),
            }
        )
    except ImportError:
        pass
    return dataset


def same(a: object, b: object) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    if hasattr(a, "equals"):  # pandas
        return bool(a.equals(b))
    return a == b


def main() -> int:
    dataset = build_dataset()
    raw_size = len(pickle.dumps(dataset, protocol=5))
    print(f"dataset: {raw_size / 2**20:.1f} MiB as a plain pickle\n")
    header = f"{'codec':<10}{'size MiB':>10}{'ratio':>8}{'dump s':>9}{'load s':>9}  identical"
    print(header)
    print("-" * len(header))
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for compress in (None, "lz4", "zstd", ("zstd", 9), "zlib", "gzip", "bz2", ("lzma", 1)):
            path = Path(tmp) / "dataset.cpkl"
            start = time.perf_counter()
            codecpickle.dump(dataset, path, compress=compress, fsync=False)
            dumped = time.perf_counter()
            loaded = codecpickle.load(path)
            done = time.perf_counter()
            size = path.stat().st_size
            identical = same(dataset, loaded)
            ok &= identical
            name = "none" if compress is None else (
                compress if isinstance(compress, str) else f"{compress[0]}:{compress[1]}"
            )
            print(
                f"{name:<10}{size / 2**20:>10.1f}{raw_size / size:>8.2f}"
                f"{dumped - start:>9.3f}{done - dumped:>9.3f}  {identical}"
            )
        path = Path(tmp) / "dataset.cpkl"
        codecpickle.dump(dataset, path, compress=None)
        start = time.perf_counter()
        mapped = codecpickle.load(path, mmap_mode="r")
        elapsed = time.perf_counter() - start
        writeable = mapped["signal"].flags.writeable
        print(
            f"\nmmap_mode='r': loaded in {elapsed:.3f} s; 'signal' is a view of the file "
            f"(writeable={writeable}), identical={same(dataset, mapped)}"
        )
        del mapped
    print("\navailable codecs:", ", ".join(codecpickle.available_codecs()))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
