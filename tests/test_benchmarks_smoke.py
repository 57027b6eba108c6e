"""Smoke run of the benchmark suite (tiny sizes, a subset): it runs end to
end and records every case it promises.  It checks no timing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "benchmarks" / "run.py"

WORKLOADS = ("dicts", "mixed")
EXPECTED_LABELS = {
    "raw write/readinto": ("dump", "load"),
    "pickle": ("dump", "load"),
    "pickle + fsync": ("fsync_dump",),
    "joblib": ("dump", "load"),
    "joblib lz4:1": ("dump", "load"),
    "zstd:3 one call, 1 thread": ("dump",),
    "lz4:1 one call, 1 thread": ("dump",),
    "codecpickle": ("dump", "load", "mmap_load"),
    "codecpickle + fsync": ("fsync_dump",),
    "codecpickle zstd:3": ("dump", "load"),
    "codecpickle lz4:1": ("dump", "load"),
}


@pytest.mark.slow
def test_quick_benchmark_run_records_every_case(tmp_path):
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--workloads", ",".join(WORKLOADS),
         "--codecs", "zstd,lz4", "--json", str(out), "--work-dir", str(tmp_path / "work")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["quick"] is True
    assert {"nproc", "cpu", "python", "numpy", "zstandard", "joblib"} <= report["machine"].keys()
    cases = {(row["workload"], row["label"]): row for row in report["rows"]}
    for workload in WORKLOADS:
        for label, ops in EXPECTED_LABELS.items():
            row = cases[(workload, label)]
            for op in ops:
                result = row["results"][op]
                assert result["seconds"] >= 0
                assert "peak_extra" in result
    # The markdown table has one line per case (and one per mmap load).
    table_rows = [line for line in proc.stdout.splitlines() if line.startswith("| ")]
    assert len(table_rows) >= 1 + len(WORKLOADS) * len(EXPECTED_LABELS)


def test_merge_replaces_rows_of_the_same_workload_and_label():
    sys.path.insert(0, str(RUN.parent))
    try:
        import run
    finally:
        sys.path.remove(str(RUN.parent))

    def row(workload, label, seconds):
        return {"workload": workload, "label": label, "seconds": seconds}

    earlier = {"command": "python run.py", "seconds": 10.0, "machine": {"nproc": 2},
               "rows": [row("a", "pickle", 1), row("a", "codecpickle", 2),
                        row("b", "codecpickle", 3)]}
    later = {"command": "python run.py --methods codecpickle", "seconds": 2.0,
             "rows": [row("a", "codecpickle", 20), row("a", "codecpickle zstd:3", 21),
                      row("c", "codecpickle", 30)]}
    merged = run.merge(earlier, later)
    assert merged["rows"] == [row("a", "pickle", 1), row("a", "codecpickle", 20),
                              row("a", "codecpickle zstd:3", 21), row("b", "codecpickle", 3),
                              row("c", "codecpickle", 30)]
    assert merged["command"] == "python run.py; then python run.py --methods codecpickle"
    assert merged["seconds"] == 12.0
    assert merged["machine"] == {"nproc": 2}


def test_safe_load_benchmark_prints_one_row_per_workload():
    script = ROOT / "benchmarks" / "safe_load.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--quick", "--repeat", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [line.split("|") for line in proc.stdout.splitlines() if line.endswith(" |")]
    timings = [row for row in rows if row[2].strip().endswith(" s")]
    assert len(timings) == 4
    for row in timings:
        assert float(row[4]) > 0  # the ratio safe / normal


def test_safe_budget_benchmark_prints_outcomes():
    script = ROOT / "benchmarks" / "safe_budget.py"
    rows = []
    for args in (
        ["--only", "crafted", "--match", "INT text"],
        ["--only", "genuine", "--match", "10,000"],
    ):
        proc = subprocess.run(
            [sys.executable, str(script), "--quick", *args],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        rows += [line.split(" | ") for line in proc.stdout.splitlines() if line.endswith(" |")]
    outcomes = {
        row[0].strip("| "): row[2] for row in rows if row[2] != "outcome" and "---" not in row[2]
    }
    # A compressed flood is refused by the work budget; the stored one and
    # the genuine workload load.
    assert outcomes["INT text, container zstd"] == "SizeLimitError"
    assert outcomes["INT text, container stored"] == "loaded"
    assert outcomes["10,000 object arrays of 3 items, zstd"] == "loaded"


def test_joblib_files_benchmark_prints_both_rows():
    script = ROOT / "benchmarks" / "joblib_files.py"
    result = subprocess.run(
        [sys.executable, str(script), "--quick"], capture_output=True, text=True, check=True
    )
    assert "joblib uncompressed" in result.stdout
    assert "joblib zlib 3" in result.stdout
    assert "mmap_mode=r" in result.stdout


def test_lazy_slice_benchmark_reads_a_slice_locally_and_over_s3():
    script = ROOT / "benchmarks" / "lazy_slice.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--gib", "0.03", "--array-mib", "8"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    rows = {(row["where"], row["what"]): row for row in report["rows"]}
    assert set(rows) == {
        ("local", "index"), ("local", "inspect"), ("local", "lazy"), ("local", "load"),
        ("s3", "connect"), ("s3", "inspect"), ("s3", "lazy"), ("s3", "load"),
    }
    for where in ("local", "s3"):
        # The slice reads one chunk or two, not the file.
        assert rows[(where, "lazy")]["bytes_read"] < report["file"]["file_bytes"] / 2
        assert rows[(where, "load")]["bytes_read"] >= report["file"]["file_bytes"]
        assert rows[(where, "lazy")]["check"] == rows[("local", "lazy")]["check"]
    assert rows[("s3", "lazy")]["calls"]["get_object"] <= 4
