"""Shared test helpers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from tests.http_server import LoopbackHTTP, loopback_http
from tests.s3_server import LoopbackS3, loopback_s3


def unmapped(obj: Any) -> Any:
    """``obj`` with every ``np.memmap`` (what ``mmap_mode`` loads give) as a
    plain ndarray view, in dicts, lists and tuples, for comparing with
    :func:`assert_same`."""
    if isinstance(obj, np.memmap):
        return obj.view(np.ndarray)
    if type(obj) is dict:
        return {key: unmapped(value) for key, value in obj.items()}
    if type(obj) in (list, tuple):
        return type(obj)(unmapped(value) for value in obj)
    return obj


def assert_same(loaded: Any, original: Any, path: str = "obj") -> None:
    """Deep equality that also checks array types, dtypes, shapes and
    values exactly (NaN-aware), and container types."""
    assert type(loaded) is type(original) or (
        isinstance(original, np.memmap) and type(loaded) is np.ndarray
    ), f"{path}: {type(loaded)} != {type(original)}"
    if isinstance(original, np.ma.MaskedArray):
        assert_same(np.ma.getdata(loaded), np.ma.getdata(original), path + ".data")
        np.testing.assert_array_equal(np.ma.getmaskarray(loaded), np.ma.getmaskarray(original))
        assert loaded.fill_value == original.fill_value
    elif isinstance(original, np.ndarray):
        assert loaded.dtype == original.dtype, f"{path}: dtype {loaded.dtype} != {original.dtype}"
        assert loaded.shape == original.shape, f"{path}: shape {loaded.shape} != {original.shape}"
        if original.dtype.hasobject:
            assert loaded.tolist() == original.tolist(), path
        else:
            np.testing.assert_array_equal(loaded, original, err_msg=path)
            assert loaded.tobytes() == original.tobytes(), f"{path}: bytes differ"
    elif isinstance(original, dict):
        assert loaded.keys() == original.keys(), path
        for key in original:
            assert_same(loaded[key], original[key], f"{path}[{key!r}]")
    elif isinstance(original, list | tuple):
        assert len(loaded) == len(original), path
        for index, (a, b) in enumerate(zip(loaded, original, strict=True)):
            assert_same(a, b, f"{path}[{index}]")
    else:
        assert loaded == original, f"{path}: {loaded!r} != {original!r}"


class CountingSink:
    """A write-only file that keeps nothing but a count of the bytes."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, data: Any) -> int:
        size = memoryview(data).nbytes
        self.size += size
        return size


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[LoopbackS3]:
    """moto's S3 server on 127.0.0.1 (a real HTTP S3 API, authentication on)
    for the whole session; see tests/s3_server.py."""
    with loopback_s3() as server:
        yield server


@pytest.fixture
def s3_bucket(s3_server: LoopbackS3) -> str:
    """A fresh, empty bucket on the loopback S3 server."""
    return s3_server.new_bucket()


@pytest.fixture(scope="session")
def http_server() -> Iterator[LoopbackHTTP]:
    """A range-capable HTTP server on 127.0.0.1 serving bytes from memory."""
    with loopback_http() as server:
        yield server
