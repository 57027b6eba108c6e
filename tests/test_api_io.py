"""Targets: paths, path-likes, file objects, pipes, sockets; several
objects per stream; reading exactly one object's bytes."""

from __future__ import annotations

import io
import os
import pathlib
import socket
import threading

import numpy as np
import pytest

import codecpickle
from tests.conftest import assert_same

CODECS = [None, "zlib", "gzip", "bz2", "lzma", "lz4", "zstd"]


def sample(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "seed": seed,
        "big": rng.random(300_000),
        "small": np.arange(7, dtype=np.int8),
        "text": ["a", "b"] * seed,
    }


class WriteOnly:
    """A sink with nothing but write(): no seek, tell, fileno or flush."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data) -> int:
        data = bytes(data)
        self.chunks.append(data)
        return len(data)


class ReadOnly:
    """A source with nothing but read(), returning short reads."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def read(self, size: int = -1) -> bytes:
        size = min(size, 1000) if size >= 0 else len(self._data)
        piece = self._data[self._pos : self._pos + size]
        self._pos += len(piece)
        return piece


@pytest.mark.parametrize("compress", CODECS)
def test_path_str_and_pathlike(tmp_path, compress):
    obj = sample(1)
    codecpickle.dump(obj, str(tmp_path / "a.cpkl"), compress=compress)
    assert_same(codecpickle.load(str(tmp_path / "a.cpkl")), obj)
    codecpickle.dump(obj, pathlib.Path(tmp_path / "b.cpkl"), compress=compress)
    assert_same(codecpickle.load(pathlib.Path(tmp_path / "b.cpkl")), obj)


@pytest.mark.parametrize("compress", CODECS)
def test_minimal_file_objects_without_seek_or_tell(compress):
    obj = sample(2)
    sink = WriteOnly()
    codecpickle.dump(obj, sink, compress=compress)
    data = b"".join(sink.chunks)
    assert data == codecpickle.dumps(obj, compress=compress)
    assert_same(codecpickle.load(ReadOnly(data)), obj)


@pytest.mark.parametrize("compress", [None, "zstd", "lz4"])
def test_pipe(compress):
    objects = [sample(i) for i in range(3)]
    read_fd, write_fd = os.pipe()

    def produce() -> None:
        with os.fdopen(write_fd, "wb", buffering=0) as pipe:  # raw: short writes
            for obj in objects:
                codecpickle.dump(obj, pipe, compress=compress)

    producer = threading.Thread(target=produce)
    producer.start()
    with os.fdopen(read_fd, "rb") as pipe:
        for obj in objects:
            assert_same(codecpickle.load(pipe), obj)
        with pytest.raises(EOFError):
            codecpickle.load(pipe)
    producer.join()


@pytest.mark.parametrize("compress", [None, "zstd"])
def test_socket(compress):
    obj = sample(3)
    left, right = socket.socketpair()

    def send() -> None:
        with left.makefile("wb") as stream:
            codecpickle.dump(obj, stream, compress=compress)
        left.shutdown(socket.SHUT_WR)

    with left, right:
        sender = threading.Thread(target=send)
        sender.start()
        with right.makefile("rb") as stream:
            assert_same(codecpickle.load(stream), obj)
        sender.join()


@pytest.mark.parametrize("compress", CODECS)
def test_several_objects_one_after_another(tmp_path, compress):
    path = tmp_path / "many.cpkl"
    objects = [sample(i) for i in range(4)] + ["plain", 42, None]
    with open(path, "wb") as file:
        for obj in objects:
            codecpickle.dump(obj, file, compress=compress)
    with open(path, "rb") as file:
        for obj in objects:
            assert_same(codecpickle.load(file), obj)
        assert file.read() == b""
        with pytest.raises(codecpickle.EmptyInputError):
            codecpickle.load(file)


def test_load_stops_exactly_at_the_end_of_its_stream():
    buffer = io.BytesIO()
    codecpickle.dump(sample(4), buffer, compress="zstd")
    end = buffer.tell()
    buffer.write(b"TRAILER")
    buffer.seek(0)
    codecpickle.load(buffer)
    assert buffer.tell() == end
    assert buffer.read() == b"TRAILER"


def test_loads_rejects_trailing_bytes():
    data = codecpickle.dumps(sample(5))
    with pytest.raises(codecpickle.CorruptDataError, match="trailing"):
        codecpickle.loads(data + b"x")


def test_loads_accepts_any_buffer():
    obj = sample(6)
    data = codecpickle.dumps(obj, compress="lz4")
    for form in (data, bytearray(data), memoryview(data), np.frombuffer(data, np.uint8)):
        assert_same(codecpickle.loads(form), obj)


def test_bad_targets_are_refused_clearly():
    with pytest.raises(codecpickle.InvalidOptionError, match="path"):
        codecpickle.dump(1, 12345)
    with pytest.raises(codecpickle.InvalidOptionError, match="path"):
        codecpickle.load(12345)
    with pytest.raises(codecpickle.InvalidOptionError, match="load"):
        codecpickle.loads("not bytes")


def test_dump_into_an_existing_directory_path_fails_without_leftovers(tmp_path):
    with pytest.raises(IsADirectoryError):
        codecpickle.dump(1, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_output_does_not_depend_on_thread_count():
    obj = {"a": np.sin(np.arange(3_000_000) / 1e4), "b": list(range(100_000))}
    outputs = {
        threads: codecpickle.dumps(obj, compress="zstd", threads=threads, chunk_size=1 << 18)
        for threads in (1, 2, 4)
    }
    assert outputs[1] == outputs[2] == outputs[4]
    for threads in (1, 2, 4):
        assert_same(codecpickle.loads(outputs[1], threads=threads), obj)


def test_uses_the_c_pickler_and_unpickler():
    import _pickle

    from codecpickle import _pickling

    assert issubclass(_pickling.Pickler, _pickle.Pickler)
    assert issubclass(_pickling.Unpickler, _pickle.Unpickler)
