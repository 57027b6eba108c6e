"""Bounded memory: dump never copies an array whole; load writes each
payload into its final memory.  Measured as peak RSS in a fresh process."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

MiB = 1 << 20

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import codecpickle

    def peak_reset():
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")

    def rss(field):
        for line in open("/proc/self/status"):
            if line.startswith(field):
                return int(line.split()[1]) * 1024

    path, compress, layout = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
    base = np.arange(256 * 2**20 // 8, dtype=np.float64)
    base += 0.5  # touch every page before measuring
    obj = {"strided": base.reshape(-1, 4)[:, ::2], "contiguous": base, "fortran":
           np.asfortranarray(base.reshape(-1, 1024).T)}[layout]
    if layout == "fortran":
        del base
    peak_reset(); before = rss("VmRSS:")
    codecpickle.dump(obj, path, compress=compress, fsync=False)
    dump_extra = rss("VmHWM:") - before
    expected_sum = float(obj.sum())
    del obj
    base = None
    peak_reset(); before = rss("VmRSS:")
    loaded = codecpickle.load(path)
    load_extra = rss("VmHWM:") - before
    print(json.dumps({"dump": dump_extra, "load": load_extra, "nbytes": loaded.nbytes,
                      "ok": float(loaded.sum()) == expected_sum}))
    """
)


def measure(tmp_path: Path, compress, layout: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "m.cpkl"), json.dumps(compress), layout],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("compress", [None, "zstd"])
@pytest.mark.parametrize("layout", ["contiguous", "strided", "fortran"])
def test_peak_memory_of_a_256_mib_array(tmp_path, compress, layout):
    numbers = measure(tmp_path, compress, layout)
    assert numbers["ok"]
    assert numbers["dump"] <= 64 * MiB, numbers
    assert numbers["load"] <= numbers["nbytes"] + 64 * MiB, numbers
