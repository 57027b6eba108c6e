"""Plain pickle files, bare or compressed, load through codecpickle.load:
detected by content, any protocol, every compression wrapper, streamed."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import pickle
import zlib

import lz4.frame
import numpy as np
import pytest
import zstandard

import codecpickle
from codecpickle._foreign import Kind, detect
from tests.conftest import assert_same

OBJ = {
    "array": np.arange(1000, dtype=np.float32).reshape(10, 100),
    "text": "plain pickle",
    "numbers": [1, 2.5, (3, None)],
    "nested": {"bytes": b"\x00\x01" * 100, "set": {1, 2}},
}

WRAPPERS = {
    "none": lambda data: data,
    "gzip": gzip.compress,
    "zlib": zlib.compress,
    "bz2": bz2.compress,
    "xz": lzma.compress,
    "lzma": lambda data: lzma.compress(data, format=lzma.FORMAT_ALONE),
    "zstd": lambda data: zstandard.ZstdCompressor().compress(data),
    "lz4": lz4.frame.compress,
}


def _load_every_way(data: bytes, tmp_path, **options):
    path = tmp_path / "data.pkl"
    path.write_bytes(data)
    results = [
        codecpickle.load(path, **options),
        codecpickle.load(str(path), **options),
        codecpickle.load(io.BytesIO(data), **options),
        codecpickle.loads(data, **options),
    ]
    read_end, write_end = os.pipe()
    with os.fdopen(write_end, "wb") as sink:
        sink.write(data)  # small enough for the pipe's buffer
    with os.fdopen(read_end, "rb", buffering=0) as pipe:
        results.append(codecpickle.load(pipe, **options))
    return results


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize("wrapper", sorted(WRAPPERS))
def test_every_protocol_and_wrapper_loads(tmp_path, protocol, wrapper):
    data = WRAPPERS[wrapper](pickle.dumps(OBJ, protocol=protocol))
    for loaded in _load_every_way(data, tmp_path):
        assert_same(loaded, OBJ)


@pytest.mark.parametrize("wrapper", sorted(WRAPPERS))
def test_detection_is_by_content(wrapper):
    data = WRAPPERS[wrapper](pickle.dumps(OBJ, protocol=4))
    expected = Kind.PICKLE if wrapper == "none" else Kind(wrapper)
    assert detect(data[:8]) is expected


def test_extension_does_not_matter(tmp_path):
    path = tmp_path / "misleading.cpkl.zst"
    path.write_bytes(gzip.compress(pickle.dumps(OBJ)))
    assert_same(codecpickle.load(path), OBJ)


def test_multi_member_and_multi_frame_streams(tmp_path):
    # gzip and zstd streams may hold several members/frames back to back.
    data = pickle.dumps(OBJ, protocol=5)
    half = len(data) // 2
    for joined in (
        gzip.compress(data[:half]) + gzip.compress(data[half:]),
        zstandard.ZstdCompressor().compress(data[:half])
        + zstandard.ZstdCompressor().compress(data[half:]),
    ):
        assert_same(codecpickle.loads(joined), OBJ)


def test_objects_follow_each_other_in_an_uncompressed_file():
    stream = io.BytesIO()
    for value in ("first", {"second": np.arange(3)}, 3):
        pickle.dump(value, stream, protocol=4)
    stream.seek(0)
    assert codecpickle.load(stream) == "first"
    assert_same(codecpickle.load(stream), {"second": np.arange(3)})
    assert codecpickle.load(stream) == 3
    with pytest.raises(codecpickle.EmptyInputError):
        codecpickle.load(stream)


def test_safe_load_of_a_pickle_admits_safe_types_only(tmp_path):
    data = gzip.compress(pickle.dumps(OBJ, protocol=5))
    for loaded in _load_every_way(data, tmp_path, safe=True):
        assert_same(loaded, OBJ)
    hostile = pickle.dumps(os.system, protocol=2)
    with pytest.raises(codecpickle.ForbiddenGlobalError, match=r"posix\.system"):
        codecpickle.loads(zlib.compress(hostile), safe=True)


@pytest.mark.parametrize("wrapper", sorted(WRAPPERS))
def test_truncated_input_is_reported(tmp_path, wrapper):
    data = WRAPPERS[wrapper](pickle.dumps(OBJ, protocol=4))
    for cut in (len(data) // 2, len(data) - 3):
        path = tmp_path / "cut.pkl"
        path.write_bytes(data[:cut])
        for source, load in ((path, codecpickle.load), (data[:cut], codecpickle.loads)):
            with pytest.raises(codecpickle.FileFormatError) as info:
                load(source)
            assert isinstance(
                info.value, codecpickle.TruncatedFileError | codecpickle.CorruptDataError
            )


@pytest.mark.parametrize("wrapper", sorted(set(WRAPPERS) - {"none"}))
def test_damaged_compressed_data_is_reported(wrapper):
    data = bytearray(WRAPPERS[wrapper](pickle.dumps(OBJ, protocol=4)))
    for offset in range(12, len(data), max(1, len(data) // 7)):
        damaged = bytes(data[:offset]) + bytes([data[offset] ^ 0x55]) + bytes(data[offset + 1 :])
        try:
            loaded = codecpickle.loads(damaged)
        except codecpickle.CodecPickleError:
            continue
        # Formats without a checksum over the data may decode damage into
        # another valid pickle; then it must at least be a complete object.
        assert loaded is not None


def test_declared_sizes_are_bounded():
    data = pickle.dumps(b"x" * 100_000, protocol=4)
    with pytest.raises(codecpickle.SizeLimitError):
        codecpickle.loads(gzip.compress(data), max_buffer_size=10_000)
    with pytest.raises(codecpickle.SizeLimitError):
        codecpickle.loads(gzip.compress(data), max_buffer_size=10_000, safe=True)


def test_code_in_a_trusted_pickle_runs_and_its_errors_surface():
    data = pickle.dumps(_Exploding(), protocol=4)
    with pytest.raises(RuntimeError, match="from the file's own code"):
        codecpickle.loads(gzip.compress(data))


class _Exploding:
    def __reduce__(self):
        return (_explode, ())


def _explode():
    raise RuntimeError("from the file's own code")
