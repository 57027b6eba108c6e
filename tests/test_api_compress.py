"""The ``compress`` argument: every accepted form, every refusal, and the
file-extension rule."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import numpy as np
import pytest

import codecpickle
from codecpickle import _format as fmt
from codecpickle.codecs import ZstdCodec


def header_meta(data: bytes) -> dict:
    """The JSON metadata of a stream's header."""
    _, _, _, size = fmt.HEADER_FIXED.unpack_from(data)
    return json.loads(data[fmt.HEADER_FIXED.size : fmt.HEADER_FIXED.size + size])


OBJ = {"x": np.arange(1000, dtype=np.float64), "y": "text"}


@pytest.mark.parametrize(
    ("compress", "codec", "params"),
    [
        (None, "none", {}),
        (False, "none", {}),
        (0, "none", {}),
        (True, "zstd", {"level": 3}),
        (7, "zstd", {"level": 7}),
        (-5, "zstd", {"level": -5}),
        ("lz4", "lz4", {"level": 0}),
        ("zlib", "zlib", {"level": 6}),
        (("zstd", 3), "zstd", {"level": 3}),
        (["bz2", 1], "bz2", {"level": 1}),
        ("zstd:19", "zstd", {"level": 19}),
        ("gzip:9", "gzip", {"level": 9}),
        (("lzma", 0), "lzma", {"level": 0}),
        (ZstdCodec(level=12), "zstd", {"level": 12}),
    ],
)
def test_compress_forms_are_recorded_in_the_header(compress, codec, params):
    data = codecpickle.dumps(OBJ, compress=compress)
    meta = header_meta(data)
    assert meta["codec"] == codec
    assert meta["params"] == params
    loaded = codecpickle.loads(data)
    np.testing.assert_array_equal(loaded["x"], OBJ["x"])


@pytest.mark.parametrize(
    "compress",
    [
        ("zstd", 23),
        ("zstd", -(1 << 17) - 1),
        ("zlib", 10),
        ("gzip", -1),
        ("bz2", 0),
        ("lzma", 10),
        ("lz4", 17),
        "zstd:abc",
        "zstd:3:4",
        ("zstd",),
        ("zstd", 3, 4),
        ("zstd", "3"),
        ("zstd", 2.5),
        2.5,
        b"zstd",
        object(),
        23,  # zstd's maximum is 22
    ],
)
def test_invalid_compress_is_refused_with_invalid_option_error(compress):
    with pytest.raises(codecpickle.InvalidOptionError):
        codecpickle.dumps(OBJ, compress=compress)


def test_level_error_names_the_valid_range():
    with pytest.raises(codecpickle.InvalidOptionError, match=r"0 to 9"):
        codecpickle.dumps(OBJ, compress=("zlib", 12))


def test_unknown_codec_name_is_a_lookup_error_listing_available_codecs():
    with pytest.raises(codecpickle.UnknownCodecError, match="zstd") as info:
        codecpickle.dumps(OBJ, compress="snappy-nope")
    assert isinstance(info.value, LookupError)
    assert "snappy-nope" in str(info.value)


def test_invalid_compress_neither_creates_nor_truncates_the_target(tmp_path: Path):
    fresh = tmp_path / "fresh.cpkl"
    with pytest.raises(codecpickle.InvalidOptionError):
        codecpickle.dump(OBJ, fresh, compress=("zstd", 99))
    assert not fresh.exists()

    existing = tmp_path / "existing.cpkl"
    codecpickle.dump("old", existing)
    before = existing.read_bytes()
    with pytest.raises(codecpickle.UnknownCodecError):
        codecpickle.dump(OBJ, existing, compress="no-such-codec")
    with pytest.raises(codecpickle.InvalidOptionError):
        codecpickle.dump(OBJ, existing, threads=0)
    with pytest.raises(codecpickle.InvalidOptionError):
        codecpickle.dump(OBJ, existing, chunk_size=10)
    assert existing.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing.cpkl"]


@pytest.mark.parametrize(
    ("suffix", "codec"),
    [
        (".cpkl.zst", "zstd"),
        (".cpkl.lz4", "lz4"),
        (".cpkl.gz", "gzip"),
        (".cpkl.bz2", "bz2"),
        (".cpkl.xz", "lzma"),
        (".cpkl.lzma", "lzma"),
        (".cpkl.z", "zlib"),
        (".cpkl.Z", "zlib"),
        (".CPKL.GZ", "gzip"),
        (".cpkl", "none"),
        (".pkl", "none"),
    ],
)
def test_extension_picks_the_codec_when_compress_is_not_given(tmp_path, suffix, codec):
    path = tmp_path / f"data{suffix}"
    codecpickle.dump(OBJ, path)
    assert header_meta(path.read_bytes())["codec"] == codec
    assert codecpickle.load(path)["y"] == "text"


@pytest.mark.parametrize("suffix", [".gz", ".pkl.gz", ".zst", ".bz2", ".xz", ".lzma", ".lz4", ".z"])
def test_standard_compressed_names_are_refused_without_compress(tmp_path, suffix):
    # A file named data.gz that gzip cannot read would mislead: refused,
    # before anything is written, with the codecpickle name to use instead.
    existing = tmp_path / f"data{suffix}"
    existing.write_bytes(b"previous")
    with pytest.raises(codecpickle.InvalidOptionError, match=r"\.cpkl"):
        codecpickle.dump(OBJ, existing)
    assert existing.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == [existing.name]


@pytest.mark.parametrize(
    ("compress", "codec"),
    [(0, "none"), (None, "none"), (False, "none"), ("lz4", "lz4"), (("zlib", 1), "zlib")],
)
def test_explicit_compress_wins_over_the_extension(tmp_path, compress, codec):
    path = tmp_path / "data.gz"
    codecpickle.dump(OBJ, path, compress=compress)
    assert header_meta(path.read_bytes())["codec"] == codec


def test_file_objects_default_to_no_compression_whatever_their_name(tmp_path):
    path = tmp_path / "data.zst"
    with open(path, "wb") as file:
        codecpickle.dump(OBJ, file)
    assert header_meta(path.read_bytes())["codec"] == "none"


def test_dumps_defaults_to_no_compression():
    assert header_meta(codecpickle.dumps(OBJ))["codec"] == "none"


def test_load_needs_no_codec_argument_for_any_codec():
    for name in ("zlib", "gzip", "bz2", "lzma", "lz4", "zstd"):
        buffer = io.BytesIO()
        codecpickle.dump(OBJ, buffer, compress=name)
        buffer.seek(0)
        np.testing.assert_array_equal(codecpickle.load(buffer)["x"], OBJ["x"])


def test_unregistered_codec_in_header_fails_naming_the_codec():
    data = bytearray(codecpickle.dumps(OBJ, compress="zstd"))
    meta = header_meta(bytes(data))
    meta["codec"] = "zorro"
    body = json.dumps(meta, sort_keys=True, separators=(",", ":")).encode()
    head = fmt.HEADER_FIXED.pack(fmt.MAGIC, fmt.VERSION, 0, len(body)) + body
    old_size = fmt.HEADER_FIXED.unpack_from(data)[3]
    rest = data[fmt.HEADER_FIXED.size + old_size + 8 :]
    forged = head + struct.pack("<Q", fmt.checksum(head, 0)) + rest
    with pytest.raises(codecpickle.UnknownCodecError, match="zorro"):
        codecpickle.loads(forged)


@pytest.mark.parametrize("threads", [0, -1, 1.5, "2", True])
def test_invalid_threads_is_refused(threads):
    with pytest.raises(codecpickle.InvalidOptionError, match="threads"):
        codecpickle.dumps(OBJ, threads=threads)
    with pytest.raises(codecpickle.InvalidOptionError, match="threads"):
        codecpickle.loads(codecpickle.dumps(OBJ), threads=threads)
