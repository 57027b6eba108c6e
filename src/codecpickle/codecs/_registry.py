"""Where codec names come from: built-ins, ``register_codec`` and entry points.

Lookup order for a name: code-registered codecs (only a built-in name when
``register_codec(..., force=True)`` replaced it), the six built-ins, then the
entry-point group ``codecpickle.codecs``.  Entry points are scanned the first
time a name that is neither built in nor registered is asked for (or when
everything is listed) and each plugin is imported the first time its own name
is asked for; ``import codecpickle`` scans and imports nothing.

All state lives in one :class:`Registry` instance, ``REGISTRY``, so tests can
swap in a fresh one instead of mutating module globals.
"""

from __future__ import annotations

import importlib
import threading
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ..errors import (
    CodecRegistrationError,
    CodecUnavailableError,
    CorruptDataError,
    InvalidOptionError,
    UnknownCodecError,
)
from ._base import NAME_PATTERN, Codec

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

__all__ = [
    "ENTRY_POINT_GROUP",
    "REGISTRY",
    "CodecInfo",
    "Registry",
    "available_codecs",
    "codec_from_header",
    "codec_provider",
    "get_codec",
    "register_codec",
]

ENTRY_POINT_GROUP = "codecpickle.codecs"

#: Built-in codecs in listing order, as "module:Class" imported on first use
#: (so ``import codecpickle`` does not pay for importing lz4 or zstandard).
BUILTIN_CODECS: dict[str, str] = {
    "zlib": "codecpickle.codecs.zlib:ZlibCodec",
    "gzip": "codecpickle.codecs.gzip:GzipCodec",
    "bz2": "codecpickle.codecs.bz2:Bz2Codec",
    "lzma": "codecpickle.codecs.lzma:LzmaCodec",
    "lz4": "codecpickle.codecs.lz4:Lz4Codec",
    "zstd": "codecpickle.codecs.zstd:ZstdCodec",
}


@dataclass(frozen=True)
class CodecInfo:
    """One row of :func:`available_codecs`.

    ``source`` is ``"builtin"``, ``"registered"`` (through
    :func:`register_codec`) or the name of the distribution whose entry point
    provides the codec; ``version`` is that distribution's version (``None``
    for the other two).  ``available`` is false when the codec cannot be
    loaded; ``error`` then says why.
    """

    name: str
    source: Literal["builtin", "registered"] | str
    version: str | None
    available: bool
    error: str | None = None


def _import_object(target: str) -> object:
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def _describe(entry_point: EntryPoint) -> str:
    dist = entry_point.dist
    return f"{dist.name} {dist.version}" if dist is not None else entry_point.value


class Registry:
    """Codec classes by name: built-ins, registered classes, entry points.

    Thread-safe; entry points are scanned once per instance, plugins imported
    once per name.  ``copy()`` gives an independent registry (tests use it to
    keep their registrations from leaking).
    """

    def __init__(self, group: str = ENTRY_POINT_GROUP) -> None:
        self.group = group
        self._lock = threading.RLock()
        self._registered: dict[str, type[Codec]] = {}
        self._builtins: dict[str, type[Codec]] = {}
        self._entry_points: dict[str, EntryPoint] | None = None
        self._loaded: dict[str, type[Codec]] = {}
        self._failures: dict[str, BaseException] = {}

    def copy(self) -> Registry:
        """An independent registry with the same registrations (plugins are
        scanned and loaded again by the copy, lazily)."""
        clone = Registry(self.group)
        clone._registered = dict(self._registered)
        return clone

    # -- registration -----------------------------------------------------

    def register(self, codec_class: type[Codec], *, force: bool = False) -> None:
        """Make ``codec_class`` available under ``codec_class.name``."""
        if not (isinstance(codec_class, type) and issubclass(codec_class, Codec)):
            raise CodecRegistrationError(
                f"Expected a subclass of codecpickle.Codec. Got {codec_class!r} instead."
            )
        name = getattr(codec_class, "name", None)
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise CodecRegistrationError(
                f"Codec class {codec_class.__qualname__} has an invalid name {name!r}: expected "
                "lowercase letters, digits, '_', '-' or '.', starting with a letter or digit."
            )
        with self._lock:
            if self._registered.get(name) is codec_class:
                return  # registering the very same class twice changes nothing
            if not force and (owner := self._owner(name)) is not None:
                raise CodecRegistrationError(
                    f"A codec named {name!r} is already provided ({owner}). "
                    "Pass force=True to replace it."
                )
            self._registered[name] = codec_class

    def _owner(self, name: str) -> str | None:
        if name in self._registered:
            return f"registered: {self._registered[name].__qualname__}"
        if name in BUILTIN_CODECS:
            return "built in"
        if name in self._scan():
            return f"entry point from {_describe(self._scan()[name])}"
        return None

    # -- lookup -------------------------------------------------------------

    def get(self, name: str) -> type[Codec]:
        """The codec class registered under ``name``."""
        if not isinstance(name, str):
            raise UnknownCodecError(f"Expected a codec name (str). Got {name!r} instead.")
        with self._lock:
            if name in self._registered:
                return self._registered[name]
            if name in BUILTIN_CODECS:
                return self._builtin(name)
            entry_point = self._scan().get(name)
            if entry_point is None:
                raise UnknownCodecError(
                    f"Unknown codec {name!r}. Available codecs: {', '.join(self.names())}. "
                    f"Third-party codecs are found through the entry-point group {self.group!r}."
                )
            return self._load(name, entry_point)

    def names(self) -> list[str]:
        """Every known name, built-ins first; scans entry points, imports nothing."""
        with self._lock:
            names = dict.fromkeys(BUILTIN_CODECS)
            names.update(dict.fromkeys(self._registered))
            names.update(dict.fromkeys(sorted(self._scan())))
            return list(names)

    def provider(self, name: str) -> dict[str, str] | None:
        """The distribution providing ``name`` through an entry point, or None."""
        with self._lock:
            if name in self._registered or name in BUILTIN_CODECS:
                return None
            entry_point = self._scan().get(name)
            if entry_point is None or entry_point.dist is None:
                return None
            return {"distribution": entry_point.dist.name, "version": entry_point.dist.version}

    def infos(self) -> dict[str, CodecInfo]:
        """:class:`CodecInfo` for every name; imports every plugin."""
        infos: dict[str, CodecInfo] = {}
        for name in self.names():
            provider = self.provider(name)
            if provider is not None:
                source, version = provider["distribution"], provider["version"]
            elif name in self._registered:
                source, version = "registered", None
            else:
                source, version = "builtin", None
            try:
                self.get(name)
            except UnknownCodecError as exc:
                infos[name] = CodecInfo(name, source, version, available=False, error=str(exc))
            else:
                infos[name] = CodecInfo(name, source, version, available=True)
        return infos

    # -- internals ----------------------------------------------------------

    def _builtin(self, name: str) -> type[Codec]:
        if name not in self._builtins:
            try:
                self._builtins[name] = _import_object(BUILTIN_CODECS[name])  # type: ignore[assignment]
            except ImportError as exc:
                raise CodecUnavailableError(
                    f"The built-in codec {name!r} cannot be used: {exc}. "
                    "Reinstall codecpickle with its dependencies."
                ) from exc
        return self._builtins[name]

    def _scan(self) -> dict[str, EntryPoint]:
        if self._entry_points is None:
            # Imported here: importlib.metadata alone costs ~30 ms, which
            # ``import codecpickle`` must not pay.
            from importlib.metadata import entry_points

            found: dict[str, EntryPoint] = {}
            for entry_point in entry_points(group=self.group):
                if entry_point.name in BUILTIN_CODECS:
                    warnings.warn(
                        f"Ignoring the entry point {entry_point.name!r} in group {self.group!r} "
                        f"from {_describe(entry_point)}: {entry_point.name!r} is a built-in "
                        "codec and cannot be replaced by a plugin.",
                        UserWarning,
                        stacklevel=4,
                    )
                elif entry_point.name in found:
                    warnings.warn(
                        f"Two distributions provide the codec {entry_point.name!r}: "
                        f"{_describe(found[entry_point.name])} (used) and "
                        f"{_describe(entry_point)} (ignored).",
                        UserWarning,
                        stacklevel=4,
                    )
                else:
                    found[entry_point.name] = entry_point
            self._entry_points = found
        return self._entry_points

    def _load(self, name: str, entry_point: EntryPoint) -> type[Codec]:
        if name in self._loaded:
            return self._loaded[name]
        where = f"entry point {entry_point.value!r} from {_describe(entry_point)}"
        if name not in self._failures:
            try:
                loaded = entry_point.load()
            except Exception as exc:  # a broken plugin must not break other codecs
                self._failures[name] = exc
            else:
                if not (isinstance(loaded, type) and issubclass(loaded, Codec)):
                    self._failures[name] = TypeError(f"{loaded!r} is not a Codec subclass")
                elif getattr(loaded, "name", None) != name:
                    self._failures[name] = ValueError(
                        f"the class is named {getattr(loaded, 'name', None)!r}, "
                        f"not {name!r} like its entry point"
                    )
                else:
                    self._loaded[name] = loaded
                    return loaded
        cause = self._failures[name]
        raise CodecUnavailableError(
            f"The codec {name!r} ({where}) cannot be loaded: "
            f"{type(cause).__name__}: {cause}"
        ) from cause


#: The registry behind the module-level functions.
REGISTRY = Registry()


# The public functions look REGISTRY up on every call, so replacing the module
# attribute (as the test fixtures do) redirects all of them.


def register_codec(codec_class: type[Codec], *, force: bool = False) -> None:
    """Make ``codec_class`` available under its ``name`` in this process.

    Raises :class:`~codecpickle.errors.CodecRegistrationError` if the name is
    already taken (built in, registered or provided by an installed plugin)
    unless ``force=True``, or if ``codec_class`` is not a :class:`Codec`
    subclass with a valid name.  Registering the same class again is a no-op.
    Files written with a registered codec can only be loaded where the same
    codec is registered too; publish it as a plugin to make that automatic.
    """
    REGISTRY.register(codec_class, force=force)


def get_codec(name: str) -> type[Codec]:
    """Return the codec class called ``name``.

    Raises :class:`~codecpickle.errors.UnknownCodecError` (listing the
    available names) when nothing provides ``name``, and its subclass
    :class:`~codecpickle.errors.CodecUnavailableError` when a plugin provides
    it but fails to load (the plugin's exception is chained).
    """
    return REGISTRY.get(name)


def available_codecs() -> dict[str, CodecInfo]:
    """Every codec known here, built-ins first, as ``{name: CodecInfo}``.

    Imports every installed plugin to report whether it works.
    """
    return REGISTRY.infos()


def codec_provider(name: str) -> dict[str, str] | None:
    """``{"distribution": ..., "version": ...}`` of the installed distribution
    providing the entry-point codec ``name``; ``None`` for built-in and
    registered codecs.  Recorded in file headers so that a reader missing the
    codec can be told what to install."""
    return REGISTRY.provider(name)


def codec_from_header(
    name: str, params: Any, provider: dict[str, Any] | None = None
) -> Codec:
    """Rebuild the codec a file header names, for ``load``.

    Raises :class:`~codecpickle.errors.UnknownCodecError` when no codec
    ``name`` is installed, with a message that names the entry-point group
    and, when the header recorded a ``provider``, the distribution to
    install; :class:`~codecpickle.errors.CodecUnavailableError` when the
    plugin is installed but broken.  Parameters the codec refuses raise
    :class:`~codecpickle.errors.CorruptDataError` (a ``FileFormatError``):
    on load the header, not the caller, is at fault, whether it was damaged
    or written by a plugin version that knows parameters this one does not.
    """
    try:
        codec_class = REGISTRY.get(name)
    except CodecUnavailableError:
        raise
    except UnknownCodecError:
        message = (
            f"This file was written with codec {name!r}, which is not installed here. "
            f"Codecs are discovered through the entry-point group {REGISTRY.group!r}"
        )
        distribution = (provider or {}).get("distribution")
        if isinstance(distribution, str) and distribution:
            version = (provider or {}).get("version")
            written_with = f"{distribution} {version}" if version else distribution
            message += (
                f"; the file was written with it provided by {written_with}: "
                f"pip install {distribution}"
            )
        raise UnknownCodecError(message + ".") from None
    if not isinstance(params, dict) or not all(isinstance(key, str) for key in params):
        raise CorruptDataError(
            f"The file header gives codec {name!r} parameters {params!r}; "
            "expected a mapping of names to values."
        )
    try:
        return codec_class.from_params(params)
    except InvalidOptionError as exc:
        raise CorruptDataError(
            f"The file header gives codec {name!r} parameters it does not accept: {exc}"
        ) from exc
