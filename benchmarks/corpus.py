"""Compression ratio and speed on real arrays, against plain zstd and blosc2.

    python benchmarks/corpus.py                       # table + benchmarks/corpus.json
    python benchmarks/corpus.py --only digits,camera  # a few arrays
    python benchmarks/corpus.py --quick               # small synthetic arrays (CI smoke run)

The corpus is arrays that ship inside installed packages (scikit-learn's
bundled datasets, a forest fitted on one of them, matplotlib's sample data,
scikit-image's bundled images; the last two are optional: ``pip install
codecpickle[bench]``) plus synthetic workloads (smooth float32, random,
rounded and sorted arrays).  For each array, side by side in one process:

- ``codecpickle``: ``dumps(array, compress="zstd")`` (level 3, ``filters="auto"``,
  the defaults) and ``loads``; ``filters=None`` too, for reference;
- ``zstd-3``: one zstd frame of the array's bytes (one thread);
- ``blosc2``: ``blosc2.compress2`` with its defaults (zstd level 1, byte
  shuffle) and with zstd level 5 + byte shuffle, the element size as typesize.

Ratio is the array's bytes over the output's bytes (codecpickle's include its
header and the pickle around the array).  Speeds are MB/s of array bytes, the
best of a few repeats (codecpickle and blosc2 on all cores, zstd-3 on one).

A second table weighs the filters themselves: each array cut in 4 MiB chunks,
every chunk through one filter and zstd-3: none, byte shuffle, delta (then
shuffle), bit shuffle (numpy; not in codecpickle), and the per-chunk best.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
MiB = 1 << 20
CHUNK = 4 * MiB


# -- the corpus ------------------------------------------------------------------


def _sklearn_arrays() -> dict[str, np.ndarray]:
    from sklearn import datasets
    from sklearn.ensemble import RandomForestClassifier

    out = {
        "sklearn digits.data": datasets.load_digits().data,
        "sklearn iris.data": datasets.load_iris().data,
        "sklearn diabetes.data": datasets.load_diabetes().data,
        "sklearn breast_cancer.data": datasets.load_breast_cancer().data,
        "sklearn wine.data": datasets.load_wine().data,
    }
    digits = datasets.load_digits()
    forest = RandomForestClassifier(n_estimators=50, random_state=0, n_jobs=1)
    forest.fit(digits.data, digits.target)
    trees = [estimator.tree_ for estimator in forest.estimators_]
    # What a pickled forest carries per tree, concatenated over the trees.
    state = [tree.__getstate__() for tree in trees]
    out["forest tree nodes"] = np.concatenate([s["nodes"] for s in state])
    out["forest tree values"] = np.concatenate([s["values"].ravel() for s in state])
    return out


def _matplotlib_arrays() -> dict[str, np.ndarray]:
    import matplotlib
    import matplotlib.pyplot as plt

    data = Path(matplotlib.get_data_path()) / "sample_data"
    with gzip.open(data / "s1045.ima.gz") as f:
        mri = np.frombuffer(f.read(), np.uint16).reshape(256, 256)
    return {
        "mpl eeg.dat": np.fromfile(data / "eeg.dat", dtype=np.float64).reshape(800, 4),
        "mpl MRI s1045": mri,
        "mpl membrane.dat": np.fromfile(data / "membrane.dat", dtype=np.float32),
        "mpl jacksboro DEM": np.load(data / "jacksboro_fault_dem.npz")["elevation"],
        "mpl topobathy": np.load(data / "topobathy.npz")["topo"],
        "mpl goog prices": np.load(data / "goog.npz")["price_data"],
        "mpl grace_hopper.jpg": np.asarray(plt.imread(data / "grace_hopper.jpg")),
    }


def _skimage_arrays() -> dict[str, np.ndarray]:
    import skimage.data as images

    return {
        "skimage camera": images.camera(),
        "skimage astronaut": images.astronaut(),
        "skimage coffee": images.coffee(),
        "skimage moon": images.moon(),
        "skimage hubble": images.hubble_deep_field(),
        "skimage retina": images.retina(),
        "skimage cell": images.cell(),
        "skimage lfw faces": images.lfw_subset(),
        "skimage motorcycle disparity": images.stereo_motorcycle()[2],
    }


def _synthetic_arrays(quick: bool) -> dict[str, np.ndarray]:
    size = (2 if quick else 16) * MiB
    rng = np.random.default_rng(0)
    t = np.arange(size // 4, dtype=np.float32)
    smooth = np.sin(t * np.float32(1e-4)) * np.float32(100.0)
    smooth += np.round(rng.standard_normal(t.size).astype(np.float32) * 4) / 64
    n = size // 8
    return {
        "synthetic smooth float32": smooth,
        "synthetic random float64": rng.standard_normal(n),
        # A sensor-like signal stored with two decimals.
        "synthetic rounded float64": np.round(20 + 5 * np.sin(np.arange(n) / 500.0)
                                              + rng.standard_normal(n), 2),
        "synthetic sorted int64": np.cumsum(rng.integers(1, 100, n)),
        "synthetic sin(x/1e5) float64": np.sin(np.arange(n) / 1e5),
    }


def corpus(quick: bool) -> dict[str, np.ndarray]:
    """Every array of the run, by name (packages that are missing are skipped
    with a note on stderr)."""
    arrays: dict[str, np.ndarray] = {}
    if not quick:
        for source in (_sklearn_arrays, _matplotlib_arrays, _skimage_arrays):
            try:
                arrays.update(source())
            except ImportError as exc:
                print(f"skipped {source.__name__}: {exc}", file=sys.stderr)
    arrays.update(_synthetic_arrays(quick))
    return {name: np.ascontiguousarray(a) for name, a in arrays.items()}


# -- the methods -----------------------------------------------------------------

Method = tuple[Callable[[np.ndarray], Any], Callable[[Any, np.ndarray], Any]]


def _bytes(array: np.ndarray) -> np.ndarray:
    """The array's memory as a flat uint8 array (no copy)."""
    return array.reshape(-1).view(np.uint8)


def _methods() -> dict[str, Method]:
    import blosc2
    import zstandard

    import codecpickle

    def blosc(clevel: int | None) -> Method:
        def compress(a: np.ndarray) -> bytes:
            typesize = a.itemsize if a.itemsize <= blosc2.MAX_TYPESIZE else 1
            if clevel is None:
                return blosc2.compress2(_bytes(a), typesize=typesize)
            return blosc2.compress2(
                _bytes(a), typesize=typesize, codec=blosc2.Codec.ZSTD, clevel=clevel,
                filters=[blosc2.Filter.SHUFFLE],
            )

        def decompress(data: bytes, a: np.ndarray) -> Any:
            out = np.empty_like(a)
            blosc2.decompress2(data, dst=_bytes(out))
            return out

        return compress, decompress

    compressor = zstandard.ZstdCompressor(level=3)
    decompressor = zstandard.ZstdDecompressor()
    return {
        "codecpickle": (lambda a: codecpickle.dumps(a, compress="zstd"),
                        lambda data, a: codecpickle.loads(data)),
        "codecpickle filters=None": (
            lambda a: codecpickle.dumps(a, compress="zstd", filters=None),
            lambda data, a: codecpickle.loads(data),
        ),
        "zstd-3": (lambda a: compressor.compress(_bytes(a)),
                   lambda data, a: decompressor.decompress(data)),
        "blosc2 default": blosc(None),
        "blosc2 zstd-5+shuffle": blosc(5),
    }


PEERS = ("zstd-3", "blosc2 default", "blosc2 zstd-5+shuffle")


def _best_time(call: Callable[[], Any], budget: float = 1.0, repeats: int = 5) -> float:
    best = math.inf
    spent = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        took = time.perf_counter() - start
        best = min(best, took)
        spent += took
        if spent > budget:
            break
    return best


def measure(array: np.ndarray, methods: dict[str, Method]) -> dict[str, dict[str, float]]:
    """Ratio and dump/load MB/s of every method on one array (round trips checked)."""
    out = {}
    for name, (compress, decompress) in methods.items():
        data = compress(array)
        back = np.asarray(decompress(data, array))
        same = back.tobytes() if back.dtype == array.dtype else bytes(memoryview(back))
        assert same == array.tobytes(), f"{name} did not round-trip"
        dump = _best_time(functools.partial(compress, array))
        load = _best_time(functools.partial(decompress, data, array))
        out[name] = {
            "ratio": array.nbytes / len(data),
            "dump_MBps": array.nbytes / dump / 1e6,
            "load_MBps": array.nbytes / load / 1e6,
        }
    return out


# -- the filters, weighed ----------------------------------------------------------


def bitshuffle(chunk: np.ndarray, itemsize: int) -> np.ndarray:
    """Bit shuffle (bit ``k`` of every element, for each k) of whole
    elements, in numpy; the tail that is not a whole element is appended."""
    raw = chunk.view(np.uint8)
    whole = raw.size - raw.size % (itemsize * 8)
    elements = raw[:whole].reshape(-1, itemsize)
    bits = np.unpackbits(elements, axis=1, bitorder="little")  # (n, 8 * itemsize)
    planes = np.packbits(np.ascontiguousarray(bits.T), axis=1, bitorder="little")
    return np.concatenate([planes.ravel(), raw[whole:]])


def weigh_filters(array: np.ndarray) -> dict[str, float]:
    """zstd-3 ratio of the array in 4 MiB chunks, every chunk through one
    filter (and the per-chunk best), plus bit shuffle's speed."""
    import zstandard

    from codecpickle import _filters

    compressor = zstandard.ZstdCompressor(level=3)
    raw = _bytes(array)
    itemsize = array.itemsize
    totals = {"none": 0, "shuffle": 0, "delta": 0, "bitshuffle": 0, "best of 3": 0}
    bit_time = 0.0
    for start in range(0, raw.size, CHUNK):
        chunk = raw[start : start + CHUNK]
        sizes = {"none": len(compressor.compress(chunk))}
        for name, filter_id in (("shuffle", _filters.SHUFFLE), ("delta", _filters.DELTA)):
            if _filters.valid_for(filter_id, itemsize):
                out = np.empty_like(chunk)
                _filters.encode(filter_id, memoryview(chunk), memoryview(out), itemsize)
                sizes[name] = len(compressor.compress(out))
            else:
                sizes[name] = sizes["none"]
        begin = time.perf_counter()
        shuffled = bitshuffle(chunk, itemsize)
        bit_time += time.perf_counter() - begin
        sizes["bitshuffle"] = len(compressor.compress(shuffled))
        sizes["best of 3"] = min(sizes["none"], sizes["shuffle"], sizes["delta"])
        for name, size in sizes.items():
            totals[name] += size
    result = {name: raw.size / size for name, size in totals.items()}
    result["bitshuffle_MBps"] = raw.size / bit_time / 1e6 if bit_time else 0.0
    return result


# -- report ------------------------------------------------------------------------


def geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def table(results: dict[str, Any]) -> str:
    lines = [
        "| array | dtype, shape | MiB | codecpickle | filters=None | zstd-3 | blosc2 default | "
        "blosc2 zstd-5+shuffle | /best peer | cp dump MB/s | cp load MB/s | zstd-3 dump/load | "
        "blosc2 z5 dump/load |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in results["arrays"].items():
        m = row["methods"]
        best = max(m[p]["ratio"] for p in PEERS)
        lines.append(
            f"| {name} | {row['dtype']} {tuple(row['shape'])} | {row['nbytes'] / MiB:.2f} | "
            + " | ".join(f"{m[k]['ratio']:.2f}" for k in (
                "codecpickle", "codecpickle filters=None", *PEERS))
            + f" | **{m['codecpickle']['ratio'] / best:.3f}** | "
            f"{m['codecpickle']['dump_MBps']:.0f} | {m['codecpickle']['load_MBps']:.0f} | "
            f"{m['zstd-3']['dump_MBps']:.0f}/{m['zstd-3']['load_MBps']:.0f} | "
            f"{m['blosc2 zstd-5+shuffle']['dump_MBps']:.0f}/"
            f"{m['blosc2 zstd-5+shuffle']['load_MBps']:.0f} |"
        )
    summary = results["summary"]
    lines.append("")
    lines.append(
        f"Geometric mean over {summary['count']} arrays of codecpickle / best peer: "
        f"**{summary['geomean_vs_best_peer']:.3f}** (min {summary['min_vs_best_peer']:.3f}, "
        f"{summary['at_least_0.98']} of {summary['count']} at >= 0.98); "
        "against each peer alone: "
        + ", ".join(f"{k} {v:.3f}" for k, v in summary["geomean_vs_peer"].items())
        + f"; filters=None against the best peer: {summary['geomean_none_vs_best_peer']:.3f}."
    )
    lines += [
        "",
        "| array | none | shuffle | delta | bit shuffle | best of none/shuffle/delta per chunk | "
        "bit shuffle MB/s (numpy) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in results["arrays"].items():
        f = row["filters"]
        lines.append(
            f"| {name} | {f['none']:.2f} | {f['shuffle']:.2f} | {f['delta']:.2f} | "
            f"{f['bitshuffle']:.2f} | {f['best of 3']:.2f} | {f['bitshuffle_MBps']:.0f} |"
        )
    return "\n".join(lines)


def summarise(arrays: dict[str, Any]) -> dict[str, Any]:
    rel = []
    none_rel = []
    per_peer: dict[str, list[float]] = {p: [] for p in PEERS}
    for row in arrays.values():
        m = row["methods"]
        best = max(m[p]["ratio"] for p in PEERS)
        rel.append(m["codecpickle"]["ratio"] / best)
        none_rel.append(m["codecpickle filters=None"]["ratio"] / best)
        for p in PEERS:
            per_peer[p].append(m["codecpickle"]["ratio"] / m[p]["ratio"])
    return {
        "count": len(rel),
        "geomean_vs_best_peer": geomean(rel),
        "min_vs_best_peer": min(rel),
        "at_least_0.98": sum(r >= 0.98 for r in rel),
        "geomean_vs_peer": {p: geomean(v) for p, v in per_peer.items()},
        "geomean_none_vs_best_peer": geomean(none_rel),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small synthetic arrays only")
    parser.add_argument("--only", help="comma-separated substrings of array names")
    parser.add_argument("--json", type=Path, default=HERE / "corpus.json")
    args = parser.parse_args()
    arrays = corpus(args.quick)
    if args.only:
        wanted = args.only.split(",")
        arrays = {k: v for k, v in arrays.items() if any(w in k for w in wanted)}
    methods = _methods()
    results: dict[str, Any] = {"arrays": {}}
    for name, array in arrays.items():
        print(f"{name}: {array.dtype} {array.shape}", file=sys.stderr)
        results["arrays"][name] = {
            "dtype": str(array.dtype) if array.dtype.names is None else f"record{array.itemsize}",
            "shape": list(array.shape),
            "nbytes": array.nbytes,
            "methods": measure(array, methods),
            "filters": weigh_filters(array),
        }
    results["summary"] = summarise(results["arrays"])
    results["machine"] = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cpus": len(os.sched_getaffinity(0)),
    }
    args.json.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
