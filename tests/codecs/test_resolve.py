"""resolve_compress and codec_for_path: every accepted form and every refusal."""

from __future__ import annotations

from pathlib import Path

import pytest

from codecpickle.codecs import (
    Bz2Codec,
    Codec,
    GzipCodec,
    Lz4Codec,
    LzmaCodec,
    ZlibCodec,
    ZstdCodec,
    codec_for_path,
    resolve_compress,
)
from codecpickle.errors import InvalidOptionError, UnknownCodecError


@pytest.mark.parametrize("compress", [None, False, 0])
def test_no_compression(compress: object) -> None:
    assert resolve_compress(compress) is None


@pytest.mark.parametrize(
    ("compress", "expected"),
    [
        (True, ZstdCodec()),
        (1, ZstdCodec(level=1)),
        (19, ZstdCodec(level=19)),
        (-5, ZstdCodec(level=-5)),
        ("lz4", Lz4Codec()),
        ("gzip", GzipCodec()),
        (("zstd", 3), ZstdCodec(level=3)),
        (("bz2", None), Bz2Codec()),
        (["lzma", 2], LzmaCodec(level=2)),
        ("zstd:3", ZstdCodec(level=3)),
        ("zstd:-5", ZstdCodec(level=-5)),
        ("zlib: 9", ZlibCodec(level=9)),
        (ZlibCodec, ZlibCodec()),
    ],
)
def test_accepted_forms(compress: object, expected: Codec) -> None:
    codec = resolve_compress(compress)
    assert type(codec) is type(expected)
    assert codec == expected


def test_a_codec_instance_is_returned_as_is() -> None:
    codec = Lz4Codec(level=9)
    assert resolve_compress(codec) is codec


@pytest.mark.parametrize(
    "compress",
    [1.5, "", ":3", b"zstd", ("zstd",), ("zstd", 3, 1), (3, "zstd"), {"zstd": 3}, object()],
)
def test_other_values_are_refused_naming_every_form(compress: object) -> None:
    with pytest.raises(InvalidOptionError) as caught:
        resolve_compress(compress)
    message = str(caught.value)
    for form in ("None/False/0", "True", "int level", "codec name", "(name, level)",
                 "'name:level'", "Codec instance"):  # fmt: skip
        assert form in message


@pytest.mark.parametrize(
    ("compress", "range_text"),
    [
        (23, "from -131072 to 22"),
        (-131073, "from -131072 to 22"),
        (("lz4", 17), "from 0 to 16"),
        (("bz2", 0), "from 1 to 9"),
        ("gzip:10", "from 0 to 9"),
        (("zstd", 2.0), "integer level"),
        (("zstd", True), "integer level"),
        (("zstd", "3"), "integer level"),
        ("zstd:x", "integer level"),
        ("zstd:", "integer level"),
    ],
)
def test_bad_levels_name_the_valid_range(compress: object, range_text: str) -> None:
    with pytest.raises(InvalidOptionError, match=range_text):
        resolve_compress(compress)


@pytest.mark.parametrize("compress", ["brotlii", ("nope", 3), "nope:3", "ZSTD"])
def test_unknown_names_list_the_available_codecs(compress: object) -> None:
    with pytest.raises(UnknownCodecError, match="Available codecs: zlib, gzip, bz2, lzma, lz4"):
        resolve_compress(compress)


def test_bool_is_not_a_level() -> None:
    assert resolve_compress(True) == ZstdCodec(level=ZstdCodec.default_level)
    assert resolve_compress(False) is None


@pytest.mark.parametrize(
    ("name", "codec_class"),
    [
        ("model.cpkl.zst", ZstdCodec),
        ("model.CPKL.ZST", ZstdCodec),
        ("model.cpkl.lz4", Lz4Codec),
        ("model.v2.cpkl.gz", GzipCodec),
        ("model.cpkl.bz2", Bz2Codec),
        ("model.cpkl.xz", LzmaCodec),
        ("model.cpkl.lzma", LzmaCodec),
        ("model.cpkl.z", ZlibCodec),
        ("model.cpkl.Z", ZlibCodec),
    ],
)
def test_codec_for_path_by_extension(name: str, codec_class: type[Codec], tmp_path: Path) -> None:
    for path in (name, tmp_path / name):
        codec = codec_for_path(path)
        assert type(codec) is codec_class
        assert codec.level == codec_class.default_level


@pytest.mark.parametrize(
    "name", ["model.zst", "model.pkl.gz", "data.GZ", "x.bz2", "x.xz", "x.lzma", "x.z", "x.lz4"]
)
def test_names_of_standard_compressed_files_are_refused(name: str, tmp_path: Path) -> None:
    stem, extension = name.rsplit(".", 1)
    for path in (name, tmp_path / name):
        with pytest.raises(InvalidOptionError) as info:
            codec_for_path(path)
        message = str(info.value)
        assert f"{stem}.cpkl.{extension}" in message  # the name to use instead
        assert "compress=" in message


@pytest.mark.parametrize(
    "name", ["model.cpkl", "model", "model.pkl", "archive.gz.tmp", ".zst", "model.joblib"]
)
def test_codec_for_path_without_a_known_extension(name: str) -> None:
    assert codec_for_path(name) is None
