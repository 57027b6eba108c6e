"""mmap_mode: zero-copy, aligned arrays backed by the file itself."""

from __future__ import annotations

import io
import mmap

import numpy as np
import pytest

import codecpickle
from tests.conftest import assert_same, unmapped


def make_obj() -> dict:
    return {
        "big": np.arange(1_000_000, dtype=np.float64),
        "small": np.arange(5, dtype=np.int32),
        "fortran": np.asfortranarray(np.arange(60_000, dtype=np.int16).reshape(200, 300)),
        "strided": np.arange(300_000.0)[::3],
        "dates": np.arange(1000).astype("datetime64[ms]"),
        "meta": {"name": "x"},
    }


def backed_by_map(array: np.ndarray) -> bool:
    base = array
    while base is not None:
        if isinstance(base, mmap.mmap):
            return True
        base = base.obj if isinstance(base, memoryview) else getattr(base, "base", None)
    return False


def test_read_only_map_is_zero_copy_aligned_and_read_only(tmp_path):
    path = tmp_path / "data.cpkl"
    obj = make_obj()
    codecpickle.dump(obj, path)
    loaded = codecpickle.load(path, mmap_mode="r")
    assert_same(unmapped(loaded), obj)
    for name in ("big", "small", "fortran", "strided", "dates"):
        array = loaded[name]
        assert type(array) is np.memmap, name
        assert backed_by_map(array), name
        assert not array.flags.writeable, name
        assert array.ctypes.data % 64 == 0, name
    with pytest.raises(ValueError, match="read-only"):
        loaded["big"][0] = 1.0
    assert loaded["fortran"].flags.f_contiguous


def test_map_reflects_the_file_itself(tmp_path):
    path = tmp_path / "data.cpkl"
    original = np.arange(100_000.0) + 0.5
    codecpickle.dump(original, path)
    loaded = codecpickle.load(path, mmap_mode="r")
    # Find the array's bytes in the file and change them behind its back.
    data = path.read_bytes()
    offset = data.index(original.tobytes())
    with open(path, "r+b") as file:
        file.seek(offset)
        file.write(np.float64(7.0).tobytes())
    assert loaded[0] == 7.0


def test_read_write_map_writes_reach_the_file(tmp_path):
    path = tmp_path / "data.cpkl"
    codecpickle.dump(make_obj(), path)
    loaded = codecpickle.load(path, mmap_mode="r+")
    assert loaded["big"].flags.writeable
    loaded["big"][:10] = -1.0
    loaded["small"][0] = 99
    del loaded
    # The checksums of the changed data are now stale: a plain load says so.
    with pytest.raises(codecpickle.ChecksumMismatchError, match="verify=False"):
        codecpickle.load(path)
    for again in (codecpickle.load(path, verify=False), codecpickle.load(path, mmap_mode="r")):
        assert (again["big"][:10] == -1.0).all()
        assert again["small"][0] == 99
        assert again["big"][10] == 10.0
    again = codecpickle.load(path, verify=False)
    assert (again["big"][:10] == -1.0).all()
    assert again["small"][0] == 99
    assert again["big"][10] == 10.0


def test_copy_on_write_map_leaves_the_file_alone(tmp_path):
    path = tmp_path / "data.cpkl"
    codecpickle.dump(make_obj(), path)
    before = path.read_bytes()
    loaded = codecpickle.load(path, mmap_mode="c")
    assert loaded["big"].flags.writeable
    assert backed_by_map(loaded["big"])
    loaded["big"][:] = 5.0
    assert (loaded["big"] == 5.0).all()
    del loaded
    assert path.read_bytes() == before


def test_open_file_object_can_be_mapped_and_is_left_after_its_stream(tmp_path):
    path = tmp_path / "many.cpkl"
    first, second = make_obj(), {"other": np.ones(70_000)}
    with open(path, "wb") as file:
        file.write(b"preamble")
        codecpickle.dump(first, file)
        codecpickle.dump(second, file)
    with open(path, "rb") as file:
        assert file.read(8) == b"preamble"
        one = codecpickle.load(file, mmap_mode="r")
        two = codecpickle.load(file, mmap_mode="r")
        assert file.read() == b""
    assert_same(unmapped(one), first)
    assert_same(unmapped(two), second)
    assert type(two["other"]) is np.memmap
    assert two["other"].filename == str(path.resolve())
    assert backed_by_map(two["other"])
    # Payloads stay 64-byte aligned in the file even after a preamble.
    assert one["big"].ctypes.data % 64 == 0
    assert two["other"].ctypes.data % 64 == 0


@pytest.mark.parametrize("compress", ["zstd", "lz4"])
def test_compressed_files_warn_and_load_into_memory(tmp_path, compress):
    path = tmp_path / "data.cpkl"
    obj = make_obj()
    codecpickle.dump(obj, path, compress=compress)
    with pytest.warns(UserWarning, match="compressed"):
        loaded = codecpickle.load(path, mmap_mode="r")
    assert_same(loaded, obj)
    assert not backed_by_map(loaded["big"])
    assert loaded["big"].flags.writeable


def test_unmappable_file_objects_warn_and_load_into_memory():
    obj = make_obj()
    buffer = io.BytesIO(codecpickle.dumps(obj))
    with pytest.warns(UserWarning, match="mmap_mode is ignored"):
        loaded = codecpickle.load(buffer, mmap_mode="r")
    assert_same(loaded, obj)


@pytest.mark.parametrize("mode", ["w+", "rw", "R", 1, True])
def test_invalid_mmap_mode_is_refused(tmp_path, mode):
    path = tmp_path / "data.cpkl"
    codecpickle.dump(1, path)
    with pytest.raises(codecpickle.InvalidOptionError, match="mmap_mode"):
        codecpickle.load(path, mmap_mode=mode)


def test_read_write_map_needs_a_writable_file_object(tmp_path):
    path = tmp_path / "data.cpkl"
    codecpickle.dump(np.arange(10.0), path)
    with open(path, "rb") as file, pytest.raises(codecpickle.InvalidOptionError, match="r\\+"):
        codecpickle.load(file, mmap_mode="r+")


def test_mapping_an_empty_file_is_an_empty_input_error(tmp_path):
    path = tmp_path / "empty.cpkl"
    path.write_bytes(b"")
    with pytest.raises(codecpickle.EmptyInputError):
        codecpickle.load(path, mmap_mode="r")
