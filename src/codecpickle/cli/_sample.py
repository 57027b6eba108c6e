"""A bounded sample of a file's raw content, for ``codecpickle bench``.

Codecs are compared on an uncompressed stream held in memory.  Holding the
whole raw content would need as much memory as the file's arrays, so at
most ``limit`` raw bytes are taken: the same leading share of every array
payload and of the pickle opcodes (so every array weighs in the sample as
it does in the file), written as a structurally valid uncompressed stream
(header, records, END) that the benchmark rewrites and reads back.  Nothing
is unpickled, so a cut opcode stream does no harm.

The input is read through a memory map (standard input and URLs are first
copied to a temporary file): records are views, and only the sampled
chunks are decoded, so memory stays at about the sample's size.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .. import _format as fmt
from .._records import Record, StreamTotals, check, decode, iter_streams, walk_stream
from .._sources import MemorySource
from .._writer import ContainerWriter
from ..codecs import Codec


@dataclass
class Sample:
    """The sampled stream and what it stands for."""

    #: Uncompressed streams (one per object of the file), one after another.
    stream: memoryview
    #: Raw bytes of the whole file's content, and of the sample.
    file_raw_bytes: int
    raw_bytes: int
    #: Objects in the file.
    objects: int

    @property
    def fraction(self) -> float:
        """The share of the raw content measured (1.0: all of it)."""
        return self.raw_bytes / self.file_raw_bytes if self.file_raw_bytes else 1.0

    @property
    def whole(self) -> bool:
        return self.raw_bytes >= self.file_raw_bytes


def take_sample(data: Any, limit: int) -> Sample:
    """Sample at most about ``limit`` raw bytes of the streams in ``data``
    (a buffer: a memory map of the file); every checksum of what is
    sampled is checked."""
    streams = list(_walk_all(data))
    file_raw = sum(totals.raw_size for totals in streams)
    share = 1.0 if file_raw <= limit else limit / file_raw
    out = io.BytesIO()
    source = MemorySource(data)
    raw = 0
    for header, whole in zip(iter_streams(source), streams, strict=True):
        totals = StreamTotals()
        records = walk_stream(source, header, totals)
        writer = ContainerWriter(out, None, chunk_size=header.chunk_size, base_offset=out.tell())
        raw += _copy_share(records, writer, header.codec(), share, whole.opcode_bytes)
        writer.finish(None if totals.trailer is None else totals.trailer.manifest)
    return Sample(out.getbuffer(), file_raw, raw, len(streams))


def _walk_all(data: Any) -> Iterator[StreamTotals]:
    """Totals of every stream, from the record headers only (views: no
    stored byte is touched)."""
    source = MemorySource(data)
    for header in iter_streams(source):
        totals = StreamTotals()
        for _ in walk_stream(source, header, totals):
            pass
        yield totals


def _copy_share(
    records: Iterator[Record], writer: ContainerWriter, codec: Codec | None, share: float,
    opcode_total: int,
) -> int:
    """Write the leading ``share`` of every payload and of the opcodes to
    ``writer``; return the raw bytes written."""
    opcodes_wanted = opcode_total * share
    opcodes = payloads = 0
    for record in records:
        if record.kind == fmt.KIND_OPCODES:
            if opcodes < opcodes_wanted:
                check(record)
                taken = decode(record, codec)[: math.ceil(opcodes_wanted - opcodes)]
                writer.write(taken)
                opcodes += taken.nbytes
        elif record.kind == fmt.KIND_RAW_PAYLOAD:
            size = _share_of(record.raw_size, record.element_size, share)
            view = memoryview(record.stored).cast("B")
            if size == record.raw_size:
                check(record)  # the whole payload: its checksum covers it
            writer.write_payload(view[:size], record.element_size or 1)
            payloads += size
        elif record.kind == fmt.KIND_PAYLOAD:
            size = _share_of(record.raw_size, record.element_size, share)
            writer.write_payload_pieces(
                size, _leading_pieces(records, record.raw_size, size, codec),
                record.element_size or 1,
            )
            payloads += size
    return opcodes + payloads


def _share_of(size: int, element_size: int, share: float) -> int:
    """The leading ``share`` of ``size`` bytes, whole elements, at least one."""
    step = max(element_size, 1)
    wanted = int(size * share) // step * step
    return min(size, max(wanted, step))


def _leading_pieces(
    records: Iterator[Record], total: int, size: int, codec: Codec | None
) -> Iterator[memoryview]:
    """The first ``size`` decoded bytes of a payload of ``total`` bytes,
    chunk by chunk; its other DATA chunks are walked over undecoded."""
    taken = left = 0
    while left < total:
        record = next(records)
        left += record.raw_size
        if taken < size:
            check(record)
            piece = decode(record, codec)[: size - taken]
            taken += piece.nbytes
            yield piece
