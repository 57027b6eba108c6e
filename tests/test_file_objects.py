"""Loading from and dumping into any binary file object: compressed-file
wrappers, zip members, spooled files, objects with only ``readinto``; a
wrapper's ``fileno()`` is never taken for where its bytes come from."""

from __future__ import annotations

import bz2
import codecs
import gzip
import io
import lzma
import tempfile
import zipfile

import numpy as np
import pytest

import codecpickle
from tests.conftest import assert_same


def make_obj() -> dict:
    return {
        "big": np.arange(100_000, dtype=np.float64),
        "small": np.arange(7, dtype=np.int16),
        "fortran": np.asfortranarray(np.arange(600.0).reshape(20, 30)),
        "text": "hello" * 50,
    }


OPENERS = {"gzip": gzip.open, "bz2": bz2.open, "lzma": lzma.open}


@pytest.mark.parametrize("opener", OPENERS.values(), ids=OPENERS.keys())
@pytest.mark.parametrize("compress", [None, "lz4"])
def test_compressed_file_wrappers_round_trip(tmp_path, opener, compress):
    # Their fileno() is the compressed file: trusting it for the input's
    # size made valid data look truncated.
    path = tmp_path / "obj.cpkl.x"
    obj = make_obj()
    with opener(path, "wb") as file:
        codecpickle.dump(obj, file, compress=compress)
        codecpickle.dump("second", file, compress=compress)
    with opener(path, "rb") as file:
        assert_same(codecpickle.load(file), obj)
        assert codecpickle.load(file) == "second"
        with pytest.raises(codecpickle.EmptyInputError):
            codecpickle.load(file)


@pytest.mark.parametrize("opener", OPENERS.values(), ids=OPENERS.keys())
def test_mmap_mode_on_a_wrapper_warns_and_loads(tmp_path, opener):
    path = tmp_path / "obj.cpkl.x"
    obj = make_obj()
    with opener(path, "wb") as file:
        codecpickle.dump(obj, file)
    with opener(path, "rb") as file, pytest.warns(UserWarning, match="not a plain file"):
        loaded = codecpickle.load(file, mmap_mode="r")
    assert_same(loaded, obj)
    assert loaded["big"].flags.writeable  # in memory, not a view of any file


def test_zip_members(tmp_path):
    path = tmp_path / "archive.zip"
    obj = make_obj()
    with zipfile.ZipFile(path, "w") as archive, archive.open("obj.cpkl", "w") as member:
        codecpickle.dump(obj, member, compress="zstd")
    with zipfile.ZipFile(path) as archive, archive.open("obj.cpkl") as member:
        assert_same(codecpickle.load(member), obj)


def test_spooled_temporary_file_is_read_as_a_stream():
    obj = make_obj()
    with tempfile.SpooledTemporaryFile(max_size=1 << 30) as spooled:
        codecpickle.dump(obj, spooled)
        spooled.seek(0)
        assert_same(codecpickle.load(spooled), obj)
        # Still in memory: fileno() (which rolls it over to disk) was not asked.
        assert isinstance(spooled._file, io.BytesIO)


def test_named_temporary_file_can_be_mapped():
    obj = make_obj()
    with tempfile.NamedTemporaryFile() as named:
        codecpickle.dump(obj, named)
        named.flush()
        named.seek(0)
        loaded = codecpickle.load(named, mmap_mode="r")
        assert not loaded["big"].flags.writeable  # a view of the mapped file
        for name in ("big", "small", "fortran"):
            np.testing.assert_array_equal(loaded[name], obj[name])


class ReadintoOnly:
    """A binary input with ``readinto`` and nothing else."""

    def __init__(self, data: bytes) -> None:
        self._stream = io.BytesIO(data)

    def readinto(self, buffer) -> int:
        return self._stream.readinto(buffer)


class ReadOnly:
    """A binary input with ``read`` only, returning short reads."""

    def __init__(self, data: bytes) -> None:
        self._stream = io.BytesIO(data)

    def read(self, size: int) -> bytes:
        return self._stream.read(min(size, 1000))


@pytest.mark.parametrize("wrapper", [ReadintoOnly, ReadOnly])
def test_objects_with_only_read_or_readinto(wrapper):
    obj = make_obj()
    assert_same(codecpickle.load(wrapper(codecpickle.dumps(obj))), obj)


def test_buffered_reader_over_a_wrapper_is_a_stream(tmp_path):
    path = tmp_path / "obj.gz"
    obj = make_obj()
    with gzip.open(path, "wb") as file:
        codecpickle.dump(obj, file)
    with gzip.open(path, "rb") as raw, io.BufferedReader(raw) as file:
        assert_same(codecpickle.load(file), obj)


@pytest.mark.parametrize("mode", ["r", "w"])
def test_text_mode_files_are_refused_with_a_hint(tmp_path, mode):
    path = tmp_path / "obj.cpkl"
    codecpickle.dump(1, path)
    call = codecpickle.load if mode == "r" else lambda file: codecpickle.dump(1, file)
    with open(path, mode) as file, pytest.raises(
        codecpickle.InvalidOptionError, match="binary mode"
    ) as info:
        call(file)
    assert isinstance(info.value, TypeError)


def test_text_streams_are_refused_with_a_hint():
    with pytest.raises(codecpickle.InvalidOptionError, match="binary mode"):
        codecpickle.dump(1, io.StringIO())
    with pytest.raises(codecpickle.InvalidOptionError, match="binary mode"):
        codecpickle.load(io.StringIO("x"))
    with tempfile.NamedTemporaryFile("w+") as named, pytest.raises(
        codecpickle.InvalidOptionError, match="binary mode"
    ):
        codecpickle.dump(1, named)


def test_codecs_text_readers_are_refused_with_a_hint(tmp_path):
    # codecs.open(..., encoding=) is not an io.TextIOBase, but reads str.
    path = tmp_path / "obj.cpkl"
    codecpickle.dump(1, path)
    with codecs.open(path, "r", encoding="latin-1") as file, pytest.raises(
        codecpickle.InvalidOptionError, match="binary mode"
    ):
        codecpickle.load(file)
    with tempfile.NamedTemporaryFile("w+") as named, pytest.raises(
        codecpickle.InvalidOptionError, match="binary mode"
    ):
        codecpickle.load(named)
