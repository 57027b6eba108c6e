"""Side-by-side benchmark: codecpickle against pickle, joblib and raw limits.

    python benchmarks/run.py            # full sizes (RESULTS.md), ~20 min on 2 cores
    python benchmarks/run.py --quick    # tiny sizes, a smoke run for CI

Every case (one dump, or one load) runs in a fresh process (``case.py``), so
peak memory and allocator state do not leak from one case into the next.
Prints a markdown table and writes every number as JSON.  Compare ratios
within one run, not absolute seconds across runs or machines.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import workloads  # noqa: E402

MiB = 1 << 20

#: Codec and level per built-in codec (fast levels: the ones people use for
#: large data); lz4 levels 0-2 are all lz4's fast mode.
CODECS = {
    "zstd": "zstd:3",
    "lz4": "lz4:1",
    "zlib": "zlib:3",
    "gzip": "gzip:3",
    "bz2": "bz2:1",
    "lzma": "lzma:1",
}
#: Too slow (3-10 MB/s per core) to run on the 256-512 MiB array workloads
#: within the time budget; measured on the object-heavy ones.
SLOW_CODECS = {"bz2", "lzma"}
#: joblib's names for the same codecs (joblib has no zstd; its "xz" is
#: codecpickle's lzma container format).
JOBLIB_NAMES = {"lz4": "lz4", "zlib": "zlib", "gzip": "gzip", "bz2": "bz2", "lzma": "xz"}
#: joblib is run with these (gzip is zlib with another wrapper: skipped).
JOBLIB_CODECS = ("zlib", "lz4", "bz2", "lzma")


@dataclass
class Row:
    """One method on one workload: a dump case and (usually) a load case."""

    workload: str
    label: str
    method: str
    codec: str | None = None
    src: str | None = None
    threads: int | None = None
    ops: tuple[str, ...] = ("dump", "load")
    results: dict[str, Any] = field(default_factory=dict)


def rows_for(name: str, codecs: list[str], methods: set[str], baselines: dict[str, str],
             quick: bool, current: bool = True) -> list[Row]:
    heavy = workloads.WORKLOADS[name].array_heavy
    usable = [c for c in codecs if quick or not (heavy and c in SLOW_CODECS)]
    rows = [Row(name, "raw write/readinto", "raw")]
    if "pickle" in methods:
        rows += [
            Row(name, "pickle", "pickle"),
            Row(name, "pickle + fsync", "pickle", ops=("fsync_dump",)),
        ]
    if "joblib" in methods:
        rows.append(Row(name, "joblib", "joblib"))
        for codec in usable:
            if codec in JOBLIB_CODECS:
                level = CODECS[codec].split(":")[1]
                rows.append(Row(name, f"joblib {CODECS[codec]}", "joblib",
                                f"{JOBLIB_NAMES[codec]}:{level}"))
    if "codec" in methods:
        rows += [Row(name, f"{CODECS[c]} one call, 1 thread", "codec", CODECS[c],
                     ops=("dump",)) for c in usable]
    if "codecpickle" in methods:
        variants = {"": None} if current else {}
        variants.update({f" [{k}]": v for k, v in baselines.items()})
        for suffix, src in variants.items():
            # Baselines (before/after comparisons) skip what they share with
            # the current code: fsync and mmap loads.
            rows.append(Row(name, f"codecpickle{suffix}", "codecpickle", None, src,
                            ops=("dump", "load") if src else ("dump", "load", "mmap_load")))
            if not src:
                rows.append(Row(name, "codecpickle + fsync", "codecpickle",
                                ops=("fsync_dump",)))
            rows += [Row(name, f"codecpickle {CODECS[c]}{suffix}", "codecpickle", CODECS[c],
                         src) for c in usable]
    return rows


def run_case(spec: dict[str, Any]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, str(HERE / "case.py"), json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"case {spec} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_row(row: Row, work_dir: Path, cache_dir: Path, quick: bool, data_bytes: int) -> None:
    path = work_dir / f"{row.workload}-{abs(hash(row.label))}.bin"
    base = {"workload": row.workload, "method": row.method, "codec": row.codec,
            "src": row.src, "threads": row.threads, "path": str(path),
            "cache_dir": str(cache_dir), "quick": quick, "warm_bytes": 2 * data_bytes}
    for op in row.ops:
        row.results[op] = run_case({**base, "op": op})
    for leftover in work_dir.glob(f"{path.name}*"):
        leftover.unlink()


def machine() -> dict[str, Any]:
    import joblib
    import numpy
    import zstandard

    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    return {
        "nproc": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "ram_gib": round(int(mem) / (1 << 20), 1),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "zstandard": zstandard.__version__,
        "joblib": joblib.__version__,
        "kernel": platform.release(),
    }


# -- report ------------------------------------------------------------------


def _ratio(a: float | None, b: float | None) -> str:
    return "" if not a or not b else f"{a / b:.2f}"


def _seconds(row: Row, op: str) -> float | None:
    if row.method == "codec" and op == "load":
        return row.results["dump"]["load_seconds"]
    result = row.results.get(op)
    if result is None:
        return None
    return result["seconds"]


def table(rows: list[Row]) -> str:
    """Markdown table; ratios are time ratios (lower is better) against
    pickle, joblib with the same codec, and the raw limit (plain
    write/readinto when uncompressed, the codec in one call otherwise)."""
    head = ("| workload | method | dump s | load s | size MiB | dump peak MiB "
            "| load peak-retained MiB | /pickle dump | /pickle load | /joblib dump "
            "| /joblib load | /limit dump | /limit load | size/limit |")
    lines = [head, "|" + "---|" * 14]
    by_key = {(r.workload, r.label): r for r in rows}
    for row in rows:
        dump = _seconds(row, "dump") or _seconds(row, "fsync_dump")
        load = _seconds(row, "load")
        first = row.results.get("dump") or row.results.get("fsync_dump") or {}
        size = first.get("file_size", 0) / MiB
        dump_peak = first.get("peak_extra", 0) / MiB
        loaded = row.results.get("load")
        load_over = ("" if loaded is None
                     else f"{(loaded['peak_extra'] - loaded['retained']) / MiB:.0f}")
        cells = [row.workload, row.label, f"{dump:.3f}" if dump else "",
                 f"{load:.3f}" if load else "", f"{size:.1f}", f"{dump_peak:.0f}", load_over]
        ratios = ["", "", "", "", "", "", ""]
        if row.method == "codecpickle":
            pickle_row = by_key.get((row.workload, "pickle + fsync" if "fsync" in row.label
                                     else "pickle"))
            if pickle_row:
                ratios[0] = _ratio(dump, _seconds(pickle_row, "dump")
                                   or _seconds(pickle_row, "fsync_dump"))
                ratios[1] = _ratio(load, _seconds(pickle_row, "load"))
            codec = row.codec
            joblib_label = "joblib" if codec is None else f"joblib {codec}"
            joblib_row = by_key.get((row.workload, joblib_label))
            if joblib_row and "fsync" not in row.label:
                ratios[2] = _ratio(dump, _seconds(joblib_row, "dump"))
                ratios[3] = _ratio(load, _seconds(joblib_row, "load"))
            limit_label = "raw write/readinto" if codec is None else f"{codec} one call, 1 thread"
            limit = by_key.get((row.workload, limit_label))
            if limit and "fsync" not in row.label:
                ratios[4] = _ratio(dump, _seconds(limit, "dump"))
                ratios[5] = _ratio(load, limit.results["dump"]["load_seconds"] if codec
                                   else _seconds(limit, "load"))
                ratios[6] = _ratio(first.get("file_size"), limit.results["dump"]["file_size"])
        lines.append("| " + " | ".join(cells + ratios) + " |")
        mmap = row.results.get("mmap_load")
        if mmap:
            lines.append("| " + " | ".join(
                [row.workload, row.label + " mmap_mode='r'", "", f"{mmap['seconds']:.4f}",
                 "", "", f"{(mmap['peak_extra'] - mmap['retained']) / MiB:.0f}"] + [""] * 7)
                + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (CI smoke run)")
    parser.add_argument("--workloads", default=",".join(workloads.WORKLOADS))
    parser.add_argument("--codecs", default=",".join(CODECS))
    parser.add_argument("--methods", default="pickle,joblib,codec,codecpickle")
    parser.add_argument("--baseline", action="append", default=[], metavar="LABEL=SRC",
                        help="also run codecpickle imported from SRC (a directory holding "
                        "a codecpickle package), labelled LABEL: before/after comparisons")
    parser.add_argument("--no-current", action="store_true",
                        help="run only the --baseline codecpickle variants")
    parser.add_argument("--json", type=Path, default=None, help="where to write the results")
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--merge-into", type=Path, default=None, metavar="JSON",
                        help="write an earlier run's JSON with this run's rows in place of "
                        "its rows of the same workload and label (re-measure some rows)")
    parser.add_argument("--table-from", type=Path, default=None, metavar="JSON",
                        help="print the table of an earlier run's JSON and exit")
    args = parser.parse_args(argv)
    if args.table_from:
        saved = json.loads(args.table_from.read_text())
        rows = [Row(**{**r, "ops": tuple(r["ops"])}) for r in saved["rows"]]
        print(table(rows))
        return 0

    names = [n for n in args.workloads.split(",") if n]
    codecs = [c for c in args.codecs.split(",") if c]
    methods = set(args.methods.split(","))
    baselines = dict(item.split("=", 1) for item in args.baseline)
    json_path = args.json or HERE / ("results-quick.json" if args.quick else "results.json")
    work_dir = Path(args.work_dir or tempfile.mkdtemp(prefix="cpbench-"))
    cache_dir = work_dir / "cache"
    cache_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    all_rows: list[Row] = []
    try:
        for name in names:
            rows = rows_for(name, codecs, methods, baselines, args.quick,
                            not args.no_current)
            run_row(rows[0], work_dir, cache_dir, args.quick, 0)
            data_bytes = rows[0].results["dump"]["data_bytes"]
            for row in rows[1:]:
                run_row(row, work_dir, cache_dir, args.quick, data_bytes)
                print(f"[{time.perf_counter() - started:6.0f}s] {name}: {row.label}",
                      file=sys.stderr, flush=True)
            all_rows += rows
    finally:
        if args.work_dir is None:
            shutil.rmtree(work_dir, ignore_errors=True)
    report = {
        "machine": machine(),
        "quick": args.quick,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "seconds": time.perf_counter() - started,
        "rows": [asdict(r) for r in all_rows],
    }
    if args.merge_into:
        report = merge(json.loads(args.merge_into.read_text()), report)
        all_rows = [Row(**{**r, "ops": tuple(r["ops"])}) for r in report["rows"]]
    json_path.write_text(json.dumps(report, indent=1))
    print(table(all_rows))
    return 0


def merge(earlier: dict[str, Any], later: dict[str, Any]) -> dict[str, Any]:
    """``earlier`` with ``later``'s rows in place of its rows of the same
    workload and label (new ones after their workload's), both commands
    recorded."""
    fresh = {(r["workload"], r["label"]): r for r in later["rows"]}
    rows = [fresh.pop((r["workload"], r["label"]), r) for r in earlier["rows"]]
    for row in fresh.values():
        last = max((i for i, r in enumerate(rows) if r["workload"] == row["workload"]),
                   default=len(rows) - 1)
        rows.insert(last + 1, row)
    return {
        **earlier,
        "command": f"{earlier['command']}; then {later['command']}",
        "seconds": earlier["seconds"] + later["seconds"],
        "rows": rows,
    }


if __name__ == "__main__":
    raise SystemExit(main())
