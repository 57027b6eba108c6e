"""The writer's environment: recorded in the manifest, checked on load.

While pickling, :func:`note_module` records the module of every object the
pickler hands to ``reducer_override`` (instances of non-builtin classes,
classes and functions pickled by reference, arrays): a set insertion, so
the hot path stays as it was (exact builtins such as dicts, lists, strs and
ints never reach the hook).  At the end, :func:`environment` turns their
top-level packages into distributions and versions for the manifest::

    {"python": "3.11.7", "codecpickle": "0.1.0", "numpy": "2.4.0",
     "packages": [{"module": "sklearn", "distribution": "scikit-learn",
                   "version": "1.9.1"}, ...]}

Standard-library modules are left out; a module that no installed
distribution provides (a script's own classes) is listed with
``"distribution": null``.

On load, :func:`check_versions` warns with :class:`VersionMismatchWarning`
when an installed distribution's major.minor differs from the writer's
(once per distribution and pair of versions per process), and
:func:`describe` gives the note added to an exception when unpickling
fails.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import os
import platform
import re
import sys
import warnings
from collections.abc import Iterator
from typing import Any

from .errors import (
    ChecksumMismatchError,
    CodecPickleError,
    EmptyInputError,
    TruncatedFileError,
)

__all__ = ["VersionMismatchWarning"]


class VersionMismatchWarning(CodecPickleError, UserWarning):
    """A file was written with another major.minor version of a package
    than the one installed here; objects of that package may load wrongly
    or fail to load.

    A :class:`UserWarning`; also a
    :class:`~codecpickle.errors.CodecPickleError`, so that where warnings
    are turned into errors (``warnings.simplefilter("error", ...)``), the
    refusal is caught like every other codecpickle error.

    Like scikit-learn's ``InconsistentVersionWarning``, it carries the
    details as attributes: :attr:`distribution`, :attr:`writer_version`,
    :attr:`installed_version`.
    """

    def __init__(self, distribution: str, writer_version: str, installed_version: str) -> None:
        self.distribution = distribution
        self.writer_version = writer_version
        self.installed_version = installed_version
        super().__init__(
            f"this file was written with {distribution} {writer_version}, but {distribution} "
            f"{installed_version} is installed: objects it defines may fail to load or behave "
            "differently; install the writer's version if they do"
        )


# Modules whose distribution is named otherwise, checked before the slow
# importlib.metadata.packages_distributions() (a second or so here).
_KNOWN_DISTRIBUTIONS = {
    "sklearn": "scikit-learn",
    "skimage": "scikit-image",
    "PIL": "Pillow",
    "yaml": "PyYAML",
    "cv2": "opencv-python",
    "dateutil": "python-dateutil",
    "attr": "attrs",
    "google": "protobuf",
}
_IGNORED = frozenset({"builtins", "__main__", "codecpickle", "numpy", "__mp_main__"})
_warned: set[tuple[str, str, str]] = set()


def note_module(seen: set[str], obj: Any) -> None:
    """Record the module of ``obj``'s class and, for classes and functions
    pickled by reference, their own module (called for every object the
    pickler's ``reducer_override`` sees)."""
    seen.add(type(obj).__module__)
    module = getattr(obj, "__module__", None)
    if type(module) is str:
        seen.add(module)


def environment(seen: set[str]) -> dict[str, Any]:
    """The manifest's environment members for the modules ``seen``."""
    import numpy

    from . import __version__

    packages = []
    for top in sorted({name.partition(".")[0] for name in seen}):
        if top in _IGNORED or top in sys.stdlib_module_names or top.startswith("_"):
            continue
        distribution = distribution_of(top)
        packages.append(
            {
                "module": top,
                "distribution": distribution,
                "version": None if distribution is None else installed_version(distribution),
            }
        )
    return {
        "python": platform.python_version(),
        "codecpickle": __version__,
        "numpy": numpy.__version__,
        "packages": packages,
    }


@functools.cache
def distribution_of(module: str) -> str | None:
    """The installed distribution providing top-level ``module``, if any."""
    for name in (_KNOWN_DISTRIBUTIONS.get(module), module):
        if name is not None and installed_version(name) is not None:
            return name
    names = _packages_distributions().get(module)
    return names[0] if names else None


@functools.cache
def _packages_distributions() -> dict[str, list[str]]:
    return dict(importlib.metadata.packages_distributions())


@functools.cache
def installed_version(distribution: str) -> str | None:
    """The installed version of ``distribution``, or None."""
    try:
        return importlib.metadata.version(distribution)
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return None


def _writer_versions(manifest: dict[str, Any]) -> list[tuple[str, str]]:
    """(distribution, version) pairs the manifest records, numpy first;
    malformed members are skipped (the manifest comes from the file)."""
    pairs = []
    numpy_version = manifest.get("numpy")
    if isinstance(numpy_version, str):
        pairs.append(("numpy", numpy_version))
    packages = manifest.get("packages")
    for entry in packages if isinstance(packages, list) else ():
        if not isinstance(entry, dict):
            continue
        distribution, version = entry.get("distribution"), entry.get("version")
        if isinstance(distribution, str) and isinstance(version, str) and distribution != "numpy":
            pairs.append((distribution, version))
    return pairs


def _major_minor(version: str) -> tuple[str, ...]:
    return tuple(re.findall(r"\d+", version)[:2])


def _outside_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first caller outside
    codecpickle (and contextlib, which runs the context managers)."""
    package = os.path.dirname(__file__)
    frame = sys._getframe(1)
    level = 1
    while frame is not None and (
        frame.f_code.co_filename.startswith(package)
        or frame.f_code.co_filename == contextlib.__file__
    ):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


def check_versions(manifest: dict[str, Any] | None) -> None:
    """Warn once per (distribution, writer version, installed version) when
    an installed distribution's major.minor differs from the writer's."""
    if not manifest:
        return
    for distribution, written in _writer_versions(manifest):
        installed = installed_version(distribution)
        if installed is None or _major_minor(installed) == _major_minor(written):
            continue
        key = (distribution, written, installed)
        if key in _warned:
            continue
        _warned.add(key)
        warnings.warn(
            VersionMismatchWarning(distribution, written, installed),
            stacklevel=_outside_stacklevel(),
        )


def describe(manifest: dict[str, Any] | None) -> str | None:
    """A note naming the writer's versions next to the installed ones."""
    if not manifest:
        return None
    import numpy

    from . import __version__

    parts = []
    for name, here in (("Python", platform.python_version()), ("codecpickle", __version__)):
        written = manifest.get(name.lower())
        if isinstance(written, str):
            parts.append(f"{name} {written} (installed: {here})")
    for distribution, written in _writer_versions(manifest):
        here = numpy.__version__ if distribution == "numpy" else installed_version(distribution)
        parts.append(f"{distribution} {written} (installed: {here or 'not installed'})")
    packages = manifest.get("packages")
    for entry in packages if isinstance(packages, list) else ():
        if isinstance(entry, dict) and entry.get("distribution") is None:
            module = entry.get("module")
            if isinstance(module, str):
                parts.append(f"module {module} (from no installed distribution)")
    if not parts:
        return None
    return "the file was written with " + ", ".join(parts)


@contextlib.contextmanager
def writer_environment(manifest: dict[str, Any] | None, reader: Any) -> Iterator[None]:
    """Around an unpickling: warn about version mismatches before it when the
    manifest is known ahead (seekable inputs), after it otherwise (pipes:
    the manifest comes last), and note the writer's versions on an error."""
    if manifest is not None:
        check_versions(manifest)
    try:
        yield
    except (ChecksumMismatchError, TruncatedFileError, EmptyInputError):
        raise  # damage, not a question of versions
    except Exception as exc:
        known = manifest
        trailer = getattr(reader, "trailer", None)
        if known is None and trailer is not None:
            known = trailer.manifest
        note = describe(known)
        if note is not None:
            exc.add_note(note)
        raise
    if manifest is None:
        trailer = getattr(reader, "trailer", None)
        if trailer is not None:
            check_versions(trailer.manifest)
