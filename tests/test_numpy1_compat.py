"""Files written under numpy 2 load under numpy 1.26 and back, normally and
restricted: ``scripts/check_numpy1.py`` run for real, in a second virtual
environment (``.venv-numpy1``, created on first use with pip, then reused)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "check_numpy1.py"


@pytest.mark.slow
def test_files_cross_numpy_1_and_2_both_ways():
    assert int(np.__version__.split(".")[0]) >= 2, "the suite runs under numpy 2"
    done = subprocess.run(
        [sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=600, check=False
    )
    report = done.stdout + done.stderr[-3000:]
    assert done.returncode == 0, report
    assert "all load exactly under numpy 1, normally and with safe=True" in done.stdout, report
    assert "all load exactly under numpy 2, normally and with safe=True" in done.stdout, report
    assert "files written under numpy 1.26." in done.stdout, report
