"""Exceptions raised by codecpickle.

Every error codecpickle raises on purpose derives from :class:`CodecPickleError`, so
``except codecpickle.CodecPickleError`` catches them all.  Each subclass also
inherits the closest builtin exception, so code written against the standard
library keeps working: an unknown codec is a :class:`LookupError`, a damaged
or foreign file is a :class:`ValueError`, running out of input at the start of
an object is an :class:`EOFError` (as with :func:`pickle.load`).

The tree::

    CodecPickleError
    ├── InvalidOptionError            (ValueError, TypeError)
    ├── UnknownCodecError             (LookupError)
    │   └── CodecUnavailableError
    ├── CodecRegistrationError        (ValueError)
    ├── FileFormatError               (ValueError)
    │   ├── NotCodecPickleFileError
    │   ├── UnsupportedVersionError
    │   ├── EmptyInputError           (EOFError)
    │   ├── TruncatedFileError
    │   ├── ChecksumMismatchError
    │   ├── CorruptDataError
    │   └── SizeLimitError
    ├── ForbiddenGlobalError          (pickle.UnpicklingError)
    ├── MissingDependencyError        (ImportError)
    └── StorageError                  (OSError)
        ├── StorageNotFoundError      (FileNotFoundError)
        └── StoragePermissionError    (PermissionError)
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable
from typing import Any

__all__ = [
    "ChecksumMismatchError",
    "CodecPickleError",
    "CodecRegistrationError",
    "CodecUnavailableError",
    "CorruptDataError",
    "EmptyInputError",
    "FileFormatError",
    "ForbiddenGlobalError",
    "InvalidOptionError",
    "MissingDependencyError",
    "NotCodecPickleFileError",
    "SizeLimitError",
    "StorageError",
    "StorageNotFoundError",
    "StoragePermissionError",
    "TruncatedFileError",
    "UnknownCodecError",
    "UnsupportedVersionError",
]


class CodecPickleError(Exception):
    """Root of every error codecpickle raises on purpose."""


class InvalidOptionError(CodecPickleError, ValueError, TypeError):
    """An argument is malformed: a bad ``compress`` form, a level outside the
    codec's range, an unknown ``mmap_mode``, a wrong type.

    Raised before any file is created or truncated.  It is both a
    :class:`ValueError` and a :class:`TypeError` so either idiom catches it.
    """


class UnknownCodecError(CodecPickleError, LookupError):
    """No codec is registered under the requested name, neither built in nor
    through the ``codecpickle.codecs`` entry-point group.

    On load, the message names the codec the file was written with and, when
    the file records it, the distribution that provided that codec.
    """


class CodecUnavailableError(UnknownCodecError):
    """A codec is known (for example through an entry point) but cannot be
    used: its plugin failed to import or a dependency is missing.  The
    original exception is chained as ``__cause__``."""


class CodecRegistrationError(CodecPickleError, ValueError):
    """:func:`codecpickle.register_codec` was asked to take a name that is
    already registered without ``force=True``, or was given something that
    is not a codec class."""


class FileFormatError(CodecPickleError, ValueError):
    """The input is not a valid codecpickle stream.  Base class of the
    specific damage reports below; messages say what is wrong and where (a
    byte offset from the start of the stream)."""


class NotCodecPickleFileError(FileFormatError):
    """The input does not start with the codecpickle magic.  When it looks
    like a plain pickle, a joblib file or a compressed stream, the message
    says so."""


class UnsupportedVersionError(FileFormatError):
    """The file was written in a format version this release cannot read
    (written by a newer codecpickle)."""


class EmptyInputError(FileFormatError, EOFError):
    """The input holds no bytes at all where a stream should start.

    It is also an :class:`EOFError`, so reading objects one after another
    from a stream until it is exhausted works as with :func:`pickle.load`.
    """


class TruncatedFileError(FileFormatError):
    """The input ends in the middle of the stream."""


class ChecksumMismatchError(FileFormatError):
    """Stored bytes do not match their checksum: the file was damaged (or
    records were reordered or duplicated) after it was written."""


class CorruptDataError(FileFormatError):
    """The stream is structurally invalid: an unknown record kind, sizes
    that contradict each other, data the codec cannot decode, or a pickle
    opcode stream that does not unpickle."""


class SizeLimitError(FileFormatError):
    """A size declared by the file exceeds what it can plausibly hold or a
    limit set by the caller.  Raised before any large allocation, so a
    hostile file cannot exhaust memory (a decompression-bomb guard)."""


class ForbiddenGlobalError(CodecPickleError, pickle.UnpicklingError):
    """A restricted load met a global (a class or function) that is not on
    its allowlist.  Raised before the global is imported or called.

    ``names`` holds every ``"module.qualname"`` global the stream needs
    that is not allowed (the rest of the stream is scanned, not executed,
    to complete the list), so ``allow=err.names`` admits them in one
    reviewed step; it is empty for refusals that are not about a name
    (changing the state of a global, a ``copyreg`` extension code).
    """

    def __init__(self, *args: object, names: Iterable[str] = ()) -> None:
        super().__init__(*args)
        self.names: tuple[str, ...] = tuple(names)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), self.args, {"names": self.names})


class MissingDependencyError(CodecPickleError, ImportError):
    """An optional package needed for the request is not installed: fsspec
    for URLs, or the filesystem package a URL's protocol needs (``s3fs`` for
    ``s3://``, ``gcsfs`` for ``gs://``, ``adlfs`` for ``az://``, ``aiohttp``
    for ``http(s)://``).  The message names what to install."""


class StorageError(CodecPickleError, OSError):
    """Reading or writing a URL failed in the storage layer (the store
    refused a request, the connection failed).  The message names the URL
    and what the store said; the original exception is chained as
    ``__cause__``."""


class StorageNotFoundError(StorageError, FileNotFoundError):
    """The object, or the bucket or container that should hold it, does not
    exist."""


class StoragePermissionError(StorageError, PermissionError):
    """The store refused access: no credentials were found, they are wrong
    or expired, or they do not grant the operation."""
