"""The codec registry: built-ins, register_codec, entry-point plugins, header lookup."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
import zlib
from pathlib import Path
from typing import ClassVar

import pytest
from fake_plugins import write_fake_site

import codecpickle.codecs as codecs
from codecpickle.codecs import (
    ENTRY_POINT_GROUP,
    Bz2Codec,
    Codec,
    CodecInfo,
    GzipCodec,
    Lz4Codec,
    LzmaCodec,
    ZlibCodec,
    ZstdCodec,
    _registry,
    available_codecs,
    codec_from_header,
    codec_provider,
    get_codec,
    register_codec,
)
from codecpickle.errors import (
    CodecRegistrationError,
    CodecUnavailableError,
    CorruptDataError,
    UnknownCodecError,
)

BUILTINS = {
    "zlib": ZlibCodec,
    "gzip": GzipCodec,
    "bz2": Bz2Codec,
    "lzma": LzmaCodec,
    "lz4": Lz4Codec,
    "zstd": ZstdCodec,
}

FAKE_NAMES = {"broken", "fake", "misnamed", "notacodec"}


class MyCodec(Codec):
    """A code-registered codec (zlib underneath)."""

    name: ClassVar[str] = "mine"
    default_level: ClassVar[int] = 1
    min_level: ClassVar[int] = 1
    max_level: ClassVar[int] = 3

    def encode(self, data: memoryview, itemsize: int = 1) -> bytes:
        return zlib.compress(data, self.level)

    def decode(self, data: memoryview, raw_size: int) -> bytes:
        return zlib.decompress(data)


class OtherZstd(MyCodec):
    name: ClassVar[str] = "zstd"


# -- built-ins -------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "codec_class"), BUILTINS.items())
def test_builtins_are_found_by_name(name: str, codec_class: type[Codec]) -> None:
    assert get_codec(name) is codec_class
    assert codec_class.name == name
    assert codec_provider(name) is None


def test_builtin_classes_are_exported() -> None:
    for codec_class in BUILTINS.values():
        assert getattr(codecs, codec_class.__name__) is codec_class
    assert ENTRY_POINT_GROUP == "codecpickle.codecs"
    with pytest.raises(AttributeError):
        codecs.NoSuchCodec  # noqa: B018


def test_unknown_name_lists_the_available_codecs() -> None:
    with pytest.raises(UnknownCodecError) as caught:
        get_codec("nope")
    message = str(caught.value)
    assert "'nope'" in message
    assert "zlib, gzip, bz2, lzma, lz4, zstd" in message
    assert ENTRY_POINT_GROUP in message
    assert isinstance(caught.value, LookupError)


def test_non_string_names_are_unknown() -> None:
    with pytest.raises(UnknownCodecError, match="Expected a codec name"):
        get_codec(3)  # type: ignore[arg-type]


# -- register_codec -----------------------------------------------------------------------


def test_register_codec_makes_a_name_available() -> None:
    register_codec(MyCodec)
    assert get_codec("mine") is MyCodec
    assert codec_provider("mine") is None
    assert available_codecs()["mine"] == CodecInfo("mine", "registered", None, True, None)


def test_register_the_same_class_twice_is_a_no_op() -> None:
    register_codec(MyCodec)
    register_codec(MyCodec)
    assert get_codec("mine") is MyCodec


def test_a_taken_name_is_refused_without_force() -> None:
    register_codec(MyCodec)
    other = type("MyCodec2", (MyCodec,), {})
    with pytest.raises(CodecRegistrationError, match=r"'mine' is already provided.*force=True"):
        register_codec(other)
    register_codec(other, force=True)
    assert get_codec("mine") is other


def test_a_builtin_name_needs_force() -> None:
    with pytest.raises(CodecRegistrationError, match="built in"):
        register_codec(OtherZstd)
    assert get_codec("zstd") is ZstdCodec
    register_codec(OtherZstd, force=True)
    assert get_codec("zstd") is OtherZstd
    assert list(available_codecs())[:6] == list(BUILTINS)
    assert available_codecs()["zstd"].source == "registered"


@pytest.mark.parametrize("not_a_codec", [object, int, "zstd", ZstdCodec(), None])
def test_only_codec_classes_are_registered(not_a_codec: object) -> None:
    with pytest.raises(CodecRegistrationError, match=r"subclass of codecpickle\.Codec"):
        register_codec(not_a_codec)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad_name", ["Upper", "with space", "", "-dash-first", "x" * 65, 3])
def test_invalid_names_are_refused(bad_name: object) -> None:
    bad = type("Bad", (MyCodec,), {"name": bad_name})
    with pytest.raises(CodecRegistrationError, match="invalid name"):
        register_codec(bad)


def test_registrations_stay_in_their_registry(fresh_registry: _registry.Registry) -> None:
    register_codec(MyCodec)
    assert "mine" in fresh_registry.names()
    assert "mine" in fresh_registry.copy().names()
    assert "mine" not in _registry.Registry().names()
    other = fresh_registry.copy()
    other.register(type("Another", (MyCodec,), {"name": "another"}))
    assert "another" not in fresh_registry.names()


# -- entry points ----------------------------------------------------------------------


@pytest.mark.usefixtures("fake_site")
def test_entry_point_codecs_load_lazily() -> None:
    names = _registry.REGISTRY.names()
    assert names[:6] == list(BUILTINS)
    # Sorted after the built-ins (real plugins installed here may sit in between).
    assert [name for name in names[6:] if name in FAKE_NAMES] == sorted(FAKE_NAMES)
    assert "cpk_test_fake_plugin" not in sys.modules  # listing names imports nothing
    fake = get_codec("fake")
    assert fake.__module__ == "cpk_test_fake_plugin"
    assert get_codec("fake") is fake
    assert codec_provider("fake") == {"distribution": "codecpickle-fake", "version": "0.1"}


@pytest.mark.usefixtures("fake_site")
def test_a_broken_plugin_names_itself_and_does_not_break_others() -> None:
    with pytest.raises(CodecUnavailableError) as caught:
        get_codec("broken")
    message = str(caught.value)
    assert "'broken'" in message
    assert "codecpickle-broken 0.2" in message
    assert "cpk_test_backend_that_is_not_installed" in message
    assert isinstance(caught.value.__cause__, ImportError)
    with pytest.raises(CodecUnavailableError):  # still broken, still explained
        get_codec("broken")
    assert get_codec("fake").name == "fake"
    assert get_codec("zstd") is ZstdCodec


@pytest.mark.usefixtures("shadow_site")
def test_a_plugin_cannot_take_a_builtin_name() -> None:
    with pytest.warns(UserWarning, match="built-in") as caught:
        assert codec_provider("fake") is not None
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "'zstd'" in message
    assert "codecpickle-shadow 0.4" in message
    assert "built-in" in message
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once: later lookups are silent
        assert get_codec("zstd") is ZstdCodec
        get_codec("fake")


@pytest.mark.usefixtures("fake_site")
@pytest.mark.parametrize(
    ("name", "reason"),
    [("misnamed", "not 'misnamed' like its entry point"), ("notacodec", "not a Codec subclass")],
)
def test_an_entry_point_must_give_a_codec_of_its_own_name(name: str, reason: str) -> None:
    with pytest.raises(CodecUnavailableError, match=reason):
        get_codec(name)


@pytest.mark.usefixtures("fake_site")
def test_registering_over_a_plugin_name_needs_force() -> None:
    clash = type("Clash", (MyCodec,), {"name": "fake"})
    with pytest.raises(CodecRegistrationError, match="codecpickle-fake"):
        register_codec(clash)
    register_codec(clash, force=True)
    assert get_codec("fake") is clash
    assert codec_provider("fake") is None


@pytest.mark.usefixtures("fake_site")
def test_available_codecs_reports_every_source() -> None:
    register_codec(MyCodec)
    infos = available_codecs()
    names = [name for name in infos if name in {*BUILTINS, "mine", *FAKE_NAMES}]
    assert names == [*BUILTINS, "mine", *sorted(FAKE_NAMES)]
    assert infos["zstd"] == CodecInfo("zstd", "builtin", None, True, None)
    assert infos["mine"].source == "registered"
    assert infos["fake"] == CodecInfo("fake", "codecpickle-fake", "0.1", True, None)
    broken = infos["broken"]
    assert (broken.source, broken.version, broken.available) == ("codecpickle-broken", "0.2", False)
    assert "cpk_test_backend_that_is_not_installed" in broken.error
    with pytest.raises(AttributeError):
        broken.available = True  # type: ignore[misc]  # frozen


# -- codec_from_header -------------------------------------------------------------------


def test_codec_from_header_rebuilds_builtins() -> None:
    assert codec_from_header("zstd", {"level": 7}, None) == ZstdCodec(level=7)
    assert codec_from_header("lz4", {}, None) == Lz4Codec()


def test_codec_from_header_names_the_missing_plugin_and_what_to_install() -> None:
    provider = {"distribution": "codecpickle-zopfli", "version": "0.1.0"}
    with pytest.raises(UnknownCodecError) as caught:
        codec_from_header("zopfli", {"level": 5}, provider)
    assert not isinstance(caught.value, CodecUnavailableError)
    assert str(caught.value) == (
        "This file was written with codec 'zopfli', which is not installed here. "
        "Codecs are discovered through the entry-point group 'codecpickle.codecs'; "
        "the file was written with it provided by codecpickle-zopfli 0.1.0: "
        "pip install codecpickle-zopfli."
    )


def test_codec_from_header_without_provider_names_the_group() -> None:
    with pytest.raises(UnknownCodecError) as caught:
        codec_from_header("zopfli", {}, None)
    assert "'zopfli'" in str(caught.value)
    assert "'codecpickle.codecs'" in str(caught.value)
    assert "pip install" not in str(caught.value)


@pytest.mark.parametrize(
    "params", [{"level": 99}, {"level": "3"}, {"bogus": 1}, [3], None, {1: 2}]
)
def test_codec_from_header_reports_bad_params_as_a_damaged_file(params: object) -> None:
    with pytest.raises(CorruptDataError, match="'zstd'"):
        codec_from_header("zstd", params, None)


@pytest.mark.usefixtures("fake_site")
def test_codec_from_header_with_a_broken_plugin() -> None:
    with pytest.raises(CodecUnavailableError, match="codecpickle-broken"):
        codec_from_header("broken", {}, {"distribution": "codecpickle-broken", "version": "0.2"})
    assert codec_from_header("fake", {"level": 4}, None).params == {"level": 4}


# -- laziness ----------------------------------------------------------------------------


def test_import_codecpickle_scans_and_imports_no_plugin(tmp_path: Path) -> None:
    site = write_fake_site(tmp_path / "site-packages")
    script = """
import json, sys
import codecpickle, codecpickle.codecs
from codecpickle.codecs import _registry
codecpickle.codecs.get_codec("zstd").__name__, codecpickle.codecs.resolve_compress(("lz4", 1))
print(json.dumps({
    "scanned": _registry.REGISTRY._entry_points is not None,
    "plugins": sorted(m for m in sys.modules if m.startswith(("cpk_test_", "codecpickle_"))),
}))
"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), *sys.path])}
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(result.stdout) == {"scanned": False, "plugins": []}
