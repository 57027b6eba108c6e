"""Public types for annotating code that calls codecpickle.

``dump`` and ``load`` take any object with the one method they use, so their
``file`` parameters are protocols rather than ``typing.BinaryIO``: a
``gzip.GzipFile``, a zip member, a ``SpooledTemporaryFile`` or a socket file
type-checks as well as ``open(path, "rb")`` does.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeAlias

from .codecs._base import Codec

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = [
    "AllowEntry",
    "Compress",
    "MmapMode",
    "PathType",
    "ReadableFile",
    "SupportsRead",
    "SupportsReadinto",
    "SupportsWrite",
    "WritableFile",
]


class SupportsRead(Protocol):
    """A binary file object ``load`` reads with ``read(size)``, which returns
    at most ``size`` bytes (fewer only at the end of the input)."""

    def read(self, size: int, /) -> bytes: ...


class SupportsReadinto(Protocol):
    """A binary file object ``load`` reads with ``readinto(buffer)``, which
    fills the start of ``buffer`` and returns how many bytes it filled."""

    def readinto(self, buffer: memoryview, /) -> int | None: ...


class SupportsWrite(Protocol):
    """A binary file object ``dump`` writes to.  ``write`` receives
    bytes-like objects (``bytes``, ``memoryview``, ``pickle.PickleBuffer``);
    it may write fewer bytes than given if it returns the count."""

    def write(self, data: Buffer, /) -> object: ...


#: What ``load`` reads from besides a path.
ReadableFile: TypeAlias = SupportsRead | SupportsReadinto

#: What ``dump`` writes to besides a path.
WritableFile: TypeAlias = SupportsWrite

#: A local path, as ``open()`` takes it.
PathType: TypeAlias = str | bytes | os.PathLike[str] | os.PathLike[bytes]

#: ``load(..., mmap_mode=...)``: read-only, read-write, copy-on-write.
MmapMode: TypeAlias = Literal["r", "r+", "c"]

#: Every form ``compress=`` takes: ``None``/``False``/``0`` (none), ``True``
#: or an int level (zstd), a codec name or ``"name:level"`` string, a
#: ``(name, level)`` tuple, a codec instance or class.
Compress: TypeAlias = (
    bool | int | str | tuple[str, int | None] | list[Any] | Codec | type[Codec] | None
)

#: An entry of ``load(..., allow=...)``: a ``"module.qualname"`` string, or
#: the class or function itself.
AllowEntry: TypeAlias = str | type | Callable[..., Any]
