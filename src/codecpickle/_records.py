"""Walk a stream's records without unpickling anything, sequentially.

This module owns the container's record layout outside the unpickling hot
path (:mod:`codecpickle._reader`): :func:`walk_stream` reads one stream from
its header to its END record (and trailer) and yields one :class:`Record`
per record, checking every structural rule the reader checks (kinds, flags,
sizes, END counts) so a truncated or malformed stream raises the same
errors a load would.  Its users:

- the command line's ``info``, ``verify``, ``recompress`` and ``bench``
  (through :mod:`codecpickle._transcode`), which need each record's stored
  bytes (what ``verify`` hashes and ``recompress`` decodes) but never the
  objects;
- :func:`codecpickle.reseal`, which hashes raw payloads in pieces;
- :mod:`codecpickle._index`'s scan of files without a usable trailer, which
  steps over stored bytes (``skip_stored=True``: seeks where it can);
- :mod:`codecpickle._skim`, which parses payload headers with
  :func:`read_payload_header` and :func:`read_raw_payload_header` and steps
  over their bytes with :func:`skip` on behalf of a reader.

Checksums are *not* checked while walking (but for the END record's): each
record carries its stored bytes and expected checksum, so a caller can hash
many of them in parallel (:func:`check`), or skip hashing entirely
(``info``).
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
    #: Raw payloads walked with ``stream_raw_payloads=True`` from a stream:
    #: their bytes, read in pieces as they are iterated (see RawPieces).
    pieces: RawPieces | None = field(default=None, repr=False, compare=False)

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
    skip_stored: bool = False,
    read_trailer: bool = True,
    stream_raw_payloads: bool = False,
) -> Iterator[Record]:
    """Yield the records after ``header`` up to and including END, leaving
    the source just past the END record (and, with ``read_trailer``, past
    the version-2 trailer, read and checked into ``totals.trailer``).

    From a :class:`MemorySource` stored bytes are views (nothing is copied
    or touched until used).  From a :class:`StreamSource` they are read;
    with ``read_raw_payloads=False`` a raw payload is hashed in pieces
    instead of held whole (its record then has ``digest`` set).  With
    ``skip_stored=True`` the stored bytes of chunks and raw payloads, and
    their checksums, are stepped over (:func:`skip`): records then carry
    neither ``stored`` nor ``expected``.  With ``stream_raw_payloads=True``
    a raw payload read from a stream carries :class:`RawPieces` instead of
    its bytes, to be iterated before the next record is asked for (what is
    left is read and checked then).
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
            stored = expected = None
            if skip_stored:
                skip(source, stored_size + fmt.CHECKSUM.size, "a chunk")
            else:
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
            element_size, raw_size = read_payload_header(source, header.version)
            if raw_size == 0:
                raise CorruptDataError(f"payload at offset {offset} declares 0 bytes")
            payload_left, payload_offset = raw_size, offset
            totals.payloads += 1
            totals.payload_bytes += raw_size
            yield Record(kind, offset, source.offset, raw_size, 0, element_size=element_size)
        elif kind == fmt.KIND_RAW_PAYLOAD:
            how = (
                "skip" if skip_stored
                else "stream" if stream_raw_payloads and isinstance(source, StreamSource)
                else "read" if read_raw_payloads else "hash"
            )
            record = _raw_payload(source, offset, ordinal, how, header)
            totals.payloads += 1
            totals.payload_bytes += record.raw_size
            yield record
            if record.pieces is not None:
                record.pieces.finish()
            ordinal += 1
        elif kind == fmt.KIND_END:
            yield _end(source, header, offset, ordinal, totals, read_trailer)
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
    check_chunk_header(
        kind, flags, raw_size, stored_size, offset=offset, limit=limit, version=header.version,
        element_size=element_size, compressed=header.codec_name != fmt.NO_CODEC,
    )
    _check_remaining(source, stored_size + fmt.CHECKSUM.size, "chunk", offset)
    return flags, raw_size, stored_size


def check_chunk_header(
    kind: int, flags: int, raw_size: int, stored_size: int, *, offset: int, limit: int,
    version: int, element_size: int, compressed: bool,
) -> None:
    """The format's rules for the header of the chunk record at ``offset``
    (its kind byte; its flags byte follows): defined flags, a filter only
    where one may be, 1..``limit`` raw bytes, stored sizes that match the
    flags, compressed chunks only in a stream with a codec."""
    if flags & ~(fmt.CHUNK_FLAGS | fmt.FILTER_MASK):
        raise CorruptDataError(f"undefined chunk flags {flags:#04x} at offset {offset + 1}")
    filter_id = (flags & fmt.FILTER_MASK) >> fmt.FILTER_SHIFT
    if filter_id and (
        version < fmt.FILTERS_SINCE_VERSION
        or not fmt.filter_bits_valid(kind, flags)
        or not _filters.valid_for(filter_id, element_size)
    ):
        raise CorruptDataError(
            f"chunk flags {flags:#04x} at offset {offset + 1} name filter {filter_id}, which is "
            f"not defined there (format version {version}, element size {element_size})"
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
    elif not compressed:
        raise CorruptDataError(
            f"compressed chunk at offset {offset} in a stream written without a codec"
        )


def read_payload_header(source: Source, version: int) -> tuple[int, int]:
    """Read the rest of a PAYLOAD record's header (its kind byte was just
    read) and check it; return the element size and the raw size."""
    offset = source.offset - 1
    head = source.read_exact(fmt.PAYLOAD_HEADER.size - 1, "a payload header")
    _, reserved, element_size, raw_size = fmt.PAYLOAD_HEADER.unpack(b"\0" + head)
    # The element size (for filters) exists from version 2.
    if reserved or (element_size and version < fmt.FILTERS_SINCE_VERSION):
        raise CorruptDataError(f"payload header at offset {offset} has non-zero reserved bits")
    return element_size, raw_size


def read_raw_payload_header(source: Source, version: int) -> tuple[int, int, int]:
    """Read the rest of a RAW_PAYLOAD record's header (its kind byte was
    just read) and check it; return the padding, element size and size."""
    offset = source.offset - 1
    head = source.read_exact(fmt.RAW_PAYLOAD_HEADER.size - 1, "a raw payload header")
    _, pad, element_size, size = fmt.RAW_PAYLOAD_HEADER.unpack(b"\0" + head)
    if element_size and version < fmt.FILTERS_SINCE_VERSION:
        raise CorruptDataError(f"raw payload header at offset {offset} has non-zero reserved bits")
    if pad >= fmt.ALIGNMENT:
        raise CorruptDataError(f"raw payload at offset {offset} declares {pad} padding bytes")
    return pad, element_size, size


def _raw_payload(
    source: Source, offset: int, ordinal: int, how: str, header: StreamHeader
) -> Record:
    """A raw payload record: its bytes read (``how="read"``), hashed in
    pieces (``"hash"``), left to read in pieces (``"stream"``) or stepped
    over (``"skip"``); views from memory."""
    pad, element_size, size = read_raw_payload_header(source, header.version)
    _check_remaining(source, pad + size + fmt.CHECKSUM.size, "raw payload", offset)
    source.read_exact(pad, "raw payload padding")
    data_offset = source.offset
    stored = digest = expected = None
    if how == "skip":
        skip(source, size + fmt.CHECKSUM.size, "a raw payload")
        return Record(fmt.KIND_RAW_PAYLOAD, offset, data_offset, size, size, 0, ordinal,
                      element_size=element_size)
    if how == "stream":
        assert isinstance(source, StreamSource)
        record = Record(fmt.KIND_RAW_PAYLOAD, offset, data_offset, size, size, 0, ordinal,
                        element_size=element_size)
        # Changed in place through mmap_mode="r+" on purpose: not checked.
        pieces = RawPieces(source, record, verify=not header.mutable_raw_payloads)
        object.__setattr__(record, "pieces", pieces)
        return record
    if isinstance(source, MemorySource):
        stored = source.view(size, "a raw payload")
    elif how == "read":
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


class RawPieces:
    """The bytes of a raw payload read from a stream, in fresh pieces of at
    most 16 MiB as they are iterated (so a payload larger than memory can be
    passed on), hashed on the way; its checksum is read and, with
    ``verify``, checked once the last piece is out
    (:class:`ChecksumMismatchError`).  Iterate once."""

    def __init__(self, source: StreamSource, record: Record, *, verify: bool) -> None:
        self._source = source
        self._record = record
        self._hasher = fmt.new_hasher(record.ordinal or 0)
        self._left = record.raw_size
        self._done = False
        self.verify = verify

    def __iter__(self) -> Iterator[memoryview]:
        while self._left:
            piece = memoryview(allocate(min(self._left, _PIECE), "raw payload", 0))
            self._source.readinto_exact(piece, "a raw payload")
            self._hasher.update(piece)
            self._left -= piece.nbytes
            yield piece
        self._end()

    def finish(self) -> None:
        """Read (and hash) what was not iterated, then the checksum."""
        while self._left:
            piece = self._source.read_exact(min(self._left, _PIECE), "a raw payload")
            self._hasher.update(piece)
            self._left -= len(piece)
        self._end()

    def _end(self) -> None:
        if self._done:
            return
        self._done = True
        expected = _read_checksum(self._source)
        if self.verify and self._hasher.intdigest() != expected:
            record = self._record
            raise ChecksumMismatchError(
                f"the {record.stored_size} bytes at offset {record.data_offset} "
                f"({record.kind_name} record #{record.ordinal} at offset {record.offset}) "
                "fail their checksum: the file is damaged"
            )


def _end(
    source: Source, header: StreamHeader, offset: int, ordinal: int, totals: StreamTotals,
    read_trailer: bool,
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
    if trailer_size and read_trailer:
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


def checksum_matches(record: Record) -> bool:
    """Whether ``record``'s stored bytes match its checksum (records
    without one match)."""
    if record.ordinal is None:
        return True
    digest = record.digest
    if digest is None:
        seed = record.ordinal if record.seed is None else record.seed
        digest = fmt.checksum(record.stored, seed)
    return digest == record.expected


def check(record: Record) -> None:
    """Raise :class:`ChecksumMismatchError` if ``record``'s stored bytes do
    not match its checksum (records without one pass)."""
    if not checksum_matches(record):
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


def skip(source: Any, nbytes: int, what: str) -> None:
    """Step ``source`` over ``nbytes``: a view for memory; a stream seeks
    when it can, else reads through in bounded pieces.  TruncatedFileError
    when the input ends first."""
    if isinstance(source, MemorySource):
        source.view(nbytes, what)
    else:
        source.skip(nbytes, what)
