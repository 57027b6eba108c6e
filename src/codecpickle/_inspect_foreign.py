"""``inspect`` of the files ``load`` reads besides its own: plain pickles
(any protocol, bare or compressed with gzip, zlib, bz2, xz, lzma, zstd or
lz4) and joblib files (plain or compressed).

The input is decompressed as a load would decompress it
(``_foreign/_decompress.py``) and walked by the same opcode scanner as
codecpickle streams (:mod:`codecpickle._scan`): nothing is executed or
imported.  The scanner steps over the array data joblib writes between the
opcodes (and walks the inner pickle it writes for arrays of objects), so a
joblib file's every global is listed, and its arrays with their shape,
dtype and order, as are arrays pickled through numpy's own reductions.
Files that hold several pickles one after another give one object each.

:func:`every_refused` is the same walk for a restricted load that was
refused: the complete list of globals it would refuse.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ._foreign import Kind
from ._foreign._decompress import open_decompressed
from ._foreign._joblib import (
    LEGACY_WRAPPER_NAMES,
    MEMMAP_NAMES,
    WRAPPER_NAMES,
    refuse_legacy_wrapper,
)
from ._foreign._stream import CountingReader
from ._safe import forbidden_globals
from ._scan import OpcodeScanner, ScanResult
from .errors import CodecPickleError, FileFormatError, ForbiddenGlobalError

__all__ = ["FOREIGN_ADMITTED", "complete_refusal", "every_refused", "inspect_foreign"]

#: Globals a restricted load of a foreign file admits besides the
#: allowlist: joblib's array wrapper and memmap marker (stand-ins that check
#: what they are given, never the classes themselves) and ``_codecs.encode``
#: for protocol 2's bytes (latin-1 only).
FOREIGN_ADMITTED = WRAPPER_NAMES | MEMMAP_NAMES | {"_codecs.encode"}

# Decompressed bytes are read in pieces of this size.
_PIECE = 1 << 16


class _Input:
    """The decompressed bytes of a foreign file as chunks for the scanner,
    counting what was read from the file and what came out."""

    def __init__(self, file: Any, kind: Kind) -> None:
        self._raw = CountingReader(file)
        self._stream = open_decompressed(kind, self._raw) if kind.compressed else self._raw
        #: Bytes that came out of the decompressor (or the file).
        self.produced = 0
        self._pending = b""

    @property
    def consumed(self) -> int:
        """Bytes read from the file so far."""
        return self._raw.count

    def chunks(self) -> Iterator[bytes]:
        if self._pending:
            pending, self._pending = self._pending, b""
            yield pending
        while True:
            data = self._stream.read(_PIECE)
            if not data:
                return
            self.produced += len(data)
            yield data

    def give_back(self, data: bytes) -> None:
        """Bytes read past a STOP: the next pickle's first bytes."""
        self._pending = data + self._pending

    def at_end(self) -> bool:
        if self._pending:
            return False
        data = self._stream.read(_PIECE)
        if not data:
            return True
        self.produced += len(data)
        self._pending = data
        return False


def scan_foreign(file: Any, kind: Kind) -> Iterator[tuple[int, ScanResult, int]]:
    """Walk every pickle of a foreign file: (offset of its first byte in
    the decompressed stream, what the scan found, bytes of the file read
    when it ended)."""
    if kind is Kind.JOBLIB_ZFILE:
        raise FileFormatError(
            "this is a joblib < 0.9.3 compressed file ('ZF' header), a format codecpickle "
            "does not read; load it once with joblib.load and dump it again"
        )
    source = _Input(file, kind)
    offset = 0
    while True:
        scanner = OpcodeScanner(source.chunks(), start=offset)
        scan = scanner.run()
        leftover = scanner.leftover()
        source.give_back(leftover)
        yield offset, scan, source.consumed
        offset += scan.opcode_bytes
        if source.at_end():
            return


def inspect_foreign(
    file: Any, kind: Kind, allowed: frozenset[str], summary: Callable[..., Any]
) -> tuple[Any, ...]:
    """One :class:`~codecpickle._inspect.ObjectInfo` per pickle in
    ``file``, built by ``summary`` (``_inspect._summary``)."""
    objects = []
    admitted = allowed | FOREIGN_ADMITTED
    consumed_before = 0
    for offset, scan, consumed in scan_foreign(file, kind):
        legacy = [ref.dotted for ref in scan.globals if ref.dotted in LEGACY_WRAPPER_NAMES]
        if legacy:
            raise refuse_legacy_wrapper(legacy[0])
        objects.append(
            summary(
                offset=offset,
                version=0,
                meta={"codec": kind.value if kind.compressed else "none", "chunk_size": 0},
                stored=consumed - consumed_before,
                opcode_stored=consumed - consumed_before,
                scan=scan,
                payloads=(),
                manifest=None,
                allowed=admitted,
                format="joblib" if scan.joblib else "pickle",
            )
        )
        consumed_before = consumed
    return tuple(objects)


def every_refused(file: Any, kind: Kind, admits: Callable[[str, str], bool]) -> list[str]:
    """Every global a restricted load of ``file`` (from its start) would
    refuse, in stream order, found by walking all of it."""
    refused: dict[str, None] = {}
    for _, scan, _ in scan_foreign(file, kind):
        for ref in scan.globals:
            if not admits(ref.module, ref.name):
                refused.setdefault(ref.dotted)
    return list(refused)


def complete_refusal(
    refused: ForbiddenGlobalError, file: Any, kind: Kind, admits: Callable[[str, str], bool]
) -> ForbiddenGlobalError:
    """The error for a refused restricted load of ``file`` (at the start of
    its stream), naming every global it would refuse: ``refused`` itself
    when the walk cannot complete the list, or ``file`` is None: an input
    that cannot be read again from its start, refused inside joblib's
    pickle of an array of objects."""
    if file is None:
        return forbidden_globals(
            refused.names,
            " (the rest of the stream could not be scanned: the refusal is inside joblib's "
            "pickle of an array of objects, and the input cannot be read again from its start)",
        )
    try:
        names = every_refused(file, kind, admits)
    except (CodecPickleError, OSError, EOFError, ValueError) as exc:
        return forbidden_globals(
            refused.names[:1], f" (the rest of the stream could not be scanned: {exc})"
        )
    first = refused.names[0]
    return forbidden_globals([first, *(name for name in names if name != first)])
