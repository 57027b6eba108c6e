"""Progress reports: dump/load(progress=callable) and progress=True."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest

import codecpickle
from codecpickle import _progress
from codecpickle.errors import InvalidOptionError

# Random values: compressed streams stay tens of MiB, so reports (one per
# MiB) come along the way whatever the codec.
DATA = {"a": np.random.default_rng(3).random(5_000_000), "b": list(range(1000))}


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


def _check_sequence(
    calls: list[tuple[int, int | None]], size: int, total: int | None, min_calls: int = 2
) -> None:
    """Monotonic counts, the same total until the end, then (size, size)."""
    assert len(calls) >= min_calls
    done = [entry[0] for entry in calls]
    assert done == sorted(done)
    assert len(set(done)) == len(done)  # nothing reported twice
    assert all(entry[1] == total for entry in calls[:-1])
    assert calls[-1] == (size, size)


def test_mmap_load_reports_the_stream_as_it_is_mapped(tmp_path):
    path = tmp_path / "x.cpkl"
    codecpickle.dump(DATA, path)
    size = path.stat().st_size
    seen = Recorder()
    result = codecpickle.load(path, mmap_mode="r", progress=seen)
    assert isinstance(result["a"], np.memmap)
    _check_sequence(seen.calls, size, size)
    # The mapped payload is reported once handed out, before the end.
    assert seen.calls[0][0] >= DATA["a"].nbytes


def test_dumps_reports_bytes_written():
    seen = Recorder()
    data = codecpickle.dumps(DATA, compress="lz4", chunk_size=1 << 20, progress=seen)
    _check_calls(seen.calls, len(data), None)


def test_loads_reports_bytes_taken_out_of_the_data_size():
    data = codecpickle.dumps(DATA, compress="lz4", chunk_size=1 << 20)
    seen = Recorder()
    result = codecpickle.loads(data, progress=seen)
    np.testing.assert_array_equal(result["a"], DATA["a"])
    _check_calls(seen.calls, len(data), len(data))


def test_dumps_and_loads_refuse_a_bad_progress():
    with pytest.raises(InvalidOptionError, match="progress"):
        codecpickle.dumps(1, progress="yes")
    with pytest.raises(InvalidOptionError, match="progress"):
        codecpickle.loads(codecpickle.dumps(1), progress=3)


@pytest.mark.parametrize("opener", ["plain", "gzip"])
def test_foreign_files_report_the_bytes_of_the_file(tmp_path, opener):
    import functools
    import gzip
    import pickle

    path = tmp_path / "x.pkl"
    open_file = {"plain": open, "gzip": functools.partial(gzip.open, compresslevel=1)}[opener]
    with open_file(path, "wb") as out:
        pickle.dump(DATA, out, protocol=5)
    size = path.stat().st_size
    seen = Recorder()
    result = codecpickle.load(path, progress=seen)
    np.testing.assert_array_equal(result["a"], DATA["a"])
    _check_sequence(seen.calls, size, size)
    assert seen.calls[0][0] < size  # along the way, not only at the end


def test_joblib_files_report_progress_with_and_without_mmap(tmp_path):
    joblib = pytest.importorskip("joblib")
    path = tmp_path / "x.joblib"
    joblib.dump(DATA, path)
    size = path.stat().st_size
    seen = Recorder()
    result = codecpickle.load(path, progress=seen)
    np.testing.assert_array_equal(result["a"], DATA["a"])
    _check_sequence(seen.calls, size, size, min_calls=3)  # reads of 16 MiB at most
    # Mapped, the array's bytes are stepped over in one seek: one report.
    seen = Recorder()
    result = codecpickle.load(path, mmap_mode="r", progress=seen)
    assert isinstance(result["a"], np.memmap)
    _check_sequence(seen.calls, size, size, min_calls=1)


def test_loads_of_a_plain_pickle_reports_progress():
    import pickle

    data = pickle.dumps(DATA, protocol=4)
    seen = Recorder()
    codecpickle.loads(data, progress=seen)
    _check_sequence(seen.calls, len(data), len(data))
    assert seen.calls[0][0] < len(data)


def test_protocol_0_pickles_count_the_lines_read(tmp_path):
    import pickle

    path = tmp_path / "x.pkl"
    path.write_bytes(pickle.dumps(list(range(300_000)), protocol=0))
    seen = Recorder()
    codecpickle.load(path, progress=seen)
    size = path.stat().st_size
    _check_sequence(seen.calls, size, size)
    assert len(seen.calls) >= 2


def test_lazy_load_reports_the_opcode_chunks(tmp_path):
    path = tmp_path / "x.cpkl"
    many = {"a": DATA["a"], "names": [f"n{i}" for i in range(400_000)]}
    codecpickle.dump(many, path, chunk_size=1 << 20)  # megabytes of opcodes
    index = codecpickle._index.read_index(path)
    total = sum(chunk.end - chunk.offset for chunk in index.opcode_chunks)
    seen = Recorder()
    result = codecpickle.load(path, lazy=True, progress=seen)
    assert result["names"][-1] == "n399999"
    assert len(index.opcode_chunks) >= 2
    _check_sequence(seen.calls, total, total)
    with codecpickle.open(path) as handle:
        again = Recorder()
        handle.load(lazy=True, progress=again)
    assert again.calls == seen.calls


def test_reports_are_throttled_for_streams_of_small_records(tmp_path):
    # Thousands of small payloads: one read per record header, but at most
    # one report per MiB (and the final one).
    path = tmp_path / "x.cpkl"
    many = [np.full(100, index) for index in range(20_000)]
    codecpickle.dump(many, path)
    size = path.stat().st_size
    seen = Recorder()
    started = time.monotonic()
    codecpickle.load(path, progress=seen)
    # Besides one per MiB, one per tenth of a second (a slow machine).
    ticks = (time.monotonic() - started) / _progress._INTERVAL
    assert len(seen.calls) <= size // (1 << 20) + ticks + 2
    assert len(seen.calls) < 200  # not one per record
    _check_sequence(seen.calls, size, size)


def test_reporting_costs_nothing_measurable(tmp_path):
    path = tmp_path / "x.cpkl"
    many = [np.full(100, index) for index in range(20_000)]
    codecpickle.dump(many, path)

    def best(progress: object) -> float:
        times = []
        for _ in range(5):
            started = time.perf_counter()
            codecpickle.load(path, progress=progress)
            times.append(time.perf_counter() - started)
        return min(times)

    plain, reported = best(None), best(Recorder())
    # Generous bound for a loaded machine: the point is no per-read callback.
    assert reported < plain * 1.5 + 0.01


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
