"""Turn the user's ``compress=`` argument (or a file name) into a codec."""

from __future__ import annotations

import os
from typing import Any

from ..errors import InvalidOptionError
from . import _registry
from ._base import Codec

__all__ = ["DEFAULT_CODEC", "codec_for_path", "resolve_compress"]

#: The codec behind ``compress=True`` and ``compress=<int level>``.
DEFAULT_CODEC = "zstd"

_ACCEPTED_FORMS = (
    "None/False/0 (no compression), True (zstd at its default level), "
    "an int level for zstd (e.g. 3 or -5), a codec name ('lz4'), "
    "a (name, level) tuple (('zstd', 3)), a 'name:level' string ('zstd:3'), "
    "a Codec instance or a Codec subclass"
)

#: The suffix that marks a codecpickle file; before a compression
#: extension (``model.cpkl.zst``) it lets the extension pick the codec.
CODECPICKLE_SUFFIX = ".cpkl"

_EXTENSIONS = {
    ".zst": "zstd",
    ".lz4": "lz4",
    ".gz": "gzip",
    ".bz2": "bz2",
    ".xz": "lzma",
    ".lzma": "lzma",
    ".z": "zlib",
}


def resolve_compress(compress: Any) -> Codec | None:
    """Return the codec ``compress`` asks for, or ``None`` for no compression.

    Accepted forms: ``None``, ``False`` or ``0`` (no compression); ``True``
    (zstd at its default level); an ``int`` level for zstd (negative levels
    are zstd's fast modes); a codec name (``"lz4"``); a ``(name, level)``
    tuple or 2-item list (level ``None`` means the codec's default); a
    ``"name:level"`` string (``"zstd:3"``); a :class:`Codec` instance,
    returned as is; a :class:`Codec` subclass, built at its default level.

    Raises :class:`~codecpickle.errors.InvalidOptionError` for any other
    value or a level outside the codec's range (the message gives the range),
    :class:`~codecpickle.errors.UnknownCodecError` for an unknown name.
    """
    if compress is None or compress is False:
        return None
    if compress is True:
        return _build(DEFAULT_CODEC, None)
    if isinstance(compress, int):
        return None if compress == 0 else _build(DEFAULT_CODEC, compress)
    if isinstance(compress, Codec):
        return compress
    if isinstance(compress, type) and issubclass(compress, Codec):
        return compress()
    if isinstance(compress, str) and not compress.startswith(":") and compress:
        name, colon, level_text = compress.partition(":")
        return _build(name, _parse_level(compress, level_text) if colon else None)
    if isinstance(compress, tuple | list) and len(compress) == 2 and isinstance(compress[0], str):
        return _build(compress[0], compress[1])
    raise InvalidOptionError(
        f"Expected compress to be one of: {_ACCEPTED_FORMS}. Got {compress!r} instead."
    )


def codec_for_path(path: str | os.PathLike[str]) -> Codec | None:
    """The codec a file name asks for when ``compress`` is not given.

    Only codecpickle's own names choose a codec: ``name.cpkl.<ext>`` with
    ``<ext>`` one of ``zst`` (zstd), ``lz4``, ``gz`` (gzip), ``bz2``,
    ``xz``/``lzma`` (lzma) or ``z`` (zlib), case-insensitive, at the codec's
    default level; any other name gives ``None`` (no compression).

    A name that ends in a standard compression extension without ``.cpkl``
    before it (``data.gz``, ``model.pkl.zst``) raises
    :class:`~codecpickle.errors.InvalidOptionError`: the file would not be
    what its name says (``gzip -t`` rejects a codecpickle file), so the
    caller must choose a codecpickle name or pass ``compress=`` explicitly.
    """
    name = os.path.basename(os.fsdecode(path))
    stem, extension = os.path.splitext(name)
    codec_name = _EXTENSIONS.get(extension.lower())
    if codec_name is None:
        return None
    if os.path.splitext(stem)[1].lower() != CODECPICKLE_SUFFIX:
        suggestion = f"{stem}{CODECPICKLE_SUFFIX}{extension}"
        raise InvalidOptionError(
            f"{name!r} is named like a plain {extension} file, which a codecpickle file is "
            f"not (tools such as gzip/zstd would reject it). Name it {suggestion!r} to "
            f"compress with {codec_name}, or pass compress= explicitly (e.g. "
            f"compress={codec_name!r}, or compress=None for no compression)."
        )
    return _build(codec_name, None)


def _parse_level(compress: str, level_text: str) -> int:
    try:
        return int(level_text.strip())
    except ValueError:
        raise InvalidOptionError(
            f"Expected a 'name:level' string with an integer level, such as 'zstd:3'. "
            f"Got {compress!r} instead."
        ) from None


def _build(name: str, level: Any) -> Codec:
    if level is not None and (isinstance(level, bool) or not isinstance(level, int)):
        raise InvalidOptionError(
            f"Expected an integer level (or None for the default) for codec {name!r}. "
            f"Got {level!r} ({type(level).__name__}) instead."
        )
    return _registry.get_codec(name)(level=level)
