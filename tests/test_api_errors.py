"""Damaged and foreign input: each problem gives its own CodecPickleError
subclass with a message that says what and where; never a low-level error."""

from __future__ import annotations

import bz2
import gzip
import io
import pickle
import struct

import numpy as np
import pytest

import codecpickle
from codecpickle import _format as fmt

OBJ = {"arr": np.arange(50_000, dtype=np.int64), "text": "hello" * 100}


@pytest.fixture(params=[None, "zstd", "zlib"])
def stream(request) -> bytes:
    return codecpickle.dumps(OBJ, compress=request.param, chunk_size=1 << 14)


def load_all_ways(data: bytes, tmp_path):
    """Load through loads, a BytesIO and a path; each must raise the same
    kind of error."""
    errors = []
    for loader in (
        lambda: codecpickle.loads(data),
        lambda: codecpickle.load(io.BytesIO(data)),
        lambda: codecpickle.load(_write(tmp_path / "f.cpkl", data)),
    ):
        with pytest.raises(codecpickle.CodecPickleError) as info:
            loader()
        errors.append(info.value)
    return errors


def _write(path, data):
    path.write_bytes(data)
    return path


def test_error_tree_inherits_the_closest_builtins():
    assert issubclass(codecpickle.UnknownCodecError, LookupError)
    assert issubclass(codecpickle.FileFormatError, ValueError)
    assert issubclass(codecpickle.EmptyInputError, EOFError)
    assert issubclass(codecpickle.InvalidOptionError, ValueError)
    assert issubclass(codecpickle.InvalidOptionError, TypeError)
    for name in codecpickle.__all__:
        value = getattr(codecpickle, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, codecpickle.CodecPickleError), name
            assert value.__doc__, name


def test_empty_input(tmp_path):
    for error in load_all_ways(b"", tmp_path):
        assert isinstance(error, codecpickle.EmptyInputError)
        assert "empty" in str(error)


@pytest.mark.parametrize(
    ("data", "hint"),
    [
        (b"\x93NUMPY" + b"\0" * 20, "numpy"),
        (b"PK\x03\x04" + b"\0" * 20, "zip"),
        (b"hello world, this is text", ""),
    ],
)
def test_foreign_files_are_named(tmp_path, data, hint):
    for error in load_all_ways(data, tmp_path):
        assert isinstance(error, codecpickle.NotCodecPickleFileError)
        assert isinstance(error, ValueError)
        assert hint in str(error)


@pytest.mark.parametrize(
    ("data", "hint"),
    [
        (gzip.compress(b"abc"), "gzip"),
        (bz2.compress(b"abc"), "bz2"),
        (b"\x28\xb5\x2f\xfd" + b"\0" * 20, "zstd"),
        (pickle.dumps(OBJ, protocol=5)[:-40], "pickle"),
    ],
)
def test_damaged_pickles_and_compressed_streams_are_named(tmp_path, data, hint):
    # Plain and compressed pickles load (see test_foreign_pickle.py); when
    # damaged, the error says which layer failed.
    for error in load_all_ways(data, tmp_path):
        assert isinstance(error, codecpickle.FileFormatError)
        assert hint in str(error)


def test_text_mode_mangling_is_detected(stream, tmp_path):
    mangled = stream.replace(b"\r\n", b"\n")
    for error in load_all_ways(mangled, tmp_path):
        assert isinstance(error, codecpickle.NotCodecPickleFileError)


def test_unknown_format_version(stream, tmp_path):
    newer = stream[:8] + struct.pack("<H", 99) + stream[10:]
    for error in load_all_ways(newer, tmp_path):
        assert isinstance(error, codecpickle.UnsupportedVersionError)
        assert "99" in str(error)


def test_truncation_anywhere_is_reported(stream, tmp_path):
    cuts = sorted({1, 5, 8, 12, 16, 30, len(stream) // 3, len(stream) // 2, len(stream) - 1})
    for cut in cuts:
        for error in load_all_ways(stream[:cut], tmp_path):
            assert isinstance(error, codecpickle.TruncatedFileError), (cut, error)
            assert "offset" in str(error) or "magic" in str(error)


def test_flipped_bits_fail_their_checksum(stream, tmp_path):
    header_end = fmt.HEADER_FIXED.size + fmt.HEADER_FIXED.unpack_from(stream)[3] + 8
    for position in (header_end - 3, header_end + 1, len(stream) // 2, len(stream) - 12):
        damaged = bytearray(stream)
        damaged[position] ^= 0x10
        for error in load_all_ways(bytes(damaged), tmp_path):
            assert isinstance(error, codecpickle.FileFormatError), (position, error)


def test_flip_in_array_data_is_a_checksum_mismatch_with_its_offset(tmp_path):
    data = bytearray(codecpickle.dumps(np.arange(100_000, dtype=np.int64)))
    position = bytes(data).index(np.arange(100_000, dtype=np.int64)[5000:5010].tobytes())
    data[position] ^= 1
    for error in load_all_ways(bytes(data), tmp_path):
        assert isinstance(error, codecpickle.ChecksumMismatchError)
        assert "offset" in str(error)


def test_header_damage_is_a_checksum_mismatch(stream, tmp_path):
    damaged = bytearray(stream)
    damaged[20] ^= 0x01  # inside the JSON metadata
    for error in load_all_ways(bytes(damaged), tmp_path):
        assert isinstance(error, codecpickle.ChecksumMismatchError)
        assert "header" in str(error)


def test_no_low_level_exception_escapes_random_damage(stream):
    rng = np.random.default_rng(7)
    for _ in range(300):
        damaged = bytearray(stream)
        for position in rng.integers(0, len(damaged), rng.integers(1, 4)):
            damaged[position] = rng.integers(0, 256)
        try:
            loaded = codecpickle.loads(bytes(damaged))
        except codecpickle.CodecPickleError:
            continue
        # Only damage to padding can load, and then it must load correctly.
        np.testing.assert_array_equal(loaded["arr"], OBJ["arr"])
        assert loaded["text"] == OBJ["text"]
