"""The benchmark workloads, built deterministically (fixed seeds).

Each workload has a full size (the numbers in RESULTS.md) and a quick size
(a CI smoke run).  Building the DataFrame and fitting the forest take a few
seconds, so those two are built once per run and cached as a plain pickle
that every case process loads; the others are cheap to rebuild and some
(the strided view) would not survive a pickle round trip unchanged.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

MiB = 1 << 20


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    build: Callable[[bool], Any]  # quick -> object
    #: Raw array bytes dominate: compare against write/readinto of the bytes.
    array_heavy: bool
    #: Slow to build: build once per run and cache as a pickle.
    cached: bool = False


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def random_f64(quick: bool) -> np.ndarray:
    n = (4 if quick else 512) * MiB // 8
    return _rng(1).standard_normal(n)


def random_f64_256(quick: bool) -> np.ndarray:
    n = (4 if quick else 256) * MiB // 8
    return _rng(7).standard_normal(n)


def smooth_f32(quick: bool) -> np.ndarray:
    n = (4 if quick else 512) * MiB // 4
    t = np.arange(n, dtype=np.float32)
    signal = np.sin(t * np.float32(1e-4)) * np.float32(100.0)
    # A little quantised noise: smooth but not trivially constant.
    signal += np.round(_rng(2).standard_normal(n).astype(np.float32) * 4) / 64
    return signal


def small_ints(quick: bool) -> np.ndarray:
    n = (2 if quick else 256) * MiB // 8
    return _rng(3).integers(0, 100, size=n, dtype=np.int64)


def list_of_dicts(quick: bool) -> list[dict[str, Any]]:
    n = 3_000 if quick else 300_000
    rng = _rng(4)
    scores = rng.random(n).tolist()
    counts = rng.integers(0, 1000, n).tolist()
    return [
        {"id": i, "name": f"user{i:07d}", "score": scores[i], "count": counts[i],
         "tags": ["a", "b"] if i % 3 else [], "active": bool(i % 2)}
        for i in range(n)
    ]


def mixed_arrays(quick: bool) -> dict[str, np.ndarray]:
    """200 1 MiB arrays of mixed dtypes, a Fortran-ordered and a strided
    (non-contiguous, ``[:, ::2]``) 64 MiB array."""
    rng = _rng(5)
    count, each, big = (20, MiB // 8, MiB) if quick else (200, MiB, 64 * MiB)
    dtypes = [np.float64, np.float32, np.int64, np.int32, np.uint8, np.int16]
    out: dict[str, np.ndarray] = {}
    for i in range(count):
        dtype = np.dtype(dtypes[i % len(dtypes)])
        n = each // dtype.itemsize
        if dtype.kind == "f":
            out[f"a{i:03d}"] = rng.standard_normal(n).astype(dtype)
        else:
            out[f"a{i:03d}"] = rng.integers(0, 100, n).astype(dtype)
    side = int((big // 8) ** 0.5)
    out["fortran"] = np.asfortranarray(rng.standard_normal((side, side)))
    base = rng.standard_normal((side, 2 * side))
    out["strided"] = base[:, ::2]  # 64 MiB view of a 128 MiB array
    return out


def dataframe(quick: bool) -> Any:
    import pandas as pd

    n = 40_000 if quick else 4_000_000
    rng = _rng(6)
    words = np.array([f"item-{i:05d}" for i in range(5_000)], dtype=object)
    return pd.DataFrame(
        {
            "id": np.arange(n, dtype=np.int64),
            "value": rng.standard_normal(n),
            "kind": pd.Categorical.from_codes(rng.integers(0, 8, n), list("abcdefgh")),
            "label": words[rng.integers(0, len(words), n)],
            "when": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 10**9, n), "s"),
        }
    )


def forest(quick: bool) -> Any:
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    n_samples, trees = (1_000, 5) if quick else (50_000, 100)
    x, y = make_classification(n_samples=n_samples, n_features=20, random_state=0)
    return RandomForestClassifier(n_estimators=trees, random_state=0, n_jobs=1).fit(x, y)


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload("random_f64", "random float64 array, 512 MiB", random_f64, True),
        Workload("random_f64_256", "random float64 array, 256 MiB", random_f64_256, True),
        Workload("smooth_f32", "smooth float32 signal, 512 MiB", smooth_f32, True),
        Workload("small_ints", "int64 array of small integers, 256 MiB", small_ints, True),
        Workload("dicts", "list of 300,000 small dicts", list_of_dicts, False),
        Workload(
            "mixed",
            "dict of 200 mixed-dtype 1 MiB arrays + Fortran 64 MiB + strided 64 MiB",
            mixed_arrays,
            True,
        ),
        Workload(
            "dataframe",
            "4,000,000-row DataFrame (int, float, category, string, datetime)",
            dataframe,
            False,
            cached=True,
        ),
        Workload("forest", "fitted RandomForestClassifier (100 trees)", forest, False, True),
    )
}


def get(name: str, quick: bool, cache_dir: Path) -> Any:
    """The workload object, from the run's cache when it is a cached one."""
    workload = WORKLOADS[name]
    if not workload.cached:
        return workload.build(quick)
    path = cache_dir / f"{name}{'-quick' if quick else ''}.pkl"
    if path.exists():
        with open(path, "rb") as f:
            return pickle.load(f)
    obj = workload.build(quick)
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=5)
    return obj


def array_bytes(obj: Any) -> list[np.ndarray]:
    """The numpy arrays an array-heavy workload holds."""
    if isinstance(obj, np.ndarray):
        return [obj]
    return [value for value in obj.values() if isinstance(value, np.ndarray)]
