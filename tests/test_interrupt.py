"""Ctrl-C during a long compressed dump takes effect at once and leaves no
temporary file, however long the chunks being compressed take."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from codecpickle._atomic import TEMP_SUFFIX

# 64 MiB chunks of rounded float32 (compressible, so not stored raw) through
# lzma: each chunk takes tens of seconds here, so a dump that waited for
# running chunks would be obvious.
_CHILD = """
import signal
import sys
import numpy as np
import codecpickle
# As in an interactive program: a test run started in the background by a
# non-interactive shell ignores SIGINT, and children inherit that.
signal.signal(signal.SIGINT, signal.default_int_handler)
data = np.random.default_rng(0).standard_normal(32 << 20).astype(np.float32).round(2)
print("ready", flush=True)
codecpickle.dump(data, sys.argv[1], compress=("lzma", 6), chunk_size=64 << 20,
                 threads=int(sys.argv[2]),
                 progress=(lambda done, total: None) if sys.argv[3] == "1" else None)
print("finished", flush=True)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child is POSIX")
@pytest.mark.parametrize(("threads", "progress"), [(1, False), (2, False), (2, True)])
def test_sigint_stops_a_long_dump_within_seconds(tmp_path, threads, progress):
    target = tmp_path / "out.cpkl"
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(target), str(threads), "1" if progress else "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert child.stdout.readline().strip() == "ready"
        # Wait until the dump is writing (its temporary file exists) and
        # chunks are being compressed.
        deadline = time.monotonic() + 60
        while not any(name.endswith(TEMP_SUFFIX) for name in os.listdir(tmp_path)):
            assert time.monotonic() < deadline, "the dump never started"
            time.sleep(0.05)
        time.sleep(1.0)
        sent = time.monotonic()
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=60)
        elapsed = time.monotonic() - sent
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert "KeyboardInterrupt" in err
    assert child.returncode != 0
    assert elapsed < 3.0, f"the dump took {elapsed:.1f} s to stop"
    assert os.listdir(tmp_path) == []  # neither the target nor a temporary file
