"""Read where everything is in a codecpickle file, without unpickling it.

:func:`read_index` returns a :class:`StreamIndex` for one stream: its header
metadata, the offset and sizes of every opcode chunk, every payload with its
chunk table, the writer's manifest, and the stream's total sizes.
:func:`iter_indexes` does the same for every stream of a file that holds
several objects dumped one after another.

Two ways to get there, chosen automatically (``method="auto"``):

- **From the trailer** (format version 2): the fixed-size footer at the end
  of the stream locates the trailer, which holds the index and the manifest:
  two reads, plus one more to fetch any payload.  Works over anything that
  reads at an offset cheaply (a local file, a memory map, an fsspec file
  doing HTTP range requests).
- **By scanning the records** (version 1, or a version-2 stream the footer
  cannot reach): two small reads per record, seeking past the stored bytes
  (the walk of :mod:`codecpickle._records`).  A scan checks the record
  headers and the END record, not the checksums of the stored bytes it
  skips.

Every size and offset read from the file is checked against the file's size
and the format's rules before it is used, so a damaged or crafted file
raises a :class:`~codecpickle.errors.FileFormatError` rather than making a
reader seek outside the stream or allocate more than the file can hold.

The input is a path, a bytes-like object, or a *seekable* binary file
object; the file object's position is restored afterwards.  Pipes cannot be
indexed (load them instead).  Example::

    import io
    import numpy as np
    import codecpickle
    from codecpickle._index import read_index

    data = codecpickle.dumps({"x": np.zeros(1 << 18)}, compress="zstd")
    index = read_index(io.BytesIO(data))
    (payload,) = index.payloads
    assert payload.raw_size == 8 << 18 and index.codec == "zstd"
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from . import _format as fmt
from ._reader import _parse_meta
from ._records import check_chunk_header, read_stream_header, walk_stream
from ._sources import MemorySource, StreamSource, real_fileno
from ._trailer import (
    Footer,
    Record,
    check_body,
    check_trailer,
    check_trailer_size,
    decode_index,
    parse_footer,
    parse_manifest,
)
from .errors import (
    ChecksumMismatchError,
    CodecPickleError,
    CorruptDataError,
    EmptyInputError,
    FileFormatError,
    InvalidOptionError,
    TruncatedFileError,
)

__all__ = [
    "ChunkInfo",
    "PayloadInfo",
    "StreamIndex",
    "iter_indexes",
    "read_index",
    "read_manifest",
]

Method = Literal["auto", "trailer", "scan"]


@dataclass(frozen=True)
class ChunkInfo:
    """One chunk record (an opcode chunk, or a DATA chunk of a payload)."""

    #: Offset of the record's first byte (its kind) in the file.
    offset: int
    #: Offset of its stored bytes in the file.
    data_offset: int
    #: Size once decoded.
    raw_size: int
    #: Size as stored (equal to ``raw_size`` when stored raw).
    stored_size: int
    #: The chunk's flags byte (bit 0: stored raw; see docs/format.md).
    flags: int
    #: The unit's ordinal in the stream.
    ordinal: int
    #: Seed of the stored bytes' checksum: the ordinal, and from version 2
    #: also the flags and the payload's element size (``fmt.chunk_seed``).
    seed: int

    @property
    def stored_raw(self) -> bool:
        """Whether the stored bytes are the raw bytes (no codec)."""
        return bool(self.flags & fmt.FLAG_STORED_RAW)

    @property
    def end(self) -> int:
        """Offset one past the record's checksum."""
        return self.data_offset + self.stored_size + fmt.CHECKSUM.size


@dataclass(frozen=True)
class PayloadInfo:
    """One out-of-band buffer, in the order the pickle consumes them."""

    #: Position among the stream's payloads (0 for the first NEXT_BUFFER).
    number: int
    #: ``"payload"`` (through the codec, in chunks) or ``"raw"`` (stored
    #: as is, 64-byte aligned: what ``mmap_mode`` maps).
    kind: Literal["payload", "raw"]
    #: Offset of the record's first byte in the file.
    offset: int
    #: Bytes once decoded.
    raw_size: int
    #: Bytes the record takes in the file, headers and checksums included.
    record_size: int
    #: The DATA chunks, in order (empty for ``"raw"`` payloads).
    chunks: tuple[ChunkInfo, ...] = ()
    #: For ``"raw"`` payloads: where the bytes start, and their checksum seed.
    data_offset: int | None = None
    ordinal: int | None = None
    #: Size of the elements (version 2, 0 when not told): filters work on it.
    element_size: int = 0

    @property
    def stored_size(self) -> int:
        """Payload bytes as stored (without record headers and checksums)."""
        if self.kind == "raw":
            return self.raw_size
        return sum(chunk.stored_size for chunk in self.chunks)


@dataclass(frozen=True)
class StreamIndex:
    """Where everything is in one stream (offsets count from the start of
    the file or buffer, not of the stream)."""

    #: Offset of the stream's first byte.
    offset: int
    #: Format version.
    version: int
    #: The header's metadata: ``codec``, ``params``, ``chunk_size``, ...
    meta: dict[str, Any]
    #: Bytes of the header (magic to header checksum).
    header_size: int
    opcode_chunks: tuple[ChunkInfo, ...]
    payloads: tuple[PayloadInfo, ...]
    #: Offset of the END record.
    end_offset: int
    #: Bytes of the whole stream, trailer included.
    size: int
    #: The writer's manifest (version 2; ``None`` for version 1 or when the
    #: trailer is damaged).  See docs/format.md.
    manifest: dict[str, Any] | None
    #: ``"trailer"`` or ``"scan"``: how this index was obtained.
    method: str
    #: Why the trailer could not be used, when a scan had to stand in for
    #: a damaged one (``method="scan"`` only).
    trailer_damage: str | None = None
    #: Bytes of the trailer (index, manifest, footer); 0 for version 1.
    trailer_size: int = 0
    _extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def codec(self) -> str:
        """The codec's name (``"none"`` when not compressed)."""
        return str(self.meta["codec"])

    @property
    def opcode_bytes(self) -> int:
        """Raw size of the pickle opcode stream."""
        return sum(chunk.raw_size for chunk in self.opcode_chunks)

    @property
    def raw_size(self) -> int:
        """Decoded bytes: opcodes plus every payload."""
        return self.opcode_bytes + sum(p.raw_size for p in self.payloads)

    @property
    def stored_size(self) -> int:
        """Stored bytes of opcodes and payloads (without headers)."""
        opcodes = sum(chunk.stored_size for chunk in self.opcode_chunks)
        return opcodes + sum(p.stored_size for p in self.payloads)

    @property
    def end(self) -> int:
        """Offset one past the stream's last byte (where a next stream starts)."""
        return self.offset + self.size


def read_index(file: Any, *, offset: int | None = None, method: Method = "auto") -> StreamIndex:
    """The index of the stream starting at ``offset`` in ``file``.

    ``file`` is a path, a bytes-like object or a seekable binary file
    object; ``offset`` defaults to the file object's current position (0
    for paths and buffers).  ``method`` is ``"trailer"`` (version-2 trailer
    only; fails when it is absent or damaged), ``"scan"`` (walk the records;
    a damaged trailer is reported in :attr:`StreamIndex.trailer_damage`) or
    ``"auto"``: the trailer when the footers at the end of the file lead to
    this stream, a scan otherwise, and a
    :class:`~codecpickle.errors.FileFormatError` when the stream's own
    trailer turns out to be damaged.
    """
    if method not in ("auto", "trailer", "scan"):
        raise InvalidOptionError(
            f"Expected method to be 'auto', 'trailer' or 'scan'. Got {method!r} instead."
        )
    with _open(file) as access:
        start = access.start if offset is None else offset
        access.check_start(start)
        return _read_one(access, start, method, _footer_chain(access, start))


def iter_indexes(file: Any, *, offset: int | None = None) -> Iterator[StreamIndex]:
    """The index of every stream from ``offset`` to the end of ``file``
    (objects dumped one after another), as :func:`read_index` with
    ``method="auto"`` finds them; stops at the end of the input."""
    with _open(file) as access:
        position = access.start if offset is None else offset
        access.check_start(position)
        chain = _footer_chain(access, position)
        while position < access.size:
            index = _read_one(access, position, "auto", chain)
            yield index
            position = index.end


def read_manifest(file: Any, *, max_streams: int = 16) -> dict[str, Any] | None:
    """The manifest of the stream at ``file``'s current position (a
    seekable file object, or a bytes-like object holding the stream at its
    start), read from its trailer in two reads; ``None`` when the stream
    has none (version 1), when it is not among the last ``max_streams``
    streams of the file, when the trailer is damaged (the load reports
    that), when the input cannot seek, or when it is not a local file or an
    in-memory buffer (an fsspec file would fetch a whole read-ahead block
    for the footer; loads read such manifests after the stream, as for
    pipes).  Never raises for a bad input."""
    if not _reads_locally(file):
        return None
    try:
        with _open(file) as access:
            chain = _footer_chain(access, access.start, max_streams)
            if access.start not in chain:
                return None
            end, footer = chain[access.start]
            body_offset = end - footer.trailer_size
            body = access.read(body_offset, footer.index_size + footer.manifest_size, "a trailer")
            check_body(body, footer, body_offset)
            return parse_manifest(body[footer.index_size :])
    except (CodecPickleError, OSError, ValueError):
        return None


def _reads_locally(file: Any) -> bool:
    """Whether reading a few bytes at the end of ``file`` costs only those
    bytes: buffers, in-memory files and plain files over a descriptor (not
    ``gzip.open`` and the like, whose end is reached by decompressing
    everything, nor ``SpooledTemporaryFile``, which ``fileno()`` rolls over
    to disk)."""
    if isinstance(file, io.BytesIO | bytes | bytearray | memoryview):
        return True
    return real_fileno(file) is not None


# -- reading at offsets ----------------------------------------------------


class _Access:
    """Exact reads at offsets from a buffer or a seekable file object."""

    def __init__(self, file: Any, owned: bool) -> None:
        self._owned = owned
        self._buffer: memoryview | None = None
        self._file = None
        try:
            self._buffer = memoryview(file).cast("B")
        except TypeError:
            self._file = file
        if self._buffer is not None:
            self.start = 0
            self.size = self._buffer.nbytes
            self._restore = None
            return
        if not callable(getattr(file, "seek", None)) or not _seekable(file):
            raise InvalidOptionError(
                "Expected a path, a bytes-like object or a seekable binary file object. "
                f"Got {type(file).__name__}, which cannot seek: load it instead."
            )
        self.start = file.tell()
        self._restore = self.start
        self.size = file.seek(0, io.SEEK_END)

    def check_start(self, start: int) -> None:
        if start >= self.size:
            if start == self.size:
                raise EmptyInputError(
                    f"no stream at offset {start}: the input ends there"
                )
            raise InvalidOptionError(f"offset {start} is past the input's end ({self.size})")
        if start < 0:
            raise InvalidOptionError(f"Expected a non-negative offset. Got {start} instead.")

    def read(self, offset: int, size: int, what: str) -> bytes:
        """Exactly ``size`` bytes at ``offset``, all inside the input."""
        if offset < 0 or size < 0 or offset + size > self.size:
            raise TruncatedFileError(
                f"{what} at offset {offset} needs {size} bytes, but the input holds "
                f"{max(0, self.size - offset)} from there"
            )
        if self._buffer is not None:
            return self._buffer[offset : offset + size].tobytes()
        assert self._file is not None
        self._file.seek(offset)
        return StreamSource(self._file).read_exact(size, what) if size else b""

    def source_at(self, offset: int) -> StreamSource | MemorySource:
        """A sequential source positioned at ``offset``, counting offsets
        from the start of the input (as messages give them)."""
        source: StreamSource | MemorySource
        if self._buffer is not None:
            source = MemorySource(self._buffer)
        else:
            assert self._file is not None
            self._file.seek(offset)
            source = StreamSource(_ReadAhead(self._file), self.size)
        source.offset = offset
        return source

    def close(self) -> None:
        if self._file is not None:
            if self._owned:
                self._file.close()
            elif self._restore is not None:
                self._file.seek(self._restore)

    def __enter__(self) -> _Access:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _ReadAhead:
    """A seekable file read a few bytes ahead: a record's kind and header,
    read separately by the walk, cost one read of the file (one request
    over HTTP), and the seek past its stored bytes none."""

    def __init__(self, file: Any) -> None:
        self._file = file
        self._ahead = b""

    def read(self, size: int) -> bytes:
        if size > len(self._ahead):
            more = self._file.read(max(size - len(self._ahead), _PEEK))
            self._ahead += more or b""
        data, self._ahead = self._ahead[:size], self._ahead[size:]
        return data

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_CUR:
            offset -= len(self._ahead)
        self._ahead = b""
        return int(self._file.seek(offset, whence))

    def seekable(self) -> bool:
        return True


# Bytes read at a time while scanning: enough for any record header (END v2
# with its checksum, or a raw payload's header with the most padding), so one
# read serves a record's kind and header.
_PEEK = max(
    fmt.END_RECORD_V2.size + fmt.CHECKSUM.size, fmt.RAW_PAYLOAD_HEADER.size + fmt.ALIGNMENT
)


def _seekable(file: Any) -> bool:
    try:
        return bool(file.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def _open(file: Any) -> _Access:
    if isinstance(file, str | os.PathLike):
        return _Access(open(file, "rb"), owned=True)
    return _Access(file, owned=False)


# -- one stream ------------------------------------------------------------


def _read_one(
    access: _Access, start: int, method: Method, chain: dict[int, tuple[int, Footer]]
) -> StreamIndex:
    if method != "scan" and start in chain:
        end, footer = chain[start]
        try:
            return _from_trailer(access, start, end, footer)
        except FileFormatError as exc:
            if method == "trailer":
                raise
            raise _damaged(exc, start) from exc
    if method == "trailer":
        raise CorruptDataError(
            f"no intact version-2 trailer ends the stream at offset {start}: the file ends "
            "with another stream, a version-1 stream or damage; read it with method='scan'"
        )
    index = _scan(access, start)
    if method == "auto" and index.trailer_damage is not None:
        raise CorruptDataError(_damage_message(index.trailer_damage, start))
    return index


def _damage_message(damage: str, start: int) -> str:
    return (
        f"the trailer of the stream at offset {start} is damaged ({damage}); "
        "read_index(..., method='scan') rebuilds the index from the records"
    )


def _damaged(exc: FileFormatError, start: int) -> FileFormatError:
    """``exc`` (same class) restated as damage to the stream's trailer."""
    return type(exc)(_damage_message(str(exc), start))


def _footer_chain(
    access: _Access, floor: int, max_streams: int | None = None
) -> dict[int, tuple[int, Footer]]:
    """Streams found walking back from the end of the input through their
    footers, as {start: (end, footer)}, down to ``floor``.  Stops at the
    first place without an intact footer (a version-1 stream, other data,
    damage): the streams before it are found by scanning instead."""
    chain: dict[int, tuple[int, Footer]] = {}
    end = access.size
    while end - floor >= fmt.FOOTER.size and (max_streams is None or len(chain) < max_streams):
        try:
            footer = parse_footer(
                access.read(end - fmt.FOOTER.size, fmt.FOOTER.size, "a footer"),
                end - fmt.FOOTER.size,
            )
        except FileFormatError:
            break
        start = end - footer.stream_size
        if start < floor:
            break
        chain[start] = (end, footer)
        end = start
    return chain


def _from_trailer(access: _Access, start: int, end: int, footer: Footer) -> StreamIndex:
    """Read 2 of 3: the END record and the trailer body in one read."""
    end_size = fmt.END_RECORD_V2.size + fmt.CHECKSUM.size
    body_size = footer.index_size + footer.manifest_size
    end_offset = end - footer.trailer_size - end_size
    data = access.read(end_offset, end_size + body_size, "the END record and trailer")
    end_fields = _check_end(data[:end_size], end_offset, footer.trailer_size)
    body = data[end_size:]
    check_body(body, footer, end_offset + end_size)
    meta_bytes, records = decode_index(body[: footer.index_size])
    manifest = parse_manifest(body[footer.index_size :])
    meta = _parse_meta(meta_bytes)
    header_size = fmt.HEADER_FIXED.size + len(meta_bytes) + fmt.CHECKSUM.size
    opcodes, payloads, layout_end, units = _layout(
        records, start + header_size, meta, fmt.TRAILER_VERSION
    )
    _check_layout(end_fields, layout_end, end_offset, units, opcodes, payloads)
    return StreamIndex(
        offset=start,
        version=fmt.TRAILER_VERSION,
        meta=meta,
        header_size=header_size,
        opcode_chunks=opcodes,
        payloads=payloads,
        end_offset=end_offset,
        size=end - start,
        manifest=manifest,
        method="trailer",
        trailer_size=footer.trailer_size,
    )


def _check_end(data: bytes, offset: int, trailer_size: int | None) -> tuple[int, int, int]:
    """Check a version-2 END record (and its checksum, seeded with the
    ordinal its own units count implies); return payloads, units, opcode
    bytes."""
    kind, payloads, units, opcode_bytes, announced = fmt.END_RECORD_V2.unpack(
        data[: fmt.END_RECORD_V2.size]
    )
    if kind != fmt.KIND_END or data[1:4] != b"\0\0\0":
        raise CorruptDataError(f"no END record at offset {offset}, where the trailer says it is")
    (expected,) = fmt.CHECKSUM.unpack(data[fmt.END_RECORD_V2.size :])
    if fmt.checksum(data[: fmt.END_RECORD_V2.size], units + 1) != expected:
        raise ChecksumMismatchError(f"the END record at offset {offset} fails its checksum")
    if trailer_size is not None and announced != trailer_size:
        raise CorruptDataError(
            f"the END record at offset {offset} announces a {announced}-byte trailer, but the "
            f"footer describes {trailer_size} bytes"
        )
    return payloads, units, opcode_bytes


def _check_layout(
    end_fields: tuple[int, int, int],
    layout_end: int,
    end_offset: int,
    units: int,
    opcodes: tuple[ChunkInfo, ...],
    payloads: tuple[PayloadInfo, ...],
) -> None:
    if layout_end != end_offset:
        raise CorruptDataError(
            f"the trailer's index lays the records out up to offset {layout_end}, but the END "
            f"record is at offset {end_offset}"
        )
    found = (len(payloads), units, sum(chunk.raw_size for chunk in opcodes))
    if found != end_fields:
        raise CorruptDataError(
            f"the END record at offset {end_offset} counts {end_fields[0]} payloads, "
            f"{end_fields[1]} records and {end_fields[2]} opcode bytes, but the index holds "
            f"{found[0]}, {found[1]} and {found[2]}"
        )


def _layout(
    records: list[Record], position: int, meta: dict[str, Any], version: int
) -> tuple[tuple[ChunkInfo, ...], tuple[PayloadInfo, ...], int, int]:
    """Offsets and checksum ordinals of an index's records laid out from
    ``position`` (the first record), checking every size against the
    format's rules; returns the chunks, payloads, END offset and units."""
    limit = meta["chunk_size"]
    compressed = meta["codec"] != fmt.NO_CODEC
    opcodes: list[ChunkInfo] = []
    payloads: list[PayloadInfo] = []
    ordinal = 1

    def chunk(
        at: int, kind: int, flags: int, raw: int, stored: int, cap: int, element_size: int = 0
    ) -> ChunkInfo:
        nonlocal ordinal
        check_chunk_header(kind, flags, raw, stored, offset=at, limit=cap, version=version,
                           element_size=element_size, compressed=compressed)
        seed = fmt.chunk_seed(version, ordinal, flags, element_size)
        info = ChunkInfo(at, at + fmt.CHUNK_HEADER.size, raw, stored, flags, ordinal, seed)
        ordinal += 1
        return info

    for record in records:
        tag = record[0]
        if tag == "O":
            info = chunk(position, fmt.KIND_OPCODES, record[1], record[2], record[3], limit)
            opcodes.append(info)
            position = info.end
        elif tag == "P":
            raw_total, chunk_list, element_size = record[1], record[2], record[3]
            start = position
            position += fmt.PAYLOAD_HEADER.size
            chunks = []
            filled = 0
            for flags, raw, stored in chunk_list:
                info = chunk(
                    position, fmt.KIND_DATA, flags, raw, stored, min(limit, raw_total - filled),
                    element_size,
                )
                chunks.append(info)
                filled += raw
                position = info.end
            if filled != raw_total:
                raise CorruptDataError(
                    f"payload at offset {start} declares {raw_total} bytes but its chunks hold "
                    f"{filled}"
                )
            payloads.append(
                PayloadInfo(len(payloads), "payload", start, raw_total, position - start,
                            tuple(chunks), element_size=element_size)
            )
        else:
            pad, size = record[1], record[2]
            if pad >= fmt.ALIGNMENT:
                raise CorruptDataError(
                    f"raw payload at offset {position} declares {pad} padding bytes"
                )
            data_offset = position + fmt.RAW_PAYLOAD_HEADER.size + pad
            record_size = fmt.raw_payload_record_size(pad, size)
            payloads.append(
                PayloadInfo(len(payloads), "raw", position, size, record_size, (),
                            data_offset, ordinal)
            )
            ordinal += 1
            position += record_size
    return tuple(opcodes), tuple(payloads), position, ordinal - 1


# -- scanning --------------------------------------------------------------


def _scan(access: _Access, start: int) -> StreamIndex:
    """Walk the records from the header to END (``_records.walk_stream``,
    stepping over stored bytes: two small reads per record), then read the
    trailer, reporting rather than raising its damage."""
    source = access.source_at(start)
    header = read_stream_header(source)
    version, meta = header.version, header.meta
    header_size = source.offset - start
    records: list[Record] = []
    chunks: list[tuple[int, int, int]] = []  # of the payload being read
    end_record = None
    for record in walk_stream(source, header, skip_stored=True, read_trailer=False):
        if record.kind == fmt.KIND_OPCODES:
            records.append(("O", record.flags, record.raw_size, record.stored_size))
        elif record.kind == fmt.KIND_DATA:
            chunks.append((record.flags, record.raw_size, record.stored_size))
        elif record.kind == fmt.KIND_PAYLOAD:
            chunks = []
            records.append(("P", record.raw_size, chunks, record.element_size))
        elif record.kind == fmt.KIND_RAW_PAYLOAD:
            pad = record.data_offset - record.offset - fmt.RAW_PAYLOAD_HEADER.size
            records.append(("R", pad, record.raw_size))
        else:
            end_record = record
    assert end_record is not None  # walk_stream ends with END or raises
    position = end_record.offset
    # The walk checked every size, the END record's checksum and counts;
    # the index is laid out as a trailer's would be, by the same code.
    opcodes, payloads, layout_end, units = _layout(records, start + header_size, meta, version)
    layout = fmt.end_record_for(version)
    fields = layout.unpack(end_record.stored)
    _check_layout(tuple(fields[1:4]), layout_end, position, units, opcodes, payloads)
    end_size = layout.size + fmt.CHECKSUM.size
    size = position + end_size - start
    manifest = None
    damage = None
    trailer_size = 0
    if version >= fmt.TRAILER_VERSION:
        announced = fields[4]
        after_end = position + end_size
        try:
            check_trailer_size(announced, units, access.size - after_end, after_end)
            data = access.read(after_end, announced, "the trailer")
            manifest = check_trailer(data, size + announced, after_end).manifest
            trailer_size = announced
        except FileFormatError as exc:
            damage = str(exc)
        # Where the next stream starts, even when this trailer is damaged.
        size += min(announced, access.size - after_end)
    return StreamIndex(
        offset=start,
        version=version,
        meta=meta,
        header_size=header_size,
        opcode_chunks=opcodes,
        payloads=payloads,
        end_offset=position,
        size=size,
        manifest=manifest,
        method="scan",
        trailer_damage=damage,
        trailer_size=trailer_size,
    )
