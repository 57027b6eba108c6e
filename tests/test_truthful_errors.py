"""Every error says what really happened: the file's own exceptions are
not called corruption, paths named are the caller's, and arguments that
cannot work are refused before anything is written."""

from __future__ import annotations

import io
import json
import os
import pickle
import stat
import struct
import sys
import threading

import numpy as np
import pytest

import codecpickle
from codecpickle import _format as fmt
from codecpickle._atomic import TEMP_SUFFIX
from codecpickle._writer import ContainerWriter

# -- the file's own classes ---------------------------------------------------


class FailingState:
    def __init__(self) -> None:
        self.items = [1, 2, 3]

    def __setstate__(self, state: dict) -> None:
        raise IndexError("list index out of range (in __setstate__)")


class Renamed:
    pass


def test_exceptions_of_the_files_own_classes_pass_through(tmp_path):
    path = tmp_path / "obj.cpkl"
    codecpickle.dump({"x": FailingState()}, path)
    with pytest.raises(IndexError, match="in __setstate__") as info:
        codecpickle.load(path)
    assert not isinstance(info.value, codecpickle.CodecPickleError)
    assert any(str(path) in note for note in info.value.__notes__)
    with pytest.raises(IndexError):
        codecpickle.loads(codecpickle.dumps(FailingState(), compress="zstd"))
    # As pickle does.
    with pytest.raises(IndexError):
        pickle.loads(pickle.dumps(FailingState()))


def test_a_class_that_became_a_function_is_an_unpickling_error(monkeypatch):
    data = codecpickle.dumps(Renamed())
    monkeypatch.setattr(sys.modules[__name__], "Renamed", lambda: None)
    with pytest.raises(pickle.UnpicklingError) as info:
        codecpickle.loads(data)
    assert isinstance(info.value, codecpickle.PickleStreamError)
    assert isinstance(info.value, codecpickle.CodecPickleError)
    assert not isinstance(info.value, codecpickle.CorruptDataError)
    assert "no longer what it was" in str(info.value)


def container(opcodes: bytes) -> bytes:
    out = io.BytesIO()
    writer = ContainerWriter(out, None, chunk_size=fmt.MIN_CHUNK_SIZE)
    writer.write(opcodes)
    writer.finish()
    return out.getvalue()


def test_opcodes_the_unpickler_refuses_are_a_pickle_stream_error():
    with pytest.raises(codecpickle.PickleStreamError, match="invalid load key"):
        codecpickle.loads(container(b"\x80\x05\xff."))
    with pytest.raises(codecpickle.PickleStreamError, match=r"stack underflow|pop from empty"):
        codecpickle.loads(container(b"\x80\x05a."))


# -- malformed headers --------------------------------------------------------


def test_deeply_nested_header_json_is_corrupt_data():
    meta = b"[" * 30_000 + b"]" * 30_000
    head = fmt.HEADER_FIXED.pack(fmt.MAGIC, 1, 0, len(meta)) + meta
    data = head + fmt.CHECKSUM.pack(fmt.checksum(head, 0))
    with pytest.raises(codecpickle.CorruptDataError, match="nests too deeply"):
        codecpickle.loads(data)


def test_header_flags_other_than_mutable_raw_payloads_are_refused():
    data = bytearray(codecpickle.dumps(1))
    meta_size = fmt.HEADER_FIXED.unpack_from(data)[3]
    data[10:12] = struct.pack("<H", 0x0002)
    end = fmt.HEADER_FIXED.size + meta_size
    data[end : end + 8] = fmt.CHECKSUM.pack(fmt.checksum(bytes(data[:end]), 0))
    with pytest.raises(codecpickle.CorruptDataError, match="flags"):
        codecpickle.loads(bytes(data))


# -- targets ------------------------------------------------------------------


class Recorder:
    """Records whether it was pickled at all."""

    pickled = False

    def __reduce__(self):
        Recorder.pickled = True
        return (int, (1,))


def test_read_only_target_is_refused_like_open_and_pickle(tmp_path):
    path = tmp_path / "locked.cpkl"
    codecpickle.dump("old", path)
    path.chmod(0o444)
    Recorder.pickled = False
    with pytest.raises(PermissionError) as info:
        codecpickle.dump(Recorder(), path)
    assert info.value.filename == str(path)
    assert "read-only" in str(info.value)
    assert not Recorder.pickled  # refused before writing
    assert codecpickle.load(path) == "old"
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(TEMP_SUFFIX)]
    # Through a symlink too.
    link = tmp_path / "link.cpkl"
    link.symlink_to(path)
    with pytest.raises(PermissionError):
        codecpickle.dump("new", link)
    path.chmod(0o644)
    codecpickle.dump("new", path)
    assert codecpickle.load(path) == "new"


def test_directory_target_is_refused_before_writing(tmp_path):
    Recorder.pickled = False
    with pytest.raises(IsADirectoryError) as info:
        codecpickle.dump(Recorder(), tmp_path)
    assert info.value.filename == str(tmp_path)
    assert not Recorder.pickled
    assert not list(tmp_path.iterdir())


def test_errors_name_the_callers_path_not_the_temporary_file(tmp_path):
    path = tmp_path / "missing" / "obj.cpkl"
    with pytest.raises(FileNotFoundError) as info:
        codecpickle.dump(1, path)
    assert info.value.filename == str(path)
    assert TEMP_SUFFIX not in str(info.value)
    with pytest.raises(FileNotFoundError) as info:
        codecpickle.load(path)
    assert info.value.filename == str(path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo")
def test_targets_that_are_not_regular_files_are_written_directly(tmp_path):
    # A FIFO (like a device) cannot be replaced by a rename: it is opened
    # and written, as open(path, "wb") would, and stays a FIFO.
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[object] = []
    reader = threading.Thread(
        target=lambda: received.append(codecpickle.load(fifo)), daemon=True
    )
    reader.start()
    codecpickle.dump(np.arange(1000), fifo)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    reader.join(timeout=60)
    np.testing.assert_array_equal(received[0], np.arange(1000))


def test_bytes_paths(tmp_path):
    path = os.fsencode(tmp_path / "obj.cpkl")
    obj = {"a": np.arange(1000.0)}
    codecpickle.dump(obj, path)
    np.testing.assert_array_equal(codecpickle.load(path)["a"], obj["a"])
    np.testing.assert_array_equal(codecpickle.load(path, mmap_mode="r")["a"], obj["a"])
    codecpickle.dump(obj, os.fsencode(tmp_path / "obj.cpkl.zst"))  # the extension picks zstd
    assert b'"codec":"zstd"' in (tmp_path / "obj.cpkl.zst").read_bytes()[:200]


# -- codec names ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("compress", "name"),
    [
        ("ZSTD", "zstd"),
        ("Zstd:5", "zstd"),
        ("zstandard", "zstd"),
        ("xz", "lzma"),
        (("XZ", 1), "lzma"),
        ("LZ4", "lz4"),
    ],
)
def test_codec_names_are_case_insensitive_with_aliases(compress, name):
    data = codecpickle.dumps(b"x" * 1000, compress=compress)
    meta_size = fmt.HEADER_FIXED.unpack_from(data)[3]
    meta = json.loads(data[fmt.HEADER_FIXED.size : fmt.HEADER_FIXED.size + meta_size])
    assert meta["codec"] == name  # files record the registered name
    assert codecpickle.loads(data) == b"x" * 1000


@pytest.mark.parametrize(
    ("typo", "suggestion"), [("zstdd", "zstd"), ("lz5", "lz4"), ("gzp", "gzip")]
)
def test_unknown_codec_suggests_the_closest_name(typo, suggestion):
    with pytest.raises(codecpickle.UnknownCodecError, match=f"Did you mean {suggestion!r}"):
        codecpickle.dumps(1, compress=typo)


def test_unknown_codec_is_a_value_error_too():
    with pytest.raises(ValueError, match="Unknown codec"):
        codecpickle.dumps(1, compress="nothing-like-it")
    with pytest.raises(LookupError):
        codecpickle.dumps(1, compress="nothing-like-it")


# -- safe / allow ---------------------------------------------------------------


def test_allow_of_any_length_means_a_restricted_load():
    data = codecpickle.dumps(Renamed())
    with pytest.raises(codecpickle.ForbiddenGlobalError):
        codecpickle.loads(data, allow=[])
    with pytest.raises(codecpickle.ForbiddenGlobalError):
        codecpickle.loads(data, allow=["collections.OrderedDict"])
    assert isinstance(codecpickle.loads(data, allow=[Renamed]), Renamed)
    assert isinstance(codecpickle.loads(data), Renamed)
    assert isinstance(codecpickle.loads(data, safe=False), Renamed)


@pytest.mark.parametrize("allow", [[], ["collections.OrderedDict"]])
def test_safe_false_with_allow_is_refused(tmp_path, allow):
    data = codecpickle.dumps(1)
    with pytest.raises(codecpickle.InvalidOptionError, match="safe=False contradicts allow"):
        codecpickle.loads(data, safe=False, allow=allow)
    path = tmp_path / "obj.cpkl"
    path.write_bytes(data)
    with pytest.raises(codecpickle.InvalidOptionError, match="safe=False contradicts allow"):
        codecpickle.load(path, safe=False, allow=allow)
