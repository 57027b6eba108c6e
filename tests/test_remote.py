"""URLs other than s3:// (see test_remote_s3.py): memory://, file://,
http(s):// reads from a loopback server, and the errors for missing
packages and unusable URLs."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pytest

import codecpickle
from codecpickle import _remote
from codecpickle.errors import (
    InvalidOptionError,
    MissingDependencyError,
    StorageNotFoundError,
)
from tests.conftest import assert_same, unmapped
from tests.http_server import LoopbackHTTP

MiB = 1 << 20


@pytest.fixture
def memory_fs() -> Any:
    """fsspec's process-wide memory filesystem, emptied after the test."""
    fs = fsspec.filesystem("memory")
    yield fs
    fs.store.clear()
    fs.pseudo_dirs[:] = [""]


def _sample(rng: np.random.Generator) -> dict[str, Any]:
    return {
        "floats": rng.standard_normal(50_000),
        "matrix": np.asfortranarray(rng.random((60, 40))),
        "rows": [{"i": i} for i in range(500)],
    }


# -- memory:// -------------------------------------------------------------


@pytest.mark.parametrize("codec", [None, "zstd", "lz4", "gzip"], ids=lambda c: c or "none")
def test_memory_round_trip(memory_fs: Any, rng: np.random.Generator, codec: str | None) -> None:
    obj = _sample(rng)
    codecpickle.dump(obj, "memory://models/m.cpkl", compress=codec)
    assert memory_fs.cat("/models/m.cpkl") == codecpickle.dumps(obj, compress=codec)
    assert_same(codecpickle.load("memory://models/m.cpkl"), obj)
    assert_same(codecpickle.load("memory://models/m.cpkl", safe=True), obj)
    # No temporary object is left beside it.
    assert memory_fs.ls("/models", detail=False) == ["/models/m.cpkl"]


class _Explode:
    def __reduce__(self) -> Any:
        raise ValueError("mid-stream")


@pytest.mark.parametrize("previous", [None, "old"])
def test_memory_failed_dump_leaves_nothing(memory_fs: Any, previous: str | None) -> None:
    url = "memory://jobs/result.cpkl"
    if previous is not None:
        codecpickle.dump(previous, url)
    with pytest.raises(ValueError, match="mid-stream"):
        codecpickle.dump([np.zeros(3 * MiB), _Explode()], url)
    if previous is None:
        assert not memory_fs.exists("/jobs/result.cpkl")
        assert memory_fs.find("/") == []
    else:
        assert codecpickle.load(url) == previous
        assert memory_fs.find("/") == ["/jobs/result.cpkl"]


def test_memory_missing_object(memory_fs: Any) -> None:
    with pytest.raises(StorageNotFoundError, match=re.escape("memory://nothing/here.cpkl")):
        codecpickle.load("memory://nothing/here.cpkl")


def test_memory_mmap_mode_warns_and_loads(memory_fs: Any) -> None:
    codecpickle.dump(np.arange(100), "memory://m.cpkl")
    with pytest.warns(UserWarning, match="mmap_mode is ignored"):
        loaded = codecpickle.load("memory://m.cpkl", mmap_mode="r")
    np.testing.assert_array_equal(loaded, np.arange(100))


def test_chained_url(memory_fs: Any, rng: np.random.Generator) -> None:
    # fsspec's URL chaining: a read cache in front of the store.
    obj = _sample(rng)
    codecpickle.dump(obj, "memory://chain/obj.cpkl")
    assert_same(codecpickle.load("simplecache::memory://chain/obj.cpkl"), obj)


# -- file:// ----------------------------------------------------------------


def test_file_url_round_trip_and_mmap(tmp_path: Path, rng: np.random.Generator) -> None:
    obj = _sample(rng)
    url = f"file://{tmp_path}/local.cpkl"
    codecpickle.dump(obj, url)
    assert (tmp_path / "local.cpkl").read_bytes() == codecpickle.dumps(obj)
    assert_same(codecpickle.load(url), obj)
    # A file:// URL is a local path: memory-mapping works, without fsspec.
    mapped = codecpickle.load(url, mmap_mode="r")
    assert not mapped["floats"].flags.writeable
    assert type(mapped["floats"]) is np.memmap  # mapped arrays are np.memmap
    assert_same(unmapped(mapped), obj)


def test_file_url_dump_is_atomic(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/kept.cpkl"
    codecpickle.dump("before", url)
    with pytest.raises(ValueError, match="mid-stream"):
        codecpickle.dump([np.zeros(MiB), _Explode()], url)
    assert codecpickle.load(url) == "before"
    assert [p.name for p in tmp_path.iterdir()] == ["kept.cpkl"]


def test_file_url_takes_no_storage_options(tmp_path: Path) -> None:
    with pytest.raises(InvalidOptionError, match="local paths"):
        codecpickle.dump(1, f"file://{tmp_path}/x.cpkl", storage_options={"auto_mkdir": True})


def test_file_url_forms() -> None:
    assert _remote.route("file:///data/x.cpkl", None) == ("/data/x.cpkl", None)
    assert _remote.route("file://localhost/data/x.cpkl", None) == ("/data/x.cpkl", None)


# -- http(s):// -------------------------------------------------------------


def test_http_round_trip_streams_in_ranges(
    http_server: LoopbackHTTP, rng: np.random.Generator
) -> None:
    obj = {"big": rng.integers(0, 2**63, size=6 * MiB // 8, dtype=np.int64), "meta": "x"}
    http_server.files["/data/big.cpkl"] = codecpickle.dumps(obj, compress="lz4")
    http_server.requests.clear()
    # storage_options reach the filesystem: 1 MiB blocks.
    loaded = codecpickle.load(http_server.url("data/big.cpkl"), storage_options={"block_size": MiB})
    assert_same(loaded, obj)
    ranges = [r for method, _, r in http_server.requests if method == "GET"]
    # Read in range requests, never the whole object in one response.
    assert len(ranges) >= 3
    assert all(r is not None and r.startswith("bytes=") for r in ranges)


def test_http_file_is_seekable(http_server: LoopbackHTTP) -> None:
    data = codecpickle.dumps(np.arange(100_000))
    http_server.files["/seek.cpkl"] = data
    target = _remote.RemoteTarget(http_server.url("seek.cpkl"), {"block_size": 4096})
    with _remote.open_for_reading(target) as handle:
        assert handle.seekable()
        assert handle.size == len(data)
        handle.seek(len(data) - 16)
        assert handle.read() == data[-16:]


def test_http_missing_object(http_server: LoopbackHTTP) -> None:
    url = http_server.url("nothing.cpkl")
    with pytest.raises(StorageNotFoundError, match=re.escape(url)) as info:
        codecpickle.load(url)
    assert isinstance(info.value, FileNotFoundError)


def test_http_is_read_only(http_server: LoopbackHTTP) -> None:
    http_server.requests.clear()
    with pytest.raises(InvalidOptionError, match="can only be read"):
        codecpickle.dump(1, http_server.url("upload.cpkl"))
    assert http_server.requests == []


# -- what is a URL, and what is missing --------------------------------------


@pytest.mark.parametrize(
    ("file", "expected"),
    [
        ("s3://bucket/key", True),
        ("memory://x", True),
        ("simplecache::s3://bucket/key", True),
        ("HTTPS://host/x", True),
        ("model.cpkl", False),
        ("/abs/model.cpkl", False),
        ("C://weird/windows", False),
        ("C:\\data\\model.cpkl", False),
        (Path("s3:/x"), False),
        (b"s3://bytes/path", False),
    ],
)
def test_is_url(file: Any, expected: bool) -> None:
    assert _remote.is_url(file) is expected


def test_missing_fsspec_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "fsspec", None)
    with pytest.raises(MissingDependencyError, match=r"codecpickle\[fsspec\]'? s3fs") as info:
        codecpickle.load("s3://bucket/key.cpkl")
    assert isinstance(info.value, ImportError)
    with pytest.raises(MissingDependencyError, match="fsspec"):
        codecpickle.dump(1, "memory://x.cpkl")


@pytest.mark.parametrize(
    ("url", "module", "package"),
    [("gs://bucket/x.cpkl", "gcsfs", "gcsfs"), ("az://container/x.cpkl", "adlfs", "adlfs")],
)
def test_missing_protocol_package_is_named(
    monkeypatch: pytest.MonkeyPatch, url: str, module: str, package: str
) -> None:
    # As if the package were not installed (it is not, here; this makes sure).
    monkeypatch.setitem(sys.modules, module, None)
    registered = sys.modules["fsspec.registry"]._registry
    for protocol in ("gs", "gcs", "az", "abfs", "abfss", "adl"):
        monkeypatch.delitem(registered, protocol, raising=False)
    with pytest.raises(MissingDependencyError, match=f"pip install {package}"):
        codecpickle.load(url)
    with pytest.raises(MissingDependencyError, match=f"pip install {package}"):
        codecpickle.dump(1, url)


def test_unknown_protocol() -> None:
    with pytest.raises(InvalidOptionError, match="no filesystem for nosuchproto://"):
        codecpickle.load("nosuchproto://x/y.cpkl")


def test_open_input_gives_seekable_files_for_every_kind_of_input(
    tmp_path: Path, memory_fs: Any, http_server: LoopbackHTTP
) -> None:
    data = codecpickle.dumps(list(range(1000)))
    (tmp_path / "x.cpkl").write_bytes(data)
    memory_fs.pipe("/x.cpkl", data)
    http_server.files["/x.cpkl"] = data
    inputs = [
        tmp_path / "x.cpkl",
        str(tmp_path / "x.cpkl"),
        f"file://{tmp_path}/x.cpkl",
        "memory://x.cpkl",
        http_server.url("x.cpkl"),
    ]
    for file in inputs:
        with _remote.open_input(file) as handle:
            assert handle.seekable(), file
            handle.seek(len(data) - 8)
            assert handle.read() == data[-8:], file
            handle.seek(0)
            assert codecpickle.load(handle) == list(range(1000)), file


def test_plain_pickles_and_joblib_files_load_from_urls(
    memory_fs: Any, http_server: LoopbackHTTP, tmp_path: Path
) -> None:
    import pickle

    import joblib

    obj = {"a": np.arange(100_000), "b": "text"}
    memory_fs.pipe("/plain.pkl", pickle.dumps(obj, protocol=5))
    joblib.dump(obj, tmp_path / "x.joblib", compress=("zlib", 3))
    http_server.files["/x.joblib"] = (tmp_path / "x.joblib").read_bytes()
    assert_same(codecpickle.load("memory://plain.pkl"), obj)
    assert_same(codecpickle.load(http_server.url("x.joblib")), obj)


def test_truncated_object_is_reported_before_reading_past_its_end(memory_fs: Any) -> None:
    # The object's size is known from the store, so declared sizes are
    # checked against it as for local files.
    data = codecpickle.dumps(np.zeros(1 << 20))
    memory_fs.pipe("/cut.cpkl", data[: len(data) // 2])
    with pytest.raises(codecpickle.TruncatedFileError, match="has only"):
        codecpickle.load("memory://cut.cpkl")
