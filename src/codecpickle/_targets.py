"""What ``dump`` and ``load`` were given: a local path, a URL, or a binary
file object, and the checks that say plainly when it is none of these.

Paths may be ``str``, ``bytes`` or any ``os.PathLike``, as with ``open()``;
they are handled as ``str`` from here on (``os.fsdecode`` round-trips any
bytes name on POSIX).  A string that looks like a URL is not a local path:
:func:`refuse_url` is the one place that decides what happens to it.
"""

from __future__ import annotations

import io
import os
import re
from typing import Any

from .errors import InvalidOptionError, UnsupportedURLError

__all__ = ["check_binary_reader", "check_binary_writer", "local_path", "refuse_url"]

# "scheme://..." with a scheme of two characters or more, so that a Windows
# drive ("C:\\...", "C://...") is never taken for one.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+://")


def local_path(file: Any, verb: str) -> str | None:
    """``file`` as a ``str`` path when it is a ``str``, ``bytes`` or
    ``os.PathLike``; None when it is something else (a file object)."""
    if not isinstance(file, str | bytes | os.PathLike):
        return None
    path = os.fsdecode(file)
    refuse_url(path, verb)
    return path


def refuse_url(path: str, verb: str) -> None:
    """Raise :class:`~codecpickle.errors.UnsupportedURLError` for a
    URL-like string (``s3://bucket/key``), which would otherwise become a
    local path such as ``s3:/bucket/key``."""
    if _URL.match(path):
        mode = "rb" if verb == "load" else "wb"
        raise UnsupportedURLError(
            f"{verb}() got {path!r}, which is a URL, not a local path: codecpickle opens "
            "local paths and binary file objects. Open the URL yourself and pass the file "
            f"object, for example with fsspec: with fsspec.open({path!r}, {mode!r}) as f: "
            f"codecpickle.{verb}(..., f)"
        )


def check_binary_reader(file: Any) -> None:
    """Refuse what cannot be loaded from: no ``read``/``readinto``, or a
    text-mode file."""
    if not (callable(getattr(file, "read", None)) or callable(getattr(file, "readinto", None))):
        raise InvalidOptionError(
            "load() expects a path (str, bytes or os.PathLike) or a binary file object with "
            f"a .read() or .readinto() method. Got {type(file).__name__} instead."
        )
    if _is_text(file):
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
