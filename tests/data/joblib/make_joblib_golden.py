"""Write the joblib golden files: one object dumped by one joblib version
with every compressor that version offers.

Run it with the Python of an environment holding the joblib (and numpy) to
record, e.g. a throwaway venv::

    python3 -m venv /tmp/jl-1.2 && /tmp/jl-1.2/bin/pip install joblib==1.2.0 numpy lz4
    /tmp/jl-1.2/bin/python tests/data/joblib/make_joblib_golden.py tests/data/joblib

Files are named ``joblib-<version>-<compressor>.joblib``.  It imports no
codecpickle: the tests import :func:`make_object` from here and compare.
"""

from __future__ import annotations

import os
import sys

import numpy as np

# Each compressor joblib has offered since 0.10, with the level used; lz4
# only where the lz4 package is installed and joblib knows it (>= 0.12).
COMPRESSORS = [
    ("none", 0),
    ("zlib", ("zlib", 3)),
    ("gzip", ("gzip", 3)),
    ("bz2", ("bz2", 3)),
    ("lzma", ("lzma", 3)),
    ("xz", ("xz", 3)),
    ("lz4", ("lz4", 3)),
]


def make_object() -> dict:
    """Every array layout and dtype joblib wraps, plus plain Python data,
    all of types a restricted load admits; small, deterministic."""
    rng = np.random.RandomState(0)
    return {
        "float64": rng.standard_normal(300),
        "int32_fortran": np.asfortranarray(np.arange(60, dtype=np.int32).reshape(6, 10)),
        "big_endian": np.arange(40, dtype=">i8"),
        "scalar_array": np.array(3.5),
        "empty": np.zeros((0, 4), dtype=np.float32),
        "bools": np.array([True, False, True]),
        "structured": np.array([(1, 2.0), (3, 4.0)], dtype=[("a", "<i4"), ("b", "<f8")]),
        "dates": np.array(["2020-01-01", "2021-06-30"], dtype="datetime64[D]"),
        "strings": np.array(["alpha", "beta"]),
        "objects": np.array(["x", 1, None], dtype=object),
        "strided_view": np.arange(100.0).reshape(10, 10)[:, ::3],
        "text": "joblib golden file",
        "numbers": [1, 2.5, (3, "four")],
        "nested": {"inner": [np.arange(5, dtype=np.uint8), {"k": b"bytes"}]},
    }


def _import_joblib():
    """joblib, imported.  joblib 0.12 and 0.13 bundle a cloudpickle that
    fails to import on Python >= 3.8 (``types.CodeType`` changed); dumping
    never uses it, so an empty stand-in lets those versions write files."""
    try:
        import joblib
    except TypeError:
        import pickle
        import types

        for name in list(sys.modules):
            if name.startswith("joblib"):
                del sys.modules[name]
        stub = types.ModuleType("joblib.externals.cloudpickle")
        stub.dumps, stub.loads, stub.CloudPickler = pickle.dumps, pickle.loads, pickle.Pickler
        sys.modules["joblib.externals.cloudpickle"] = stub
        import joblib
    return joblib


def main(out_dir: str) -> None:
    joblib = _import_joblib()

    version = joblib.__version__
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for name, compress in COMPRESSORS:
        path = os.path.join(out_dir, f"joblib-{version}-{name}.joblib")
        try:
            joblib.dump(make_object(), path, compress=compress)
        except Exception as exc:  # this version lacks the compressor
            print(f"{version} {name}: skipped ({type(exc).__name__}: {exc})")
            if os.path.exists(path):
                os.remove(path)
            continue
        extra = [p for p in os.listdir(out_dir) if p.startswith(os.path.basename(path) + "_")]
        if extra:
            raise SystemExit(f"{version} {name}: wrote several files {extra}")
        written.append(path)
    print(f"joblib {version} (numpy {np.__version__}): {len(written)} files")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__)))
