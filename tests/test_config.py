"""codecpickle.config and CODECPICKLE_THREADS: defaults for code that
cannot pass arguments; arguments win over config, config over the
environment."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

import codecpickle
from codecpickle import _api, _config
from codecpickle.errors import InvalidOptionError, UnknownCodecError
from tests.conftest import assert_same
from tests.test_container import walk


@pytest.fixture
def pools(monkeypatch):
    """The worker counts of the chunk pools dumps and loads create."""
    sizes: list[int] = []
    real = _api.ChunkPool

    def recording(workers: int) -> _api.ChunkPool:
        sizes.append(workers)
        return real(workers)

    monkeypatch.setattr(_api, "ChunkPool", recording)
    return sizes


def test_environment_sets_the_default_thread_count(monkeypatch, pools):
    monkeypatch.setenv("CODECPICKLE_THREADS", "3")
    codecpickle.dumps(b"x" * 10, compress="lz4")
    assert pools == [3]


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_invalid_environment_value_is_a_clear_error(monkeypatch, value):
    monkeypatch.setenv("CODECPICKLE_THREADS", value)
    with pytest.raises(InvalidOptionError, match="CODECPICKLE_THREADS") as caught:
        codecpickle.dumps(1)
    assert repr(value) in str(caught.value)
    # An explicit argument does not need the environment.
    assert codecpickle.loads(codecpickle.dumps(1, threads=1), threads=1) == 1


def test_precedence_argument_then_config_then_environment(monkeypatch, pools):
    monkeypatch.setenv("CODECPICKLE_THREADS", "3")
    with codecpickle.config(threads=2):
        codecpickle.dumps(b"x", compress="lz4")
        codecpickle.dumps(b"x", compress="lz4", threads=4)
        with codecpickle.config(threads=None):  # back to the environment
            codecpickle.dumps(b"x", compress="lz4")
    codecpickle.dumps(b"x", compress="lz4")
    assert pools == [2, 4, 3, 3]


def test_config_compress_and_chunk_size():
    with codecpickle.config(compress=("zstd", 7), chunk_size=1 << 14) as settings:
        assert settings.compress == ("zstd", 7)
        configured = codecpickle.dumps(list(range(1000)))
        explicit = codecpickle.dumps(list(range(1000)), compress=None)
    assert b'"codec":"zstd"' in configured
    assert b'"level":7' in configured
    assert b'"chunk_size":16384' in configured
    assert b'"codec":"none"' in explicit  # an explicit argument wins
    assert codecpickle.loads(configured) == list(range(1000))


def test_config_compress_wins_over_the_extension(tmp_path):
    # Only codecpickle names (name.cpkl.<ext>) pick a codec from the name.
    with codecpickle.config(compress="lz4"):
        codecpickle.dump([1], tmp_path / "x.cpkl.gz")
    assert b'"codec":"lz4"' in (tmp_path / "x.cpkl.gz").read_bytes()[:200]
    codecpickle.dump([1], tmp_path / "y.cpkl.gz")
    assert b'"codec":"gzip"' in (tmp_path / "y.cpkl.gz").read_bytes()[:200]


def test_config_progress(tmp_path):
    calls = []
    with codecpickle.config(progress=lambda done, total: calls.append(done)):
        codecpickle.dump(list(range(100)), tmp_path / "x.cpkl")
    assert calls
    assert calls[-1] == (tmp_path / "x.cpkl").stat().st_size


def _filter_ids(data: bytes) -> set[int]:
    _, records = walk(data)
    return {c.filter_id for r in records if r.kind == 0x02 for c in r.chunks or ()}


def test_config_filters():
    ramp = np.arange(200_000, dtype=np.int64)  # delta under "auto"
    assert _filter_ids(codecpickle.dumps(ramp, compress="zstd")) == {2}
    with codecpickle.config(filters=None) as settings:
        assert settings.filters is None
        plain = codecpickle.dumps(ramp, compress="zstd")
        explicit = codecpickle.dumps(ramp, compress="zstd", filters="delta")
    assert _filter_ids(plain) == {0}
    assert _filter_ids(explicit) == {2}  # an explicit argument wins
    with codecpickle.config(filters="shuffle", compress="zstd"):
        assert _filter_ids(codecpickle.dumps(ramp)) == {1}
        with codecpickle.config(filters="auto"):  # inner blocks win
            assert _filter_ids(codecpickle.dumps(ramp)) == {2}
        # A block's forced filter leaves uncompressed dumps as they are; the
        # same filter as an argument asks for something impossible.
        uncompressed = codecpickle.dumps(ramp, compress=None)
        with pytest.raises(InvalidOptionError, match="needs a compressed stream"):
            codecpickle.dumps(ramp, compress=None, filters="shuffle")
    assert_same(codecpickle.loads(uncompressed), ramp)
    assert _config.current().filters is _config.NOT_SET


def test_config_filters_apply_to_dump(tmp_path):
    ramp = np.arange(200_000, dtype=np.int64)
    with codecpickle.config(filters=None):
        codecpickle.dump(ramp, tmp_path / "x.cpkl.zst")
    assert _filter_ids((tmp_path / "x.cpkl.zst").read_bytes()) == {0}


def test_config_validates_on_entry():
    with pytest.raises(InvalidOptionError, match="threads"), codecpickle.config(threads=0):
        pass
    with pytest.raises(UnknownCodecError), codecpickle.config(compress="nope"):
        pass
    with pytest.raises(InvalidOptionError, match="chunk_size"), codecpickle.config(chunk_size=5):
        pass
    with pytest.raises(InvalidOptionError, match="progress"), codecpickle.config(progress=3):
        pass
    for bad in ("bitshuffle", 1, True):
        with pytest.raises(InvalidOptionError, match="filters"), codecpickle.config(filters=bad):
            pass
    with pytest.raises(TypeError):
        codecpickle.config(level=3).__enter__()


def test_nesting_restores_the_outer_settings():
    with codecpickle.config(threads=2, compress="lz4"):
        with codecpickle.config(threads=3):
            assert _config.current().threads == 3
            assert _config.current().compress == "lz4"
        assert _config.current().threads == 2
    assert _config.current() == _config.Settings()


def test_threads_do_not_see_each_others_settings():
    seen = {}
    entered = threading.Event()
    release = threading.Event()

    def inside() -> None:
        with codecpickle.config(threads=5):
            entered.set()
            release.wait(10)
            seen["inside"] = _config.default_threads()

    worker = threading.Thread(target=inside)
    worker.start()
    entered.wait(10)
    seen["outside"] = _config.current().threads
    release.set()
    worker.join()
    assert seen["inside"] == 5
    assert seen["outside"] is _config.NOT_SET


def test_asyncio_tasks_are_isolated():
    async def task(threads: int) -> int:
        with codecpickle.config(threads=threads):
            await asyncio.sleep(0.01)
            return _config.default_threads()

    async def main() -> list[int]:
        return list(await asyncio.gather(task(1), task(2), task(3)))

    assert asyncio.run(main()) == [1, 2, 3]
