"""The command line: python -m codecpickle."""

from __future__ import annotations

import subprocess
import sys

import codecpickle
from codecpickle.__main__ import main


def test_codecs_lists_the_builtins(capsys):
    assert main(["codecs"]) == 0
    out = capsys.readouterr().out
    for name in ("zlib", "gzip", "bz2", "lzma", "lz4", "zstd"):
        assert name in out


def test_info_prints_the_header_without_unpickling(tmp_path, capsys):
    path = tmp_path / "x.cpkl"
    codecpickle.dump({"a": 1}, path, compress=("zstd", 5))
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert '"codec": "zstd"' in out
    assert '"level": 5' in out
    assert "format 2" in out


def test_info_reports_damaged_files(tmp_path, capsys):
    path = tmp_path / "bad.cpkl"
    path.write_bytes(b"not a codecpickle file")
    assert main(["info", str(path)]) == 1
    assert "not a codecpickle stream" in capsys.readouterr().err


def test_module_entry_point_runs():
    result = subprocess.run(
        [sys.executable, "-m", "codecpickle", "codecs"], capture_output=True, text=True, check=True
    )
    assert "zstd" in result.stdout
