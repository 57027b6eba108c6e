"""Files written under numpy 2 load under numpy 1.26, and back.

    python scripts/check_numpy1.py                 # numpy 2 from this interpreter
    python scripts/check_numpy1.py --numpy "1.26.*" --venv .venv-numpy1

Run with an interpreter that has numpy 2 and codecpickle's dependencies
(the project's ``.venv``).  The script

1. creates (once) a second virtual environment, ``.venv-numpy1`` beside
   ``src/`` (git-ignored), with ``numpy==1.26.*`` and codecpickle installed
   from this checkout in editable mode *with its dependencies*, so pip also
   checks that ``pyproject.toml``'s bounds admit that numpy; later runs
   reuse it when it is up to date;
2. writes, under each numpy, one file per case below and codec (none, zstd,
   lz4) into a temporary directory: every dtype family (bool, signed and
   unsigned ints, float16 to longdouble, complex, datetime64 and
   timedelta64 in several units, bytes, str, void, structured with nested,
   aligned, titled and subarray fields and both byte orders), numpy scalars
   of each, masked arrays, ``np.matrix``, object arrays, Fortran-ordered,
   strided, 0-d and empty arrays, arrays large enough to be stored out of
   band; under numpy 2 also ``StringDType`` arrays, which numpy 1.26 cannot
   represent;
3. loads each file under the *other* numpy, normally and with
   ``safe=True``, and compares it with the same cases built there: types,
   dtypes, shapes, memory order and bytes (field by field for structured
   data, element by element for object arrays, data, mask and fill value
   for masked arrays).  ``StringDType`` files must be refused under numpy
   1.26 with a :class:`codecpickle.errors.CodecPickleError` that says why;
4. loads the golden files of ``tests/data/v1`` and ``tests/data/v2``
   (written under numpy 2) under numpy 1.26 the same way, against
   ``tests/data/make_golden.py``'s objects.

Exit status 0 when everything matches; otherwise every mismatch is
printed.  ``tests/test_numpy1_compat.py`` runs this in the test suite.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_VENV = ROOT / ".venv-numpy1"
DEFAULT_NUMPY = "1.26.*"
CODECS = (None, "zstd", "lz4")
STRINGDTYPE_CASE = "stringdtype"


# -- the cases (built alike under both numpy versions) ---------------------------


def cases() -> dict[str, Any]:
    """Deterministic objects, one per family; every name maps to what is
    dumped into one file."""
    import numpy as np

    ramp = np.arange(2_000, dtype=np.float64) / 7.0
    ints = np.arange(2_000, dtype=np.int64) - 1_000
    big = np.arange(300_000, dtype=np.float64) / 3.0  # 2.3 MiB: out of band

    numbers = {}
    for code in ("b1", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8"):
        numbers[code] = (ints % 120).astype(code)
    for code in ("f2", "f4", "f8", "g", "c8", "c16", "G"):
        numbers[code] = (ramp + (1j * ramp if code in ("c8", "c16", "G") else 0)).astype(code)
    numbers["f8_special"] = np.array([np.nan, np.inf, -np.inf, -0.0, 5e-324, 1.8e308 / 1.1])
    for code in (">i4", ">f8", ">c16", ">u2"):
        numbers[code] = (ints % 77).astype(code)

    times = {}
    for unit in ("Y", "M", "D", "h", "s", "ms", "us", "ns", "ps"):
        times[f"M8[{unit}]"] = (ints % 500).astype(f"datetime64[{unit}]")
        times[f"m8[{unit}]"] = (ints % 500).astype(f"timedelta64[{unit}]")
    times["M8_generic_nat"] = np.array(["NaT", "2026-11-30"], dtype="datetime64")
    times["m8_nat"] = np.array([np.timedelta64("NaT", "s"), np.timedelta64(5, "s")])

    text = {
        "S": np.array([b"alpha", b"", b"g\x00mma", b"\xff" * 9]),
        "U": np.array(["x", "", "z\u00e9\u4e2d", "\U0001f600" * 3]),
        "V": np.array([b"\x00\x01\x02", b"abc"], dtype="V3"),
        ">U": np.array(["big", "endian"], dtype=">U6"),
    }

    point = np.dtype([("x", "<f4"), ("y", ">i2")])
    structured = {
        "plain": np.array([(i, i / 2.0, b"r%d" % i) for i in range(500)],
                          dtype=[("id", "<i4"), ("value", ">f8"), ("tag", "S6")]),
        "aligned": np.array([(1, 2.0), (3, 4.0)], dtype=np.dtype([("a", "u1"), ("b", "f8")],
                                                                  align=True)),
        "nested": np.array([((1.5, 2), [1, 2, 3], "n")] * 4,
                           dtype=[("p", point), ("sub", "<i2", (3,)), ("s", "U2")]),
        "titled": np.array([(1, 2)], dtype=np.dtype({"names": ["a", "b"],
                                                      "formats": ["<i4", "<i2"],
                                                      "titles": ["Alpha", "Beta"]})),
        "offsets": np.array([(7, 9)], dtype=np.dtype({"names": ["a", "b"],
                                                       "formats": ["<u2", "<u4"],
                                                       "offsets": [8, 0], "itemsize": 16})),
        "subarray_2d": np.zeros(3, dtype=[("m", "<f8", (2, 2))]),
        "empty_struct": np.zeros((0,), dtype=[("a", "<i4")]),
    }
    structured["subarray_2d"]["m"] = np.arange(12.0).reshape(3, 2, 2)

    scalars = {
        "bool": np.bool_(True),
        "int8": np.int8(-5),
        "uint64": np.uint64(2**64 - 1),
        "float16": np.float16(1.5),
        "float64": np.float64(math.pi),
        "longdouble": np.longdouble(1) / 3,
        "complex64": np.complex64(1 - 2j),
        "datetime": np.datetime64("2026-11-30T12:34:56", "s"),
        "timedelta": np.timedelta64(90, "m"),
        "bytes": np.bytes_(b"abc"),
        "str": np.str_("d\u00e9f"),
        "void_record": np.array([(1, 2.5)], dtype=[("a", "<i4"), ("b", "<f8")])[0],
        "void_raw": np.array([b"\x01\x02"], dtype="V2")[0],
        "in_list": [np.int32(7), np.float32(0.25)],
    }

    objects = {
        "mixed": np.array([1, "two", (3,), None, 4.5, b"six"], dtype=object),
        "nested_arrays": np.array([np.arange(3), np.arange(2.0)], dtype=object),
        "2d": np.array([[1, None], ["a", [2]]], dtype=object),
        "fortran": np.asfortranarray(np.array([[1, "x"], [None, 2.0]], dtype=object)),
        "empty": np.empty((0, 3), dtype=object),
    }

    subclasses = {
        "masked": np.ma.masked_array(ramp[:10], mask=[i % 3 == 0 for i in range(10)],
                                     fill_value=-1.5),
        "masked_int_hard": np.ma.masked_array(ints[:6], mask=[0, 1, 0, 0, 1, 0],
                                              hard_mask=True),
        "masked_nomask": np.ma.masked_array(np.arange(4)),
        "masked_struct": np.ma.masked_array(
            np.array([(1, 2.0), (3, 4.0)], dtype=[("a", "<i4"), ("b", "<f8")]),
            mask=[(False, True), (True, False)]),
        "matrix": np.arange(6).reshape(2, 3).view(np.matrix),
    }

    layouts = {
        "fortran": np.asfortranarray(np.arange(60, dtype=np.int32).reshape(3, 4, 5)),
        "strided": np.arange(100.0).reshape(10, 10)[::3, 1::2],
        "negative": np.arange(20)[::-1],
        "zero_d": np.array(3.5),
        "zero_d_struct": np.array((1, 2.0), dtype=[("a", "<i2"), ("b", "<f4")]),
        "empty": np.zeros((0, 4), dtype=np.int16),
        "big_c": big,
        "big_fortran": np.asfortranarray(big.reshape(600, 500)),
        "big_datetime": np.arange(300_000).astype("datetime64[ns]"),
        "big_struct": np.zeros(100_000, dtype=[("a", "<i8"), ("b", ">f8"), ("c", "S8")]),
    }
    layouts["big_struct"]["a"] = np.arange(100_000)

    python = {"tuple": (1, 2.5, None, True), "text": "t\u00eaxt", "bytes": bytes(range(256)),
              "arrays_in_dict": {"a": np.arange(5), "b": [np.ones(3, dtype=np.uint8)]}}
    return {"numbers": numbers, "times": times, "text": text, "structured": structured,
            "scalars": scalars, "objects": objects, "subclasses": subclasses,
            "layouts": layouts, "python": python}


def stringdtype_case() -> Any:
    """numpy 2 only: arrays of variable-width strings."""
    import numpy as np

    plain = np.array(["a", "bb", "c\u00e9" * 40], dtype=np.dtypes.StringDType())
    with_na = np.array(["x", None], dtype=np.dtypes.StringDType(na_object=None))
    return {"plain": plain, "with_na": with_na}


# -- exact comparison -------------------------------------------------------------


def compare(loaded: Any, expected: Any, path: str, problems: list[str]) -> None:
    """Append to ``problems`` every way ``loaded`` differs from ``expected``."""
    import numpy as np

    if type(loaded) is not type(expected):
        problems.append(f"{path}: type {type(loaded).__name__}, expected "
                        f"{type(expected).__name__}")
        return
    if isinstance(expected, np.ma.MaskedArray):
        compare(np.ma.getdata(loaded), np.ma.getdata(expected), path + ".data", problems)
        compare(np.ma.getmaskarray(loaded), np.ma.getmaskarray(expected), path + ".mask",
                problems)
        compare(loaded.fill_value, expected.fill_value, path + ".fill_value", problems)
        if loaded.hardmask != expected.hardmask:
            problems.append(f"{path}: hardmask {loaded.hardmask}, expected {expected.hardmask}")
    elif isinstance(expected, np.ndarray):
        _compare_array(loaded, expected, path, problems)
    elif isinstance(expected, np.generic):
        if loaded.dtype != expected.dtype:
            problems.append(f"{path}: dtype {loaded.dtype}, expected {expected.dtype}")
        else:
            _compare_array(np.asarray(loaded), np.asarray(expected), path, problems)
    elif isinstance(expected, dict):
        if list(loaded) != list(expected):
            problems.append(f"{path}: keys {list(loaded)}, expected {list(expected)}")
            return
        for key in expected:
            compare(loaded[key], expected[key], f"{path}[{key!r}]", problems)
    elif isinstance(expected, list | tuple):
        if len(loaded) != len(expected):
            problems.append(f"{path}: {len(loaded)} items, expected {len(expected)}")
            return
        for index, (a, b) in enumerate(zip(loaded, expected, strict=True)):
            compare(a, b, f"{path}[{index}]", problems)
    elif isinstance(expected, float) and math.isnan(expected):
        if not math.isnan(loaded):
            problems.append(f"{path}: {loaded!r}, expected nan")
    elif loaded != expected:
        problems.append(f"{path}: {loaded!r}, expected {expected!r}")


def _dtype_key(dtype: Any) -> tuple[Any, ...]:
    """What makes two dtypes the same: numpy's equality, and the layout
    details it ignores (repr, byte order, alignment, titles, metadata)."""
    return (dtype, repr(dtype), dtype.str, dtype.isalignedstruct, dtype.fields, dtype.metadata)


def _compare_array(loaded: Any, expected: Any, path: str, problems: list[str]) -> None:
    import numpy as np

    try:
        same_dtype = _dtype_key(loaded.dtype) == _dtype_key(expected.dtype)
    except Exception as exc:  # a dtype numpy cannot describe is a finding
        problems.append(f"{path}: dtype {loaded.dtype!r} cannot be examined: {exc!r}")
        return
    if not same_dtype:
        problems.append(f"{path}: dtype {loaded.dtype!r}, expected {expected.dtype!r}")
        return
    if loaded.shape != expected.shape:
        problems.append(f"{path}: shape {loaded.shape}, expected {expected.shape}")
        return
    order = "F" if expected.flags.f_contiguous and not expected.flags.c_contiguous else "C"
    if order == "F" and not loaded.flags.f_contiguous:
        problems.append(f"{path}: not Fortran-ordered as written")
    if expected.dtype.names is not None:
        for name in expected.dtype.names:
            _compare_array(loaded[name], expected[name], f"{path}[{name!r}]", problems)
    elif expected.dtype.hasobject:
        for index, (a, b) in enumerate(zip(loaded.ravel("K"), expected.ravel("K"), strict=True)):
            compare(a, b, f"{path}.flat[{index}]", problems)
    elif expected.dtype.kind in "fc" and np.finfo(expected.dtype).nmant == 63:
        # x87 extended precision: 10 bytes of value in 16, the rest padding
        # whose content numpy leaves undefined.  Compared by value and sign.
        if not (np.array_equal(loaded, expected, equal_nan=True)
                and np.array_equal(np.signbit(loaded.real), np.signbit(expected.real))):
            problems.append(f"{path}: values differ")
    elif np.ascontiguousarray(loaded).tobytes() != np.ascontiguousarray(expected).tobytes():
        problems.append(f"{path}: values differ")


# -- the two sides ------------------------------------------------------------------


def write(directory: Path) -> None:
    """Dump every case with every codec into ``directory``."""
    import numpy as np

    import codecpickle

    directory.mkdir(parents=True, exist_ok=True)
    names = []
    for name, obj in cases().items():
        for codec in CODECS:
            file = f"{name}-{codec or 'none'}.cpkl"
            codecpickle.dump(obj, directory / file, compress=codec)
            names.append(file)
    if hasattr(np, "dtypes") and hasattr(np.dtypes, "StringDType"):
        codecpickle.dump(stringdtype_case(), directory / f"{STRINGDTYPE_CASE}.cpkl",
                         compress="zstd")
        names.append(f"{STRINGDTYPE_CASE}.cpkl")
    (directory / "written.json").write_text(json.dumps({"numpy": np.__version__,
                                                        "files": names}))


def read(directory: Path, goldens: bool) -> list[str]:
    """Load every file of ``directory`` (and the golden files) normally and
    restricted; return the problems found."""
    import numpy as np

    import codecpickle
    from codecpickle.errors import CodecPickleError

    problems: list[str] = []
    written = json.loads((directory / "written.json").read_text())
    expected = cases()
    targets: list[tuple[Path, Any]] = []
    for file in written["files"]:
        name = file.rpartition("-")[0] if "-" in file else file.removesuffix(".cpkl")
        targets.append((directory / file, expected.get(name, STRINGDTYPE_CASE)))
    if goldens:
        sys.path.insert(0, str(ROOT / "tests" / "data"))
        import make_golden

        for version in (1, 2):
            for path in sorted((ROOT / "tests" / "data" / f"v{version}").glob("*.cpkl")):
                maker = make_golden.filter_object if path.name.startswith("filters-") else (
                    make_golden.golden_object)
                targets.append((path, maker()))
    has_strings = hasattr(np, "dtypes") and hasattr(np.dtypes, "StringDType")
    for path, obj in targets:
        label = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
        for safe in (False, True):
            where = f"{label} (safe={safe})"
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    loaded = codecpickle.load(path, safe=safe)
                except CodecPickleError as exc:
                    if obj is STRINGDTYPE_CASE and not has_strings:
                        if "variable-width strings" not in str(exc):
                            problems.append(f"{where}: refused without saying why: {exc}")
                        continue
                    problems.append(f"{where}: {type(exc).__name__}: {exc}")
                    continue
                except Exception as exc:  # every failure is reported
                    problems.append(f"{where}: {type(exc).__name__}: {exc}")
                    continue
            for warning in caught:
                if warning.category.__name__ not in ("VersionMismatchWarning",
                                                     "PendingDeprecationWarning"):
                    problems.append(f"{where}: warns {warning.category.__name__}: "
                                    f"{warning.message}")
            if obj is STRINGDTYPE_CASE:
                if not has_strings:
                    problems.append(f"{where}: StringDType loaded under numpy {np.__version__}")
                else:
                    compare(loaded, stringdtype_case(), where, problems)
                continue
            found: list[str] = []
            compare(loaded, obj, where, found)
            # Dumped again where it was loaded, it loads back the same.
            try:
                again = codecpickle.loads(codecpickle.dumps(loaded, compress="zstd"), safe=safe)
            except Exception as exc:  # every failure is reported
                found.append(f"{where}: dumped again and loaded: {type(exc).__name__}: {exc}")
            else:
                compare(again, obj, f"{where}, dumped again", found)
            problems.extend(p for p in found if not _known(p, path, safe))
    return problems


# numpy 1.26 unpickling numpy 2's own pickle of a datetime64/timedelta64
# dtype (format-1 files hold numpy's own pickles) keeps numpy 2's None
# where it expects a metadata dict: values are right, but the dtype's
# ``.metadata`` raises TypeError.  Restricted loads build dtypes through
# codecpickle's translation instead and are unaffected, as are format-2
# files (codecpickle's own dtype descriptions).
KNOWN_NUMPY1_DATETIME = "cannot be examined: TypeError('mappingproxy()"


def _known(problem: str, path: Path, safe: bool) -> bool:
    import numpy as np

    return (
        KNOWN_NUMPY1_DATETIME in problem
        and not safe
        and path.parent.name == "v1"
        and int(np.__version__.split(".")[0]) < 2
        and ("<M8" in problem or "<m8" in problem)
    )


# -- the driver -----------------------------------------------------------------------


def ensure_venv(venv: Path, numpy_spec: str) -> Path:
    """The second environment's interpreter, created or brought up to date."""
    python = venv / "bin" / "python"
    wanted = numpy_spec.rstrip("*").rstrip(".")
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    probe = subprocess.run(
        [str(python), "-c", "import numpy, codecpickle, zstandard, lz4; "
         "print(numpy.__version__); print(codecpickle.__file__)"],
        capture_output=True, text=True, check=False,
    )
    lines = probe.stdout.split()
    if probe.returncode == 0 and lines[0].startswith(wanted + ".") and Path(
        lines[1]
    ).is_relative_to(ROOT / "src"):
        return python
    # Editable, with its dependencies: pip refuses if pyproject.toml's
    # numpy bound excludes the version asked for.
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         f"numpy=={numpy_spec}", "-e", str(ROOT)],
        check=True,
    )
    return python


def _side(python: Path | str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if Path(python) == Path(sys.executable):
        env["PYTHONPATH"] = str(ROOT / "src")  # numpy 2: this checkout's code
    return subprocess.run([str(python), str(Path(__file__).resolve()), *args],
                          capture_output=True, text=True, check=False, env=env)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument("--numpy", default=DEFAULT_NUMPY, help="the numpy 1 version spec")
    parser.add_argument("--write", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--read", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--goldens", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write:
        write(args.write)
        return 0
    if args.read:
        problems = read(args.read, args.goldens)
        print(json.dumps(problems))
        return 0

    import numpy as np

    if int(np.__version__.split(".")[0]) < 2:
        raise SystemExit(f"run this with numpy 2 installed (this interpreter has {np.__version__})")
    start = time.perf_counter()
    old = ensure_venv(args.venv, args.numpy)
    print(f"numpy 1 environment ready in {time.perf_counter() - start:.1f} s: {old}")
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        sides = {"numpy 2": Path(sys.executable), "numpy 1": old}
        for writer, reader in (("numpy 2", "numpy 1"), ("numpy 1", "numpy 2")):
            directory = Path(tmp) / writer.replace(" ", "")
            done = _side(sides[writer], "--write", str(directory))
            if done.returncode:
                print(f"writing under {writer} failed:\n{done.stderr}")
                failed = True
                continue
            extra = ("--goldens",) if reader == "numpy 1" else ()
            done = _side(sides[reader], "--read", str(directory), *extra)
            if done.returncode:
                print(f"reading under {reader} failed:\n{done.stderr}")
                failed = True
                continue
            problems = json.loads(done.stdout.strip().splitlines()[-1])
            files = json.loads((directory / "written.json").read_text())
            what = f"{len(files['files'])} files written under numpy {files['numpy']}" + (
                " and the golden files" if extra else "")
            if problems:
                failed = True
                print(f"{what}, read under {reader}: {len(problems)} problem(s)")
                for problem in problems:
                    print(f"  {problem}")
            else:
                print(f"{what}: all load exactly under {reader}, normally and with safe=True")
    print(f"done in {time.perf_counter() - start:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
