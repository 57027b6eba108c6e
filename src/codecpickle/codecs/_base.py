"""The codec contract.

A codec turns one chunk of bytes into a (usually smaller) chunk and back.  The
container cuts every stream into independent chunks and calls the codec once
per chunk, possibly from several threads at once; a codec knows nothing about
pickles, arrays or files.  Everything a codec must do:

1. **Subclass** :class:`Codec` and set the class attribute ``name``: a short,
   stable, lowercase identifier (letters, digits, ``_``, ``-``, ``.``).  The
   name is written into every file's header and is how ``load`` finds the
   codec again, so it must never change once files exist.

2. **Validate parameters in** ``__init__`` and raise
   :class:`~codecpickle.errors.InvalidOptionError` with a message that says
   what was expected (use :func:`check_level`).  Every codec takes an
   optional ``level`` (``None`` means :attr:`Codec.default_level`); codecs
   may take further keyword parameters.

3. **Describe itself with** :attr:`Codec.params`: a dict of JSON values
   (str, int, float, bool, None) that, passed back as keyword arguments to
   the class (:meth:`Codec.from_params`), rebuilds an equivalent codec.  The
   params are recorded in the file header; they must be stable (the same
   codec gives the same dict every time) so that identical inputs give
   identical files.

4. **Implement** :meth:`Codec.encode` and :meth:`Codec.decode`.  ``encode``
   receives a contiguous, 1-D, unsigned-byte ``memoryview`` (possibly
   read-only, possibly empty) and an ``itemsize`` hint: the element size of
   the array the chunk belongs to (1 for opcode chunks, untyped data and
   chunks the container already filtered: see ``docs/plugins.md``).
   Filter-aware codecs (byte-shuffle) may use it; others ignore it.
   ``decode`` receives what ``encode`` returned and the exact raw size, and
   returns exactly that many bytes.  Either may return any object supporting
   the buffer protocol.  :meth:`Codec.decode_into` writes into a
   caller-provided buffer; override it when the backend can decompress in
   place (this saves a copy), otherwise the default copies ``decode``'s
   result.  Whatever ``decode`` is given must not make it allocate far more
   than ``raw_size``: pass ``raw_size`` as the backend's output limit.

5. **Be thread-safe**: ``encode`` and ``decode`` may run concurrently on the
   same instance from a thread pool.  Keep per-call or thread-local backend
   state (for example ``threading.local``), never shared mutable state.
   Backends that release the GIL then compress chunks in parallel.

6. **Errors**: raise what the backend raises.  The container wraps any
   exception from ``decode`` into
   :class:`~codecpickle.errors.CorruptDataError` (with the backend error
   chained and the chunk's position in the message), so a plugin does not
   need to know codecpickle's error tree for damaged data.

7. **Publish** the class through the entry-point group ``codecpickle.codecs``
   (``brotli = "codecpickle_brotli:BrotliCodec"``); the entry point's name
   must equal ``Codec.name``.  ``codecpickle.testing.CodecContractTests`` is
   the test base every codec's test suite should subclass.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from ..errors import InvalidOptionError

__all__ = ["Codec", "check_level"]

#: What a codec name may look like; names are stored in file headers.
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,63}$")

JSONScalar = str | int | float | bool | None


def check_level(codec_name: str, level: object, low: int, high: int) -> int:
    """Return ``level`` if it is an int in ``[low, high]``, else raise
    :class:`~codecpickle.errors.InvalidOptionError` naming the valid range."""
    if isinstance(level, bool) or not isinstance(level, int):
        raise InvalidOptionError(
            f"Expected an integer level from {low} to {high} for codec {codec_name!r}. "
            f"Got {level!r} ({type(level).__name__}) instead."
        )
    if not low <= level <= high:
        raise InvalidOptionError(
            f"Expected a level from {low} to {high} for codec {codec_name!r}. "
            f"Got {level} instead."
        )
    return level


class Codec(abc.ABC):
    """Base class of every codec; see the module docstring for the contract."""

    #: Registry name, recorded in file headers.  Subclasses must set it.
    name: ClassVar[str]
    #: Level used when ``level`` is ``None``.
    default_level: ClassVar[int]
    #: Inclusive range of accepted levels.
    min_level: ClassVar[int]
    max_level: ClassVar[int]
    #: The highest level at which the codec still runs its default, fast
    #: mode, for codecs whose levels above the default are not all slower
    #: (lz4: 0 to 2 are one compressor).  ``None``: the default level.  The
    #: writer spends codec time on chunks that save little only above it.
    fast_level: ClassVar[int | None] = None
    #: Raw bytes per chunk the container uses with this codec unless the
    #: caller sets ``chunk_size``.  Larger chunks compress slightly better;
    #: smaller ones bound memory and parallelise better.
    chunk_size: ClassVar[int] = 4 << 20

    def __init__(self, level: int | None = None) -> None:
        self.level = check_level(
            self.name,
            self.default_level if level is None else level,
            self.min_level,
            self.max_level,
        )

    @property
    def params(self) -> dict[str, JSONScalar]:
        """JSON-serialisable keyword arguments that rebuild this codec."""
        return {"level": self.level}

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Codec:
        """Rebuild a codec from :attr:`params` as read from a file header."""
        try:
            return cls(**params)
        except TypeError as exc:
            raise InvalidOptionError(
                f"Codec {cls.name!r} cannot be built from parameters {dict(params)!r}: {exc}"
            ) from exc

    @abc.abstractmethod
    def encode(self, data: memoryview, itemsize: int = 1) -> Any:
        """Compress one chunk; return a bytes-like object."""

    @abc.abstractmethod
    def decode(self, data: memoryview, raw_size: int) -> Any:
        """Decompress one chunk that :meth:`encode` produced; return exactly
        ``raw_size`` bytes as a bytes-like object."""

    def decode_into(self, data: memoryview, out: memoryview) -> None:
        """Decompress one chunk into ``out``, whose length is the raw size.

        The default calls :meth:`decode` and copies; codecs whose backend can
        write into a caller's buffer override this.
        """
        result = memoryview(self.decode(data, out.nbytes)).cast("B")
        if result.nbytes != out.nbytes:
            raise ValueError(
                f"codec {self.name!r} decoded {result.nbytes} bytes, expected {out.nbytes}"
            )
        out[:] = result

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self.params.items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Codec):
            return NotImplemented
        return self.name == other.name and self.params == other.params

    def __hash__(self) -> int:
        return hash((self.name, tuple(sorted(self.params.items()))))
