"""The documentation site: ``mkdocs build --strict`` succeeds, and fails on
a broken link; the benchmark page matches benchmarks/results.json."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config),
         "--site-dir", str(site)],
        capture_output=True, text=True, env=env, timeout=600,
    )


def test_docs_build_strict(tmp_path):
    result = _build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert result.returncode == 0, result.stderr
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    # The reference is generated from the docstrings, without reST markup.
    assert "Serialise" in api
    assert "InvalidOptionError" in api
    assert ":class:" not in api
    assert "``" not in api
    assert (tmp_path / "site" / "img" / "bench-ratio.svg").exists()


def test_a_broken_link_fails_the_build(tmp_path):
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "docs", copy / "docs")
    shutil.copytree(ROOT / "src", copy / "src")
    shutil.copytree(ROOT / "scripts", copy / "scripts")
    shutil.copy(ROOT / "mkdocs.yml", copy / "mkdocs.yml")
    guide = copy / "docs" / "guide.md"
    guide.write_text(guide.read_text() + "\nSee [the missing page](missing.md).\n")
    result = _build(copy / "mkdocs.yml", tmp_path / "site")
    assert result.returncode != 0
    assert "missing.md" in result.stderr


def test_benchmark_page_matches_the_results():
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "plot.py"), "--check"],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
