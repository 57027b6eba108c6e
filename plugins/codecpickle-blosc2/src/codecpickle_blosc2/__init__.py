"""A Blosc2 codec for codecpickle, found through the ``codecpickle.codecs`` entry point.

Blosc2 byte-shuffles (or bit-shuffles) typed data before compressing it, so
numerical arrays whose neighbouring values share their high bytes compress
far better than with a plain byte-stream codec.  The element size comes from
the ``itemsize`` hint codecpickle passes with every array chunk.
"""

from __future__ import annotations

from typing import Any, ClassVar

import blosc2

from codecpickle.codecs import Codec
from codecpickle.errors import CorruptDataError, InvalidOptionError

__all__ = ["Blosc2Codec"]
__version__ = "0.1.0"

INNER_CODECS = {
    "blosclz": blosc2.Codec.BLOSCLZ,
    "lz4": blosc2.Codec.LZ4,
    "lz4hc": blosc2.Codec.LZ4HC,
    "zlib": blosc2.Codec.ZLIB,
    "zstd": blosc2.Codec.ZSTD,
}
SHUFFLES = {
    "shuffle": blosc2.Filter.SHUFFLE,
    "bitshuffle": blosc2.Filter.BITSHUFFLE,
    "noshuffle": blosc2.Filter.NOFILTER,
}


def _parse_choice(what: str, value: object, choices: dict[str, Any]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise InvalidOptionError(
            f"Expected {what} to be one of {', '.join(map(repr, choices))} for codec 'blosc2'. "
            f"Got {value!r} instead."
        )
    return value


class Blosc2Codec(Codec):
    """Blosc2 with an inner codec (``zstd`` by default), ``level`` 0 to 9 and
    a ``shuffle`` filter: ``"shuffle"`` (bytes), ``"bitshuffle"`` or
    ``"noshuffle"``.

    Blosc2 compresses one chunk with a fresh context per call, so one
    instance is safe to share between threads.
    """

    name: ClassVar[str] = "blosc2"
    default_level: ClassVar[int] = 5
    min_level: ClassVar[int] = 0
    max_level: ClassVar[int] = 9

    def __init__(
        self, level: int | None = None, codec: str = "zstd", shuffle: str = "shuffle"
    ) -> None:
        super().__init__(level)
        self.codec = _parse_choice("codec", codec, INNER_CODECS)
        self.shuffle = _parse_choice("shuffle", shuffle, SHUFFLES)

    @property
    def params(self) -> dict[str, Any]:
        """``level``, ``codec`` and ``shuffle``, recorded in the file header."""
        return {"level": self.level, "codec": self.codec, "shuffle": self.shuffle}

    def encode(self, data: memoryview, itemsize: int = 1) -> bytes:
        """Compress one chunk, shuffling ``itemsize``-byte elements."""
        return blosc2.compress2(
            data,
            codec=INNER_CODECS[self.codec],
            clevel=self.level,
            # Blosc2 shuffles elements of 1 to 255 bytes; wider records (large
            # structured dtypes) are compressed as plain bytes.
            typesize=itemsize if 1 <= itemsize <= blosc2.MAX_TYPESIZE else 1,
            filters=[SHUFFLES[self.shuffle]],
            # codecpickle already runs one chunk per worker thread.  Blosc2's
            # own threads would be started per call (the pool belongs to the
            # per-call context) and only oversubscribe the cores.
            nthreads=1,
        )

    def decode(self, data: memoryview, raw_size: int) -> bytearray:
        """Decompress one chunk into a new buffer of exactly ``raw_size`` bytes."""
        out = bytearray(raw_size)
        self.decode_into(data, memoryview(out))
        return out

    def decode_into(self, data: memoryview, out: memoryview) -> None:
        """Decompress one chunk straight into ``out``, after checking that
        the chunk's header declares exactly ``len(out)`` bytes."""
        out = out.cast("B") if out.format != "B" or out.ndim != 1 else out
        # Blosc2 writes as many bytes as the chunk header declares, up to
        # 2 GiB; check the header against our sizes before it writes anything.
        declared, stored, _ = blosc2.get_cbuffer_sizes(data)
        if declared != out.nbytes:
            raise CorruptDataError(
                f"codec 'blosc2': the chunk declares {declared} bytes, expected {out.nbytes}"
            )
        if stored != memoryview(data).nbytes:
            raise CorruptDataError(
                f"codec 'blosc2': the chunk holds {memoryview(data).nbytes} bytes, "
                f"its header says {stored}"
            )
        if out.nbytes:  # decompress2 refuses an empty destination
            blosc2.decompress2(data, dst=out, nthreads=1)
