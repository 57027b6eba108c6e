"""The command line's progress bars: on standard error by default only when
it is a terminal (a pseudo-terminal here), never with --no-progress.

The input comes through standard input in two parts a second apart, so the
command lasts longer than the half second after which bars appear."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import termios
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import codecpickle
from tests.test_cli import _script


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("progress") / "x.cpkl"
    data = np.random.default_rng(2).random(1_500_000)  # 12 MB, 1 MiB chunks
    codecpickle.dump(data, path, compress="zstd", chunk_size=1 << 20)
    return path.read_bytes()


def _run_slowly(args: list[str], data: bytes, stderr_tty: bool) -> tuple[int, bytes, str]:
    """Run the script with ``data`` on standard input (1 MiB, a pause, the
    rest); return its status, standard output and standard error."""
    master = slave = None
    if stderr_tty:
        master, slave = pty.openpty()
        # A terminal has a size (a fresh pseudo-terminal has 0 columns, in
        # which tqdm draws nothing).
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    process = subprocess.Popen(
        [_script(), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=slave if stderr_tty else subprocess.PIPE,
    )
    err_parts: list[bytes] = []
    reader = None
    if master is not None:
        assert slave is not None
        os.close(slave)

        def drain() -> None:
            while True:
                try:
                    part = os.read(master, 4096)
                except OSError:  # EIO once the child's end is closed
                    return
                if not part:
                    return
                err_parts.append(part)

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
    assert process.stdin is not None
    assert process.stdout is not None
    process.stdin.write(data[: 1 << 20])
    process.stdin.flush()
    time.sleep(1.0)
    process.stdin.write(data[1 << 20 :])
    process.stdin.close()
    out = process.stdout.read()
    process.stdout.close()
    if process.stderr is not None:
        err_parts.append(process.stderr.read())
        process.stderr.close()
    status = process.wait(timeout=120)
    if reader is not None:
        reader.join(timeout=10)
        assert master is not None
        os.close(master)
    return status, out, b"".join(err_parts).decode(errors="replace")


def test_bar_on_a_terminal_by_default(stream):
    status, out, err = _run_slowly(["verify", "-"], stream, stderr_tty=True)
    assert status == 0, err
    assert b"-: ok" in out
    assert "verify -" in err  # the bar's description
    assert "B/s" in err or "iB" in err  # bytes and throughput


def test_no_bar_with_no_progress_on_a_terminal(stream):
    status, _out, err = _run_slowly(["verify", "--no-progress", "-"], stream, stderr_tty=True)
    assert status == 0, err
    assert "verify -" not in err


def test_no_bar_by_default_when_standard_error_is_not_a_terminal(stream):
    status, _out, err = _run_slowly(["verify", "-"], stream, stderr_tty=False)
    assert status == 0, err
    assert err == ""


def test_progress_forces_a_bar_off_a_terminal(stream, tmp_path: Path):
    status, _out, err = _run_slowly(
        ["recompress", "--progress", "-c", "lz4", "-o", str(tmp_path / "y.cpkl"), "-"],
        stream, stderr_tty=False,
    )
    assert status == 0, err
    assert "recompress -" in err
