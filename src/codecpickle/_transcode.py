"""Rewrite streams with another codec without unpickling them.

Each stream is walked record by record (``_records.py``); every record's
checksum is checked (damage is reported, never carried into the new file),
compressed chunks are decoded (raw payloads read from a stream pass
through in pieces, checked once read), and the raw bytes are fed to a
:class:`~codecpickle._writer.ContainerWriter` in stream order: opcode bytes
through ``write()``, payloads through ``write_payload_pieces()``.  The
writer re-chunks and re-encodes them on its thread pool, so the new stream
is exactly what ``dump`` would have written for the same object with the new
codec (the version-2 manifest is carried over), except that payloads lose
the element size the pickler saw (codecs that shuffle bytes by element size
see 1).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from . import _filters
from . import _format as fmt
from ._pool import ChunkPool
from ._records import (
    Record,
    StreamHeader,
    StreamTotals,
    check,
    decode,
    iter_streams,
    walk_stream,
)
from ._sources import MemorySource, StreamSource, allocate
from ._writer import ContainerWriter
from .codecs import Codec, codec_provider
from .errors import CorruptDataError


@dataclass
class TranscodeStats:
    """What a rewrite read and wrote."""

    streams: int = 0
    raw_bytes: int = 0
    written_bytes: int = 0


class _Counter:
    """Counts the bytes the writer hands to the output."""

    def __init__(self, file: Any, stats: TranscodeStats) -> None:
        self._write = file.write
        self._stats = stats

    def write(self, data: Any) -> int:
        count = self._write(data)
        self._stats.written_bytes += memoryview(data).nbytes if count is None else count
        return memoryview(data).nbytes if count is None else int(count)


def transcode(
    source: StreamSource | MemorySource,
    out: Any,
    codec: Codec | None,
    *,
    threads: int,
    chunk_size: int | None = None,
    verify: bool = True,
    filters: str | int = _filters.AUTO,
) -> TranscodeStats:
    """Rewrite every stream of ``source`` into ``out`` (written sequentially,
    from its current position) with ``codec`` and ``filters`` (as
    ``_filters.filters_for`` returns them).  ``verify=False`` skips the
    checksums, for input this process wrote itself."""
    stats = TranscodeStats()
    sink = _Counter(out, stats)
    size = chunk_size or (Codec.chunk_size if codec is None else codec.chunk_size)
    provider = None if codec is None else codec_provider(codec.name)
    pool = ChunkPool(threads) if codec is not None else None
    try:
        for header in iter_streams(source):
            writer = ContainerWriter(
                sink, codec, chunk_size=size, executor=pool, max_in_flight=2 * threads,
                base_offset=stats.written_bytes, provider=provider, filters=filters,
            )
            totals = StreamTotals()
            try:
                records = walk_stream(source, header, totals, stream_raw_payloads=True)
                replay(header, records, writer, stats, verify=verify)
                # The manifest describes who pickled the object (Python, numpy,
                # the packages it names): unchanged by a new codec, so kept.
                writer.finish(None if totals.trailer is None else totals.trailer.manifest)
            except BaseException:
                writer.abort()
                raise
            stats.streams += 1
    except BaseException:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        raise
    if pool is not None:
        pool.shutdown()
    return stats


def replay(
    header: StreamHeader, records: Iterator[Record], writer: ContainerWriter,
    stats: TranscodeStats | None = None,
    *,
    verify: bool = True,
) -> None:
    """Check and decode ``records`` and write their raw bytes to ``writer``
    (END excluded: the caller finishes the writer)."""
    codec = header.codec()
    for record in records:
        # Raw payloads changed in place through mmap_mode="r+" have stale
        # checksums by design; the new stream gets fresh ones.
        if record.pieces is not None:
            # A raw payload from a stream, passed on piece by piece (checked
            # once read: a damaged one fails the rewrite, which drops it).
            record.pieces.verify = record.pieces.verify and verify
            writer.write_payload_pieces(
                record.raw_size, _regroup(record.pieces, record.raw_size, writer.chunk_size),
                record.element_size or 1,
            )
            if stats is not None:
                stats.raw_bytes += record.raw_size
            continue
        if verify and not (header.mutable_raw_payloads and record.kind == fmt.KIND_RAW_PAYLOAD):
            check(record)
        if record.kind == fmt.KIND_OPCODES:
            writer.write(decode(record, codec))
        elif record.kind == fmt.KIND_RAW_PAYLOAD:
            writer.write_payload(memoryview(record.stored).cast("B"), record.element_size or 1)
        elif record.kind == fmt.KIND_PAYLOAD:
            pieces = _payload_pieces(records, record.raw_size, codec, verify)
            writer.write_payload_pieces(
                record.raw_size, _regroup(pieces, record.raw_size, writer.chunk_size),
                record.element_size or 1,  # so the new stream's chunks can be filtered too
            )
        elif record.kind == fmt.KIND_END:
            return
        if stats is not None and record.kind != fmt.KIND_DATA:
            stats.raw_bytes += record.raw_size
    raise CorruptDataError("the stream ended without its END record")  # walk_stream prevents it


def _payload_pieces(
    records: Iterator[Record], nbytes: int, codec: Codec | None, verify: bool
) -> Iterator[memoryview]:
    """The decoded DATA chunks of one payload, pulled from ``records``."""
    left = nbytes
    while left:
        record = next(records)
        if verify:
            check(record)
        left -= record.raw_size
        yield decode(record, codec)


def _regroup(pieces: Iterable[memoryview], nbytes: int, size: int) -> Iterator[memoryview]:
    """Pieces of exactly ``size`` bytes (the last may be shorter), so a
    payload is cut into the new codec's chunk size whatever the old one was;
    pieces that already fit pass through without a copy."""
    buffer: memoryview | None = None
    filled = 0
    left = nbytes
    for piece in pieces:
        while piece.nbytes:
            if buffer is None and piece.nbytes >= size and filled == 0:
                yield piece[:size]
                left -= size
                piece = piece[size:]
                continue
            if buffer is None:
                buffer = memoryview(allocate(min(size, left), "a chunk", 0))
            take = min(piece.nbytes, buffer.nbytes - filled)
            buffer[filled : filled + take] = piece[:take]
            filled += take
            piece = piece[take:]
            if filled == buffer.nbytes:
                yield buffer
                left -= filled
                buffer, filled = None, 0
    if buffer is not None and filled:
        yield buffer[:filled]
