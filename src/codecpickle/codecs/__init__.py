"""Codecs: the base class, the six built-ins and the registry of plugins.

See :mod:`codecpickle.codecs._base` for the contract every codec follows and
``docs/plugins.md`` for publishing one.  The built-in codec classes are
imported on first attribute access so that ``import codecpickle`` does not
import lz4 or zstandard until a codec is actually used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._base import Codec, check_level
from ._registry import (
    BUILTIN_CODECS,
    ENTRY_POINT_GROUP,
    CodecInfo,
    available_codecs,
    codec_from_header,
    codec_provider,
    get_codec,
    register_codec,
)
from ._resolve import codec_for_path, resolve_compress

if TYPE_CHECKING:
    from .bz2 import Bz2Codec
    from .gzip import GzipCodec
    from .lz4 import Lz4Codec
    from .lzma import LzmaCodec
    from .zlib import ZlibCodec
    from .zstd import ZstdCodec

__all__ = [
    "Codec",
    "check_level",
    "ZlibCodec",
    "GzipCodec",
    "Bz2Codec",
    "LzmaCodec",
    "Lz4Codec",
    "ZstdCodec",
    "CodecInfo",
    "ENTRY_POINT_GROUP",
    "register_codec",
    "get_codec",
    "available_codecs",
    "codec_provider",
    "codec_from_header",
    "resolve_compress",
    "codec_for_path",
]

_LAZY_CLASSES = {target.rpartition(":")[2]: target for target in BUILTIN_CODECS.values()}


def __getattr__(attribute: str) -> Any:
    # PEP 562: ``codecpickle.codecs.ZstdCodec`` imports zstandard only when used.
    target = _LAZY_CLASSES.get(attribute)
    if target is None:
        raise AttributeError(f"module {__name__!r} has no attribute {attribute!r}")
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)
