"""The writer's environment in the manifest, and what a load does with it."""

from __future__ import annotations

import io
import platform
import sys
import textwrap
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import codecpickle
from codecpickle import _manifest
from codecpickle._index import read_index

PACKAGE = textwrap.dedent(
    """
    class Thing:
        def __init__(self, value):
            self.value = value

        def __setstate__(self, state):
            if state.get("explode"):
                raise TypeError("Thing cannot take this state")
            self.__dict__.update(state)

    def make(value):
        return Thing(value)
    """
)


def _install(root: Path, version: str) -> None:
    """(Re)write the dist-info of the fake distribution ``fakedist``, which
    provides the module ``fakemod``."""
    for old in root.glob("fakedist-*.dist-info"):
        for file in old.iterdir():
            file.unlink()
        old.rmdir()
    info = root / f"fakedist-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: fakedist\nVersion: {version}\n")
    (info / "top_level.txt").write_text("fakemod\n")
    _manifest.installed_version.cache_clear()
    _manifest.distribution_of.cache_clear()
    _manifest._packages_distributions.cache_clear()


@pytest.fixture
def fakemod(tmp_path: Path) -> Iterator[tuple[object, Path]]:
    (tmp_path / "fakemod").mkdir()
    (tmp_path / "fakemod" / "__init__.py").write_text(PACKAGE)
    _install(tmp_path, "1.2.0")
    sys.path.insert(0, str(tmp_path))
    try:
        import fakemod

        yield fakemod, tmp_path
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("fakemod", None)
        _manifest._warned.clear()
        _manifest.installed_version.cache_clear()
        _manifest.distribution_of.cache_clear()
        _manifest._packages_distributions.cache_clear()


def test_manifest_records_python_codecpickle_numpy_and_packages(fakemod):
    module, _ = fakemod
    data = codecpickle.dumps({"t": module.Thing(1), "a": np.ones(3), "when": [1.5]})
    manifest = read_index(data).manifest
    assert manifest["python"] == platform.python_version()
    assert manifest["codecpickle"] == codecpickle.__version__
    assert manifest["numpy"] == np.__version__
    assert manifest["packages"] == [
        {"module": "fakemod", "distribution": "fakedist", "version": "1.2.0"}
    ]


def test_functions_and_classes_pickled_by_reference_are_recorded(fakemod):
    module, _ = fakemod
    data = codecpickle.dumps([module.make, module.Thing, io.BytesIO])
    modules = [p["module"] for p in read_index(data).manifest["packages"]]
    assert modules == ["fakemod"]  # io is in the standard library


def test_modules_without_a_distribution_are_listed(tmp_path, monkeypatch):
    (tmp_path / "localmod.py").write_text("class Local:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import localmod

    try:
        data = codecpickle.dumps(localmod.Local())
        assert read_index(data).manifest["packages"] == [
            {"module": "localmod", "distribution": None, "version": None}
        ]
    finally:
        sys.modules.pop("localmod", None)


def test_the_warning_is_a_user_warning_and_a_codecpickle_error(fakemod):
    module, root = fakemod
    data = codecpickle.dumps(module.Thing(5))
    _install(root, "3.0")
    assert issubclass(codecpickle.VersionMismatchWarning, UserWarning)
    with warnings.catch_warnings():
        warnings.simplefilter("error", codecpickle.VersionMismatchWarning)
        with pytest.raises(codecpickle.CodecPickleError, match=r"fakedist 1\.2\.0"):
            codecpickle.loads(data)


def test_sklearn_maps_to_its_distribution():
    assert _manifest.distribution_of("sklearn") == "scikit-learn"
    assert _manifest.distribution_of("no_such_module_here") is None


def test_same_major_minor_loads_silently(fakemod, tmp_path):
    module, root = fakemod
    path = tmp_path / "x.cpkl"
    codecpickle.dump(module.Thing(5), path)
    _install(root, "1.2.7")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert codecpickle.load(path).value == 5


@pytest.mark.parametrize("how", ["path", "BytesIO", "loads", "pipe"])
def test_other_major_minor_warns_once_naming_both_versions(fakemod, tmp_path, how):
    module, root = fakemod
    data = codecpickle.dumps(module.Thing(5))
    _install(root, "1.3.0")
    path = tmp_path / "x.cpkl"
    path.write_bytes(data)
    loaders = {
        "path": lambda: codecpickle.load(path),
        "BytesIO": lambda: codecpickle.load(io.BytesIO(data)),
        "loads": lambda: codecpickle.loads(data),
        "pipe": lambda: codecpickle.load(_Pipe(data)),
    }
    with pytest.warns(codecpickle.VersionMismatchWarning) as caught:
        assert loaders[how]().value == 5
    (warning,) = [w for w in caught if w.category is codecpickle.VersionMismatchWarning]
    assert "fakedist 1.2.0" in str(warning.message)
    assert "fakedist 1.3.0 is installed" in str(warning.message)
    assert warning.message.distribution == "fakedist"
    assert (warning.message.writer_version, warning.message.installed_version) == (
        "1.2.0",
        "1.3.0",
    )
    assert warning.filename == __file__  # points at the caller's load
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaders[how]()  # once per versions and process


def test_warning_comes_before_unpickling_for_seekable_inputs(fakemod):
    module, root = fakemod
    data = codecpickle.dumps(module.Thing(1))
    _install(root, "2.0.0")
    seen_at_unpickle = []
    original = module.Thing.__setstate__

    def spy(self, state):
        seen_at_unpickle.append(len(_manifest._warned))
        original(self, state)

    module.Thing.__setstate__ = spy
    with pytest.warns(codecpickle.VersionMismatchWarning):
        codecpickle.load(io.BytesIO(data))
    assert seen_at_unpickle == [1]


@pytest.mark.parametrize("how", ["BytesIO", "pipe"])
def test_failed_unpickling_notes_the_writers_versions(fakemod, how):
    module, root = fakemod
    thing = module.Thing(1)
    thing.explode = True
    data = codecpickle.dumps(thing)
    _install(root, "1.5.0")
    source = io.BytesIO(data) if how == "BytesIO" else _Pipe(data)
    with (
        warnings.catch_warnings(action="ignore"),
        pytest.raises(TypeError, match="cannot take this state") as info,
    ):
        codecpickle.load(source)
    notes = "\n".join(getattr(info.value, "__notes__", []))
    if how == "pipe":
        # The manifest comes last in a pipe: not read when unpickling fails.
        assert notes == ""
    else:
        assert "fakedist 1.2.0 (installed: 1.5.0)" in notes
        assert f"numpy {np.__version__} (installed: {np.__version__})" in notes
        assert f"Python {platform.python_version()}" in notes


def test_damage_gets_no_version_note():
    data = bytearray(codecpickle.dumps(np.arange(100_000), compress="zstd"))
    data[200] ^= 1
    with pytest.raises(codecpickle.ChecksumMismatchError) as info:
        codecpickle.loads(bytes(data))
    assert not getattr(info.value, "__notes__", None)


def test_hostile_manifests_are_ignored():
    hostile = (
        {},
        {"packages": "x"},
        {"packages": [1, {"distribution": 3}, {"distribution": "numpy", "version": []}]},
        {"numpy": 2, "python": None, "packages": [None, {"module": 5, "distribution": None}]},
    )
    for manifest in hostile:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            _manifest.check_versions(manifest)
        assert _manifest.describe(manifest) is None


class _Pipe(io.RawIOBase):
    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        return self._data.readinto(buffer)
