"""Walk a stream's records without unpickling anything, sequentially.

The command line's ``info``, ``verify``, ``recompress`` and ``bench`` need the
container's structure (which records, where, how large, with which checksum)
but never the objects: :func:`walk_stream` reads one stream from its header
to its END record and yields one :class:`Record` per record, checking every
structural rule the reader checks (kinds, flags, sizes, END counts) so a
truncated or malformed stream raises the same errors a load would.

Unlike :mod:`codecpickle._index` (which finds records through a version-2
trailer, or by seeking past stored bytes), this walk reads every byte in
order, so it works on pipes and hands each record's stored bytes to the
caller: what ``verify`` hashes and ``recompress`` decodes.

Checksums are *not* checked while walking: each chunk record carries its
stored bytes and expected checksum, so a caller can hash many of them in
parallel (:func:`check`), or skip hashing entirely (``info``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from . import _filters
from . import _format as fmt
from ._reader import _decode, read_header_fields
from ._sources import MemorySource, StreamSource, allocate
from ._trailer import Trailer, read_after_end
from .codecs import Codec, codec_from_header
from .errors import (
    ChecksumMismatchError,
    CorruptDataError,
    EmptyInputError,
    TruncatedFileError,
)

Source = StreamSource | MemorySource

# Raw payloads read from a stream (stdin) are hashed in pieces of this size
# when their bytes are not wanted, so memory stays bounded whatever their size.
_PIECE = 16 << 20

KIND_NAMES = {
    fmt.KIND_END: "END",
    fmt.KIND_OPCODES: "OPCODES",
    fmt.KIND_PAYLOAD: "PAYLOAD",
    fmt.KIND_RAW_PAYLOAD: "RAW_PAYLOAD",
    fmt.KIND_DATA: "DATA",
}


@dataclass(frozen=True)
class StreamHeader:
    """What a stream's header says, and where the stream starts."""

    offset: int
    version: int
    meta: dict[str, Any]
    #: Header flag bits (bit 0: MUTABLE_RAW_PAYLOADS, see docs/format.md).
    flags: int = 0

    @property
    def mutable_raw_payloads(self) -> bool:
        """Raw payloads may have been changed in place (``mmap_mode="r+"``):
        their checksums are stale until ``codecpickle.reseal``."""
        return bool(self.flags & fmt.FLAG_MUTABLE_RAW_PAYLOADS)

    @property
    def codec_name(self) -> str:
        return str(self.meta["codec"])

    @property
    def chunk_size(self) -> int:
        return int(self.meta["chunk_size"])

    def codec(self) -> Codec | None:
        """The codec that decodes this stream's chunks (None: uncompressed);
        raises :class:`~codecpickle.errors.UnknownCodecError` if missing."""
        if self.codec_name == fmt.NO_CODEC:
            return None
        return codec_from_header(self.codec_name, self.meta.get("params", {}),
                                 self.meta.get("provider"))


@dataclass(frozen=True)
class Record:
    """One record of a stream.

    ``offset`` is the record's first byte and ``data_offset`` its first
    stored byte, both counted from the start of the input.  ``raw_size`` is
    the record's size once decoded (for a PAYLOAD header, the payload's
    total; for END, 0) and ``stored_size`` what it occupies as stored data.
    ``ordinal`` seeds its checksum (None for PAYLOAD headers, which have
    none); ``expected`` is the stored checksum; ``stored`` the stored bytes
    when they were read, else ``digest`` is their checksum computed while
    reading them in pieces.
    """

    kind: int
    offset: int
    data_offset: int
    raw_size: int
    stored_size: int
    flags: int = 0
    ordinal: int | None = None
    expected: int | None = None
    stored: Any = field(default=None, repr=False)
    digest: int | None = None
    #: Seed of the checksum when it is not the ordinal alone (version-2
    #: chunks: flags and element size too, ``fmt.chunk_seed``).
    seed: int | None = None
    #: PAYLOAD headers and their DATA chunks: the element size (version 2,
    #: 0 when not told), which filters work on.
    element_size: int = 0

    @property
    def filter_id(self) -> int:
        """The filter the chunk's bytes went through (0: none)."""
        return (self.flags & fmt.FILTER_MASK) >> fmt.FILTER_SHIFT

    @property
    def kind_name(self) -> str:
        return KIND_NAMES[self.kind]

    @property
    def compressed(self) -> bool:
        return self.kind in (fmt.KIND_OPCODES, fmt.KIND_DATA) and not (
            self.flags & fmt.FLAG_STORED_RAW
        )


@dataclass
class StreamTotals:
    """Counts gathered while walking one stream."""

    payloads: int = 0
    chunks: int = 0
    opcode_bytes: int = 0
    payload_bytes: int = 0
    #: Offset just past the stream (its END record, or its trailer).
    end_offset: int = 0
    #: The version-2 trailer (index, manifest, footer), once read.
    trailer: Trailer | None = None

    @property
    def raw_size(self) -> int:
        return self.opcode_bytes + self.payload_bytes


def read_stream_header(source: Source) -> StreamHeader:
    """Read and check a stream header at the source's position."""
    start = source.offset
    version, meta, flags = read_header_fields(source)
    return StreamHeader(start, version, meta, flags)


def walk_stream(
    source: Source,
    header: StreamHeader,
    totals: StreamTotals | None = None,
    *,
    read_raw_payloads: bool = True,
) -> Iterator[Record]:
    """Yield the records after ``header`` up to and including END, leaving
    the source just past the END record.

    From a :class:`MemorySource` stored bytes are views (nothing is copied
    or touched until used).  From a :class:`StreamSource` they are read;
    with ``read_raw_payloads=False`` a raw payload is hashed in pieces
    instead of held whole (its record then has ``digest`` set).
    """
    totals = StreamTotals() if totals is None else totals
    chunk_limit = header.chunk_size
    ordinal = 1
    payload_left = 0  # DATA bytes still owed to the current PAYLOAD
    payload_offset = 0
    element_size = 0  # of the current PAYLOAD
    while True:
        offset = source.offset
        kind = source.read_exact(1, "a record")[0]
        if payload_left and kind != fmt.KIND_DATA:
            raise CorruptDataError(
                f"payload at offset {payload_offset} has {payload_left} bytes to go but "
                f"offset {offset} holds a record of kind {kind:#04x}, not DATA"
            )
        if kind in (fmt.KIND_OPCODES, fmt.KIND_DATA):
            if kind == fmt.KIND_DATA and not payload_left:
                raise CorruptDataError(f"DATA chunk at offset {offset} outside a payload")
            limit = min(chunk_limit, payload_left) if kind == fmt.KIND_DATA else chunk_limit
            size = element_size if kind == fmt.KIND_DATA else 0
            flags, raw_size, stored_size = _chunk_header(
                source, header, offset, limit, kind, size
            )
            data_offset = source.offset
            stored = source.view(stored_size, "a chunk")
            expected = _read_checksum(source)
            totals.chunks += 1
            if kind == fmt.KIND_DATA:
                payload_left -= raw_size
            else:
                totals.opcode_bytes += raw_size
            seed = fmt.chunk_seed(header.version, ordinal, flags, size)
            yield Record(kind, offset, data_offset, raw_size, stored_size, flags, ordinal,
                         expected, stored, seed=seed, element_size=size)
            ordinal += 1
        elif kind == fmt.KIND_PAYLOAD:
            head = source.read_exact(fmt.PAYLOAD_HEADER.size - 1, "a payload header")
            _, reserved, element_size, raw_size = fmt.PAYLOAD_HEADER.unpack(b"\0" + head)
            # The element size (for filters) exists from version 2.
            if reserved or (element_size and header.version < fmt.FILTERS_SINCE_VERSION):
                raise CorruptDataError(
                    f"payload header at offset {offset} has non-zero reserved bits"
                )
            if raw_size == 0:
                raise CorruptDataError(f"payload at offset {offset} declares 0 bytes")
            payload_left, payload_offset = raw_size, offset
            totals.payloads += 1
            totals.payload_bytes += raw_size
            yield Record(kind, offset, source.offset, raw_size, 0, element_size=element_size)
        elif kind == fmt.KIND_RAW_PAYLOAD:
            record = _raw_payload(source, offset, ordinal, read_raw_payloads, header.version)
            totals.payloads += 1
            totals.payload_bytes += record.raw_size
            yield record
            ordinal += 1
        elif kind == fmt.KIND_END:
            yield _end(source, header, offset, ordinal, totals)
            totals.end_offset = source.offset
            return
        else:
            raise CorruptDataError(f"unknown record kind {kind:#04x} at offset {offset}")


def iter_streams(source: Source) -> Iterator[StreamHeader]:
    """Read the header of each stream in ``source`` in turn; the caller
    walks its records (:func:`walk_stream`) before asking for the next.
    Stops cleanly at the end of the input after at least one stream."""
    first = True
    while True:
        try:
            header = read_stream_header(source)
        except EmptyInputError:
            if first:
                raise
            return
        first = False
        yield header


def _chunk_header(
    source: Source, header: StreamHeader, offset: int, limit: int, kind: int, element_size: int
) -> tuple[int, int, int]:
    head = source.read_exact(fmt.CHUNK_HEADER.size - 1, "a chunk header")
    _, flags, raw_size, stored_size = fmt.CHUNK_HEADER.unpack(bytes([kind]) + head)
    if flags & ~(fmt.CHUNK_FLAGS | fmt.FILTER_MASK):
        raise CorruptDataError(f"undefined chunk flags {flags:#04x} at offset {offset + 1}")
    filter_id = (flags & fmt.FILTER_MASK) >> fmt.FILTER_SHIFT
    if filter_id and (
        header.version < fmt.FILTERS_SINCE_VERSION
        or not fmt.filter_bits_valid(kind, flags)
        or not _filters.valid_for(filter_id, element_size)
    ):
        raise CorruptDataError(
            f"chunk flags {flags:#04x} at offset {offset + 1} name filter {filter_id}, which is "
            f"not defined there (format version {header.version}, element size {element_size})"
        )
    if not 0 < raw_size <= limit:
        raise CorruptDataError(
            f"chunk at offset {offset} declares {raw_size} raw bytes; expected 1..{limit}"
        )
    if flags & fmt.FLAG_STORED_RAW:
        if stored_size != raw_size:
            raise CorruptDataError(
                f"raw chunk at offset {offset} declares stored size {stored_size} "
                f"!= raw size {raw_size}"
            )
    elif not 0 < stored_size < raw_size:
        raise CorruptDataError(
            f"compressed chunk at offset {offset} declares stored size {stored_size} "
            f"for raw size {raw_size}; expected 1..{raw_size - 1}"
        )
    elif header.codec_name == fmt.NO_CODEC:
        raise CorruptDataError(
            f"compressed chunk at offset {offset} in a stream written without a codec"
        )
    _check_remaining(source, stored_size + fmt.CHECKSUM.size, "chunk", offset)
    return flags, raw_size, stored_size


def _raw_payload(
    source: Source, offset: int, ordinal: int, read_data: bool, version: int
) -> Record:
    head = source.read_exact(fmt.RAW_PAYLOAD_HEADER.size - 1, "a raw payload header")
    _, pad, element_size, size = fmt.RAW_PAYLOAD_HEADER.unpack(b"\0" + head)
    if element_size and version < fmt.FILTERS_SINCE_VERSION:
        raise CorruptDataError(f"raw payload header at offset {offset} has non-zero reserved bits")
    if pad >= fmt.ALIGNMENT:
        raise CorruptDataError(f"raw payload at offset {offset} declares {pad} padding bytes")
    _check_remaining(source, pad + size + fmt.CHECKSUM.size, "raw payload", offset)
    source.read_exact(pad, "raw payload padding")
    data_offset = source.offset
    stored = digest = None
    if isinstance(source, MemorySource):
        stored = source.view(size, "a raw payload")
    elif read_data:
        stored = memoryview(allocate(size, "raw payload", offset))
        source.readinto_exact(stored, "a raw payload")
    else:
        hasher = fmt.new_hasher(ordinal)
        left = size
        while left:
            piece = source.read_exact(min(left, _PIECE), "a raw payload")
            hasher.update(piece)
            left -= len(piece)
        digest = hasher.intdigest()
    expected = _read_checksum(source)
    return Record(fmt.KIND_RAW_PAYLOAD, offset, data_offset, size, size, 0, ordinal, expected,
                  stored, digest, element_size=element_size)


def _end(
    source: Source, header: StreamHeader, offset: int, ordinal: int, totals: StreamTotals
) -> Record:
    layout = fmt.end_record_for(header.version)
    rest = source.read_exact(layout.size - 1, "the END record")
    end = bytes([fmt.KIND_END]) + rest
    _, payloads, units, opcode_bytes, *trailer_size = layout.unpack(end)
    expected = _read_checksum(source)
    record = Record(fmt.KIND_END, offset, offset, 0, 0, 0, ordinal, expected, end)
    # The END record is small: always checked here, so a walk that hashes
    # nothing else (info) still catches a damaged end of stream.
    check(record)
    if (payloads, units, opcode_bytes) != (totals.payloads, ordinal - 1, totals.opcode_bytes):
        raise CorruptDataError(
            f"the END record at offset {offset} counts {payloads} payloads, {units} "
            f"records and {opcode_bytes} opcode bytes, but the stream held "
            f"{totals.payloads}, {ordinal - 1} and {totals.opcode_bytes}"
        )
    if trailer_size:
        # Version 2: the trailer (index, manifest, footer) is read and its
        # checksums and sizes checked, as a load does.
        totals.trailer = read_after_end(source, trailer_size[0], units, header.offset)
    return record


def _read_checksum(source: Source) -> int:
    return int(fmt.CHECKSUM.unpack(source.read_exact(fmt.CHECKSUM.size, "a checksum"))[0])


def _check_remaining(source: Source, nbytes: int, what: str, offset: int) -> None:
    remaining = source.remaining()
    if remaining is not None and nbytes > remaining:
        raise TruncatedFileError(
            f"{what} at offset {offset} declares {nbytes} more bytes but the input "
            f"has only {remaining} left"
        )


def check(record: Record) -> None:
    """Raise :class:`ChecksumMismatchError` if ``record``'s stored bytes do
    not match its checksum (records without one pass)."""
    if record.ordinal is None:
        return
    digest = record.digest
    if digest is None:
        seed = record.ordinal if record.seed is None else record.seed
        digest = fmt.checksum(record.stored, seed)
    if digest != record.expected:
        raise ChecksumMismatchError(
            f"the {record.stored_size or fmt.END_RECORD.size} bytes at offset "
            f"{record.data_offset} ({record.kind_name} record #{record.ordinal} at offset "
            f"{record.offset}) fail their checksum: the file is damaged"
        )


def decode(record: Record, codec: Codec | None) -> memoryview:
    """The raw bytes of a chunk or raw-payload record (checksum not checked)."""
    stored = memoryview(record.stored).cast("B")
    if not record.compressed:
        return stored
    assert codec is not None  # a compressed chunk in an uncompressed stream is refused
    out = memoryview(allocate(record.raw_size, "a chunk", record.data_offset))
    _decode(codec, stored, out, record.data_offset)
    if record.filter_id:
        # The codec's output is the filtered bytes: undo the filter.
        filtered, out = out, memoryview(allocate(record.raw_size, "a chunk", record.data_offset))
        _filters.decode(record.filter_id, filtered, out, record.element_size)
    return out
