"""dump() to a path never loses the previous file: a temporary sibling is
written, fsynced and renamed over the target only when complete."""

from __future__ import annotations

import os
import random
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import codecpickle
from codecpickle._atomic import TEMP_SUFFIX, atomic_write


def temp_files(directory: Path) -> list[Path]:
    return [p for p in directory.iterdir() if p.name.endswith(TEMP_SUFFIX)]


class Boom(Exception):
    pass


class ExplodesWhenPickled:
    def __reduce__(self) -> Any:
        raise Boom("cannot pickle me")


@pytest.mark.parametrize("compress", [None, "zstd"])
def test_failed_dump_keeps_previous_file(tmp_path: Path, compress: str | None) -> None:
    target = tmp_path / "model.cpkl"
    codecpickle.dump({"version": 1}, target, compress=compress)
    before = target.read_bytes()
    big = np.arange(1 << 20)  # written before the failure
    with pytest.raises(Boom):
        codecpickle.dump([big, ExplodesWhenPickled()], target, compress=compress)
    assert target.read_bytes() == before
    assert temp_files(tmp_path) == []
    assert codecpickle.load(target) == {"version": 1}


def test_failed_first_dump_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "new.cpkl"
    with pytest.raises(Boom):
        codecpickle.dump(ExplodesWhenPickled(), target)
    assert list(tmp_path.iterdir()) == []


def test_keyboard_interrupt_cleans_up(tmp_path: Path) -> None:
    target = tmp_path / "t.cpkl"
    def interrupted_write() -> None:
        with atomic_write(target) as file:
            file.write(b"partial")
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted_write()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fsync", [True, False])
def test_fsync_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fsync: bool) -> None:
    calls: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real_fsync(fd))[1])
    codecpickle.dump([1, 2], tmp_path / "x.cpkl", fsync=fsync)
    assert bool(calls) is fsync  # file and directory when asked, nothing otherwise
    assert codecpickle.load(tmp_path / "x.cpkl") == [1, 2]


def test_rename_failure_keeps_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "x.cpkl"
    codecpickle.dump("old", target)

    def failing_replace(src: Any, dst: Any) -> None:
        raise OSError("disk said no")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk said no"):
        codecpickle.dump("new", target)
    monkeypatch.undo()
    assert codecpickle.load(target) == "old"
    assert temp_files(tmp_path) == []


@pytest.mark.skipif(not hasattr(os, "fchmod"), reason="POSIX permissions")
def test_existing_permissions_are_kept(tmp_path: Path) -> None:
    target = tmp_path / "secret.cpkl"
    codecpickle.dump("v1", target)
    target.chmod(0o600)
    codecpickle.dump("v2", target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert codecpickle.load(target) == "v2"


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks need privileges on Windows")
def test_symlink_is_written_through(tmp_path: Path) -> None:
    real = tmp_path / "real.cpkl"
    link = tmp_path / "link.cpkl"
    codecpickle.dump("v1", real)
    link.symlink_to(real)
    codecpickle.dump("v2", link)
    assert link.is_symlink()
    assert codecpickle.load(real) == "v2"


def test_long_names_fit(tmp_path: Path) -> None:
    target = tmp_path / ("n" * 250)
    codecpickle.dump("x", target)
    assert codecpickle.load(target) == "x"


# -- SIGKILL at random moments -----------------------------------------------

# The child dumps version after version of a large object to one path, and
# reports each completed version on stdout; the parent kills it at random.
_CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    import codecpickle
    path, compress = sys.argv[1], sys.argv[2] if sys.argv[2] != "none" else None
    version = int(sys.argv[3])
    print("ready", flush=True)  # start-up done: the parent times its kill from here
    while True:
        version += 1
        data = np.full(3 << 18, version, dtype=np.int64)  # 6 MiB
        codecpickle.dump({"version": version, "data": data}, path, compress=compress)
        print(version, flush=True)
    """
)

KILLS = int(os.environ.get("CODECPICKLE_KILL_ROUNDS", "40"))


def check_intact(path: Path) -> int:
    obj = codecpickle.load(path)
    version = obj["version"]
    assert obj["data"].shape == (3 << 18,)
    assert (obj["data"] == version).all()
    return version


def test_sigkill_never_leaves_a_partial_file(tmp_path: Path) -> None:
    """Long run: ``CODECPICKLE_KILL_ROUNDS=1000 pytest tests/test_atomic.py -k sigkill``."""
    target = tmp_path / "state.cpkl"
    codecpickle.dump({"version": 0, "data": np.zeros(3 << 18, dtype=np.int64)}, target)
    rng = random.Random(1234)
    version = 0
    killed_mid_write = 0
    for round_ in range(KILLS):
        compress = ("none", "zstd", "lz4")[round_ % 3]
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(target), compress, str(version)],
            stdout=subprocess.PIPE,
            text=True,
        )
        # Timed from the end of start-up (which takes longer than a dump on a
        # busy machine), so the kills land anywhere from the first dump to
        # several dumps in.
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.5))
        child.send_signal(signal.SIGKILL)
        completed = child.communicate()[0].split()
        loaded = check_intact(target)
        # Either the last version reported complete, or the one it was
        # writing when killed (renamed but not yet reported).
        last = int(completed[-1]) if completed else version
        assert loaded in (last, last + 1), (loaded, completed)
        version = loaded
        # At most the one temporary file being written at the moment of the
        # kill; cleaned up here, as an operator (or a retry) would.
        leftovers = temp_files(tmp_path)
        assert len(leftovers) <= 1, leftovers
        killed_mid_write += len(leftovers)
        for leftover in leftovers:
            leftover.unlink()
    # The kills did land inside dumps, not only between them.
    assert killed_mid_write >= KILLS // 8, killed_mid_write
    print(f"\n{KILLS} kills, {killed_mid_write} during a write", file=sys.__stderr__)
