"""Progress reports: dump/load(progress=callable) and progress=True."""

from __future__ import annotations

import io

import numpy as np
import pytest

import codecpickle
from codecpickle import _progress
from codecpickle.errors import InvalidOptionError

DATA = {"a": np.arange(5_000_000, dtype=np.float64), "b": list(range(1000))}


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int | None]] = []

    def __call__(self, done: int, total: int | None) -> None:
        self.calls.append((done, total))


def _check_calls(calls: list[tuple[int, int | None]], size: int, total: int | None) -> None:
    assert len(calls) >= 3  # reported along the way, not only at the end
    done = [entry[0] for entry in calls]
    assert done == sorted(done)
    assert all(entry[1] == total for entry in calls[:-1])
    assert calls[-1] == (size, size)


@pytest.mark.parametrize("compress", [None, ("zstd", 1)])
def test_dump_to_a_path_reports_bytes_written(tmp_path, compress):
    path = tmp_path / "x.cpkl"
    seen = Recorder()
    codecpickle.dump(DATA, path, compress=compress, progress=seen, chunk_size=1 << 20)
    _check_calls(seen.calls, path.stat().st_size, None)


def test_dump_to_a_file_object_and_load_report(tmp_path):
    seen = Recorder()
    out = io.BytesIO()
    codecpickle.dump(DATA, out, compress="lz4", progress=seen, chunk_size=1 << 20)
    _check_calls(seen.calls, len(out.getvalue()), None)
    path = tmp_path / "x.cpkl"
    path.write_bytes(out.getvalue())
    loaded = Recorder()
    result = codecpickle.load(path, progress=loaded)
    np.testing.assert_array_equal(result["a"], DATA["a"])
    _check_calls(loaded.calls, path.stat().st_size, path.stat().st_size)


def test_load_from_a_pipe_has_no_total():
    data = codecpickle.dumps(DATA, compress="lz4", chunk_size=1 << 20)

    class Pipe:
        def __init__(self) -> None:
            self._buffer = io.BytesIO(data)

        def read(self, size: int = -1) -> bytes:
            return self._buffer.read(size)

    seen = Recorder()
    codecpickle.load(Pipe(), progress=seen)
    _check_calls(seen.calls, len(data), None)


def test_mmap_load_reports_only_completion(tmp_path):
    path = tmp_path / "x.cpkl"
    codecpickle.dump(DATA, path)
    seen = Recorder()
    codecpickle.load(path, mmap_mode="r", progress=seen)
    assert seen.calls == [(0, 0)]


def test_no_report_after_a_failure(tmp_path):
    seen = Recorder()

    class Boom:
        def __reduce__(self):
            raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        codecpickle.dump([DATA, Boom()], tmp_path / "x.cpkl", progress=seen)
    assert all(total is None for _, total in seen.calls)


def test_progress_must_be_a_bool_or_a_callable(tmp_path):
    with pytest.raises(InvalidOptionError, match="progress"):
        codecpickle.dump(1, tmp_path / "x.cpkl", progress="yes")
    assert not (tmp_path / "x.cpkl").exists()


def test_progress_true_draws_a_bar_for_long_operations(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(_progress, "_DELAY", 0.0)
    codecpickle.dump(DATA, tmp_path / "x.cpkl", progress=True)
    codecpickle.load(tmp_path / "x.cpkl", progress=True)
    err = capsys.readouterr().err
    assert "dump" in err
    assert "load" in err


def test_plain_text_bar_without_tqdm_or_rich(capsys, monkeypatch):
    monkeypatch.setattr(_progress, "_DELAY", 0.0)
    bar = _progress._TextBar("dump", 4 << 20)
    bar.update(1 << 20, 4 << 20)
    bar.close()
    err = capsys.readouterr().err
    assert "dump: 1.0 MiB (25%) at" in err
    assert err.endswith("\r")


def test_terminal_bar_falls_back_to_plain_text(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_bars(name, *args, **kwargs):
        if name.split(".")[0] in ("tqdm", "rich"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_bars)
    assert isinstance(_progress.terminal_bar("x", None), _progress._TextBar)
