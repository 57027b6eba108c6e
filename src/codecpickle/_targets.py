"""What ``dump`` and ``load`` were given besides a URL: a local path or a
binary file object, and the checks that say plainly when it is neither.

Paths may be ``str``, ``bytes`` or any ``os.PathLike``, as with ``open()``;
they are handled as ``str`` from here on (``os.fsdecode`` round-trips any
bytes name on POSIX).
"""

from __future__ import annotations

import io
import os
from typing import Any

from .errors import InvalidOptionError

__all__ = ["check_binary_reader", "check_binary_writer", "local_path"]


def local_path(file: Any) -> str | None:
    """``file`` as a ``str`` path when it is a ``str``, ``bytes`` or
    ``os.PathLike``; None when it is something else (a file object).
    URLs are routed before this (``_remote.route``)."""
    if not isinstance(file, str | bytes | os.PathLike):
        return None
    return os.fsdecode(file)


def check_binary_reader(file: Any) -> None:
    """Refuse what cannot be loaded from: no ``read``/``readinto``, or a
    text-mode file (an ``io.TextIOBase``, or any reader with an
    ``encoding``, such as ``codecs.open(path, "r", encoding)``)."""
    if not (callable(getattr(file, "read", None)) or callable(getattr(file, "readinto", None))):
        raise InvalidOptionError(
            "load() expects a path (str, bytes or os.PathLike) or a binary file object with "
            f"a .read() or .readinto() method. Got {type(file).__name__} instead."
        )
    if _is_text(file) or isinstance(getattr(file, "encoding", None), str):
        raise InvalidOptionError(
            f"load() needs a file opened in binary mode; got the text-mode "
            f"{type(file).__name__} {_name_of(file)}: open the file with 'rb', not 'r'"
        )


def check_binary_writer(file: Any) -> None:
    """Refuse what cannot be dumped into: no ``write``, or a text-mode
    file.  Text-like objects that are not ``io.TextIOBase`` (they have an
    ``encoding``) are probed with an empty write."""
    write = getattr(file, "write", None)
    if not callable(write):
        raise InvalidOptionError(
            "dump() expects a path (str, bytes or os.PathLike) or a binary file object with "
            f"a .write() method. Got {type(file).__name__} instead."
        )
    text = _is_text(file)
    if not text and isinstance(getattr(file, "encoding", None), str):
        try:
            write(b"")
        except TypeError:
            text = True
    if text:
        raise InvalidOptionError(
            f"dump() needs a file opened in binary mode; got the text-mode "
            f"{type(file).__name__} {_name_of(file)}: open the file with 'wb', not 'w'"
        )


def _is_text(file: Any) -> bool:
    # tempfile.NamedTemporaryFile wraps the real file object as ``.file``.
    return isinstance(file, io.TextIOBase) or isinstance(getattr(file, "file", None), io.TextIOBase)


def _name_of(file: Any) -> str:
    name = getattr(file, "name", None)
    return repr(name) if isinstance(name, str | bytes | int) else "object"
