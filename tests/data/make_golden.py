"""Make the golden files of the current format version:
``tests/data/v<version>/<codec>.cpkl`` (v1 was made by the version-1 writer;
v2 by today's), and from version 2 also ``filters-<codec>.cpkl``: arrays
whose chunks go through each filter.

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


def filter_object() -> dict[str, Any]:
    """Arrays whose chunks go through every filter: smooth floats (shuffle
    or delta), sorted ids (delta), uint8 ramps (delta on bytes), noise
    (stored raw), 12-byte records (shuffle with a tail that is not a whole
    element).  Contiguous ones are over 1 MiB (so out of band); the small
    ones are strided views, which always go out of band."""
    steps = np.arange(1 << 18, dtype=np.int64)
    small = steps[: 1 << 16]
    # splitmix64 of the counter: noise that no numpy version changes.
    mix = small.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    mix = (mix ^ (mix >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    mix = (mix ^ (mix >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    mix ^= mix >> np.uint64(31)
    records = np.array(
        [(i, i / 4.0) for i in range(30_000)], dtype=[("id", "<i4"), ("value", "<f8")]
    )
    return {
        "smooth_float32": np.sin(np.arange(300_000, dtype=np.float32) * np.float32(1e-3)) * 50,
        "sorted_ids": np.cumsum(steps[:150_000] % 7 + 1),
        "fortran_int16": np.asfortranarray((steps % 1000).astype(np.int16).reshape(512, 512))
        .repeat(2, axis=1),
        "rounded_float64": np.round(np.cos(small / 300.0) * 20.0, 2).reshape(-1, 8)[:, :7],
        "timestamps": (small * 1_000_003).astype("datetime64[ns]").reshape(-1, 4)[:, :3],
        "ramp_uint8": (steps % 256).astype(np.uint8).reshape(-1, 64)[:, :63],
        "noise": mix[: 1 << 14].view(np.uint16).reshape(-1, 16)[:, :15],
        "records": records.reshape(-1, 10)[:, :9],
        "strided_float64": (small / 9.0).reshape(256, 256)[:, ::2],
    }


#: The chunk size of the filter golden files: several chunks per array,
#: each judged on its own.
FILTER_CHUNK_SIZE = 1 << 16


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
    if _format.VERSION >= 2:
        for name in CODECS[1:]:
            path = out_dir / f"filters-{name}.cpkl"
            codecpickle.dump(
                filter_object(), path, compress=name, chunk_size=FILTER_CHUNK_SIZE, threads=1
            )
            size = path.stat().st_size
            print(f"{path.relative_to(HERE.parent.parent)}: {size} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
