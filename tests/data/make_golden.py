"""Make the golden files of the current format version:
``tests/data/v<version>/<codec>.cpkl`` (v1 was made by the version-1 writer;
v2 by today's).

Run once per format version with ``.venv/bin/python tests/data/make_golden.py``
and commit the output; it refuses to overwrite a directory that exists.
The tests load these files forever: once a format version ships, today's
code must read yesterday's files.  Never regenerate the files of a version
that has shipped; add a new directory for a new one.
"""

from __future__ import annotations

import collections
import datetime
import decimal
import sys
from pathlib import Path
from typing import Any

import numpy as np

CODECS = ("none", "zlib", "gzip", "bz2", "lzma", "lz4", "zstd")
HERE = Path(__file__).resolve().parent


def golden_object() -> dict[str, Any]:
    """The object every golden file holds; deterministic, no randomness
    that depends on a library version."""
    ramp = np.arange(40_000, dtype=np.float64) / 7.0
    grid = (np.arange(300 * 200, dtype=np.int32) % 251).reshape(300, 200)
    return {
        "float64": ramp,
        "smooth_float32": np.sin(ramp / 1000.0).astype(np.float32),
        "fortran": np.asfortranarray(grid),
        "strided": grid[::3, 1::2],
        "negative_stride": ramp[::-5],
        "zero_d": np.array(3.5),
        "empty": np.zeros((0, 4), dtype=np.int16),
        "bool": (grid % 3 == 0),
        "float16": np.linspace(-2, 2, 1001, dtype=np.float16),
        "complex": (ramp[:5000] + 1j * ramp[5000:10000]).astype(np.complex64),
        "datetime": np.arange(5_000).astype("datetime64[s]"),
        "timedelta": np.arange(5_000).astype("timedelta64[ms]"),
        "bytes_str": np.array([b"alpha", b"beta", b"gamma"] * 1000),
        "unicode_str": np.array(["x", "yy", "zzz"] * 1000),
        "structured": np.array(
            [(i, i / 2.0, b"r%d" % i) for i in range(2000)],
            dtype=[("id", "<i4"), ("value", ">f8"), ("tag", "S6")],
        ),
        "big_endian": np.arange(20_000, dtype=">i8"),
        "objects": np.array([1, "two", (3,), None], dtype=object),
        "matrix": np.matrix([[1, 2], [3, 4]]),
        "masked": np.ma.masked_array(np.arange(10.0), mask=[i % 3 == 0 for i in range(10)]),
        "python": {
            "list": list(range(1000)),
            "text": "codecpickle golden file " * 50,
            "bytes": bytes(range(256)) * 300,
            "tuple": (1, 2.5, None, True),
            "set": frozenset({1, 2, 3}),
            "date": datetime.date(2026, 11, 27),
            "decimal": decimal.Decimal("3.14159"),
            "counter": collections.Counter("mississippi"),
        },
    }


def golden_dir(version: int) -> Path:
    """Where the golden files of a format version live."""
    return HERE / f"v{version}"


def main() -> None:
    import codecpickle
    from codecpickle import _format

    out_dir = golden_dir(_format.VERSION)
    if out_dir.exists() and "--force" not in sys.argv:
        raise SystemExit(f"{out_dir} exists: golden files of a shipped version never change")
    out_dir.mkdir(exist_ok=True)
    obj = golden_object()
    for name in CODECS:
        compress = None if name == "none" else name
        path = out_dir / f"{name}.cpkl"
        # Small chunks so every file holds several chunks of each kind.
        codecpickle.dump(obj, path, compress=compress, chunk_size=1 << 14, threads=1)
        size = path.stat().st_size
        print(f"{path.relative_to(HERE.parent.parent)}: {size} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
