"""A ``PickleBuffer`` stored as a value loads as pickle loads it: ``bytes``
when read-only, ``bytearray`` when writable, whatever exports it."""

from __future__ import annotations

import array
import mmap
import pickle

import numpy as np
import pytest

import codecpickle


class Subclass(np.ndarray):
    pass


def sources():
    yield "bytes", b"abc" * 1000
    yield "bytearray", bytearray(b"abc" * 1000)
    yield "read-only view of bytearray", memoryview(bytearray(b"xyz" * 1000)).toreadonly()
    yield "view of bytes", memoryview(b"xyz" * 1000)
    yield "array.array", array.array("d", range(500))
    yield "ndarray", np.arange(500.0)
    read_only = np.arange(500.0)
    read_only.flags.writeable = False
    yield "read-only ndarray", read_only
    yield "Fortran ndarray", np.asfortranarray(np.arange(600.0).reshape(20, 30))
    yield "ndarray subclass", np.arange(6.0).view(Subclass)
    anonymous = mmap.mmap(-1, 4096)
    anonymous[:5] = b"hello"
    yield "mmap", anonymous
    yield "large bytes", bytes(range(256)) * 8192  # 2 MiB: past the in-band limit


SOURCES = dict(sources())


@pytest.mark.parametrize("compress", [None, "zstd"])
@pytest.mark.parametrize("name", SOURCES)
def test_bare_picklebuffer_loads_as_pickle_loads_it(name, compress):
    buffer = pickle.PickleBuffer(SOURCES[name])
    expected = pickle.loads(pickle.dumps(buffer, protocol=5))
    loaded = codecpickle.loads(codecpickle.dumps(buffer, compress=compress))
    assert type(loaded) is type(expected), (type(loaded), type(expected))
    assert loaded == expected
    # ... and so it can be dumped again.
    assert codecpickle.loads(codecpickle.dumps(loaded)) == expected


def test_picklebuffers_inside_containers(tmp_path):
    obj = {
        "ro": pickle.PickleBuffer(b"r" * 100_000),
        "rw": [pickle.PickleBuffer(bytearray(b"w" * 100_000))],
        "array": np.arange(100_000),
    }
    path = tmp_path / "obj.cpkl"
    codecpickle.dump(obj, path)
    for loaded in (codecpickle.load(path), codecpickle.load(path, mmap_mode="r")):
        assert type(loaded["ro"]) is bytes
        assert loaded["ro"] == b"r" * 100_000
        assert type(loaded["rw"][0]) is bytearray
        np.testing.assert_array_equal(loaded["array"], np.arange(100_000))


def test_arrays_still_travel_out_of_band(tmp_path):
    # The arrays' own buffers stay payload records: mapped, not copied.
    path = tmp_path / "obj.cpkl"
    codecpickle.dump({"a": np.arange(100_000.0)}, path)
    loaded = codecpickle.load(path, mmap_mode="r")
    assert not loaded["a"].flags.writeable
    assert not loaded["a"].flags.owndata
