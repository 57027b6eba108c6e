"""The public signatures type-check as users call them: ``mypy --strict`` on
a small user script passing the file objects that work at run time
(``GzipFile``, ``SpooledTemporaryFile``, zip members, sockets' files), str,
bytes and ``Path`` paths, and refusing what cannot work."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import codecpickle

ROOT = Path(__file__).resolve().parent.parent

USER_SCRIPT = '''
from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tempfile
import zipfile
from pathlib import Path

import numpy as np

import codecpickle
from codecpickle import Compress, MmapMode

obj = {"a": np.arange(10)}
folder = Path(tempfile.mkdtemp())

codecpickle.dump(obj, "plain.cpkl")
codecpickle.dump(obj, b"bytes.cpkl", compress=0)
codecpickle.dump(obj, folder / "path.cpkl")
codecpickle.dump(obj, folder / "lz4.cpkl", compress=("lz4", 3))
with gzip.open(folder / "x.gz", "wb") as gz:
    codecpickle.dump(obj, gz)
with gzip.GzipFile(folder / "y.gz", "wb") as gzip_file:
    codecpickle.dump(obj, gzip_file, compress=None)
with bz2.open(folder / "x.bz2", "wb") as bz, lzma.open(folder / "x.xz", "wb") as xz:
    codecpickle.dump(obj, bz)
    codecpickle.dump(obj, xz)
with tempfile.SpooledTemporaryFile() as spooled:
    codecpickle.dump(obj, spooled, compress=True)
    spooled.seek(0)
    loaded = codecpickle.load(spooled)
with zipfile.ZipFile(folder / "z.zip", "w") as archive:
    with archive.open("member.cpkl", "w") as member:
        codecpickle.dump(obj, member, compress=3)
with zipfile.ZipFile(folder / "z.zip") as archive:
    with archive.open("member.cpkl") as member:
        loaded = codecpickle.load(member)
with gzip.open(folder / "x.gz", "rb") as gz:
    loaded = codecpickle.load(gz, threads=2)
with open(folder / "path.cpkl", "rb") as raw:
    loaded = codecpickle.load(raw, mmap_mode="r")
buffer = io.BytesIO()
codecpickle.dump(obj, buffer)
loaded = codecpickle.load(io.BytesIO(buffer.getvalue()), safe=True, allow=[np.ndarray])

mode: MmapMode = "r+"
loaded = codecpickle.load(b"bytes.cpkl", mmap_mode=mode)
level: Compress = ("zstd", 19)
data: bytes = codecpickle.dumps(obj, compress=level)
loaded = codecpickle.loads(data, max_buffer_size=1 << 20)
changed: int = codecpickle.reseal(folder / "path.cpkl")
'''

BAD_SCRIPT = '''
import codecpickle

codecpickle.load("x.cpkl", mmap_mode="rw")
codecpickle.dump(1, 42)
codecpickle.load(3.5)
'''


def run_mypy(script: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    pytest.importorskip("mypy")
    path = tmp_path / "user_script.py"
    path.write_text(textwrap.dedent(script))
    env = {**os.environ, "MYPYPATH": str(ROOT / "src")}
    return subprocess.run(
        [
            sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent",
            "--cache-dir", str(tmp_path / "mypy-cache"), "--python-version", "3.11",
            str(path),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )


@pytest.mark.slow
def test_user_script_type_checks_strictly(tmp_path):
    result = run_mypy(USER_SCRIPT, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_wrong_arguments_do_not_type_check(tmp_path):
    result = run_mypy(BAD_SCRIPT, tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert '"load" has incompatible type "Literal[\'rw\']"' in result.stdout or (
        "mmap_mode" in result.stdout
    ), result.stdout
    assert result.stdout.count("error:") == 3, result.stdout


def test_user_script_runs(tmp_path, monkeypatch):
    # What type-checks must also work.
    monkeypatch.chdir(tmp_path)
    exec(compile(USER_SCRIPT, "user_script.py", "exec"), {"__name__": "user_script"})


def test_types_are_public():
    for name in ("Compress", "MmapMode", "PathType", "ReadableFile", "WritableFile"):
        assert name in codecpickle.__all__
        assert getattr(codecpickle, name) is not None
