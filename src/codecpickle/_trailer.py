"""The version-2 trailer: index and manifest bytes, and the footer.

A trailer follows a version-2 stream's END record::

    index bytes | manifest bytes (UTF-8 JSON) | footer (40 bytes, last)

The **index** lists the stream's records in order with their sizes only:
their offsets follow from the sizes (records are contiguous), so the index
stays small (a few bytes per record) and a reader that recomputes the
offsets checks them for free: they must end exactly at the END record.
Encoding (``varint`` is unsigned LEB128)::

    varint meta_size, meta bytes        the header's metadata JSON, verbatim
    varint record_count
    record_count times one of:
      0x01 flags:u8 raw:varint stored:varint          OPCODES chunk
      0x02 raw:varint element_size:varint count:varint   PAYLOAD, then ``count``
           (flags:u8 raw:varint stored:varint)...     DATA chunks
      0x03 pad:u8 size:varint                         RAW_PAYLOAD

This module only turns records into bytes and back, checking that the bytes
are well formed; :mod:`codecpickle._index` lays the records out and checks
them against the stream.  See ``docs/format.md``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from . import _format as fmt
from .errors import ChecksumMismatchError, CorruptDataError, TruncatedFileError

# One record of an index, as the writer saw it and as a reader decodes it.
# ("O", flags, raw, stored) / ("P", raw, [(flags, raw, stored), ...], element_size) /
# ("R", pad, size).
Record = tuple[Any, ...]

_MAX_VARINT_BYTES = 10  # a u64


class IndexBuilder:
    """Collects the records of the stream being written (in stream order)
    and encodes them as index bytes."""

    def __init__(self) -> None:
        self._out = bytearray()
        self._count = 0
        self._payload_head: int | None = None
        self._payload_chunks = 0
        self._payload_body = bytearray()

    def opcode_chunk(self, flags: int, raw: int, stored: int) -> None:
        self._close_payload()
        self._count += 1
        out = self._out
        out.append(fmt.KIND_OPCODES)
        out.append(flags)
        _put(out, raw)
        _put(out, stored)

    def start_payload(self, raw: int, element_size: int = 0) -> None:
        self._close_payload()
        self._count += 1
        self._out.append(fmt.KIND_PAYLOAD)
        _put(self._out, raw)
        # Readers need it to check the chunks' checksums and undo filters.
        _put(self._out, element_size)
        self._payload_head = len(self._out)
        self._payload_chunks = 0

    def data_chunk(self, flags: int, raw: int, stored: int) -> None:
        body = self._payload_body
        body.append(flags)
        _put(body, raw)
        _put(body, stored)
        self._payload_chunks += 1

    def raw_payload(self, pad: int, size: int) -> None:
        self._close_payload()
        self._count += 1
        out = self._out
        out.append(fmt.KIND_RAW_PAYLOAD)
        out.append(pad)
        _put(out, size)

    def _close_payload(self) -> None:
        if self._payload_head is None:
            return
        _put(self._out, self._payload_chunks)
        self._out += self._payload_body
        self._payload_body = bytearray()
        self._payload_head = None

    def encode(self, meta_bytes: bytes) -> bytes:
        self._close_payload()
        head = bytearray()
        _put(head, len(meta_bytes))
        head += meta_bytes
        _put(head, self._count)
        return bytes(head + self._out)


def encode_trailer(index: bytes, manifest: dict[str, Any], position: int) -> bytes:
    """Index, manifest and footer for a stream whose END record ends
    ``position`` bytes after the stream's first byte."""
    manifest_bytes = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    if len(manifest_bytes) > fmt.MAX_MANIFEST_SIZE:
        # Never expected (a few hundred packages at most): drop the details
        # rather than fail the dump.
        manifest_bytes = b"{}"
    body = index + manifest_bytes
    stream_size = position + len(body) + fmt.FOOTER.size
    checked = fmt.FOOTER.pack(
        stream_size, len(index), len(manifest_bytes), fmt.checksum(body, stream_size), 0, b""
    )[: fmt.FOOTER_CHECKED]
    footer = checked + fmt.CHECKSUM.pack(fmt.checksum(checked, 0)) + fmt.FOOTER_MAGIC
    return body + footer


@dataclass(frozen=True)
class Footer:
    """A checked footer: where the trailer's parts are."""

    stream_size: int
    index_size: int
    manifest_size: int
    body_checksum: int

    @property
    def trailer_size(self) -> int:
        """Index, manifest and footer bytes."""
        return self.index_size + self.manifest_size + fmt.FOOTER.size


def parse_footer(data: bytes, offset: int) -> Footer:
    """Check a footer (its 40 bytes, ``offset`` for messages): magic, then
    checksum, then that the sizes it declares fit in the stream it ends."""
    if len(data) != fmt.FOOTER.size:
        raise CorruptDataError(f"footer at offset {offset} is {len(data)} bytes, expected 40")
    stream_size, index_size, manifest_size, body_sum, footer_sum, magic = fmt.FOOTER.unpack(data)
    if magic != fmt.FOOTER_MAGIC:
        raise CorruptDataError(
            f"no trailer footer at offset {offset}: its last 8 bytes are {magic!r}, expected "
            f"{fmt.FOOTER_MAGIC!r}"
        )
    if footer_sum != fmt.checksum(data[: fmt.FOOTER_CHECKED], 0):
        raise ChecksumMismatchError(
            f"the trailer footer at offset {offset} fails its checksum: the file is damaged"
        )
    footer = Footer(stream_size, index_size, manifest_size, body_sum)
    if manifest_size > fmt.MAX_MANIFEST_SIZE:
        raise CorruptDataError(
            f"the trailer footer at offset {offset} declares a {manifest_size}-byte manifest, "
            f"over the limit of {fmt.MAX_MANIFEST_SIZE}"
        )
    # The smallest stream: header with 1 metadata byte, an END record.
    smallest = fmt.HEADER_FIXED.size + 1 + fmt.CHECKSUM.size + fmt.END_RECORD_V2.size
    if stream_size < footer.trailer_size + smallest + fmt.CHECKSUM.size:
        raise CorruptDataError(
            f"the trailer footer at offset {offset} declares a {stream_size}-byte stream, too "
            f"small to hold its {footer.trailer_size}-byte trailer"
        )
    return footer


def check_body(body: bytes, footer: Footer, offset: int) -> None:
    """Check the index + manifest bytes against the footer's checksum."""
    if fmt.checksum(body, footer.stream_size) != footer.body_checksum:
        raise ChecksumMismatchError(
            f"the trailer (index and manifest, {len(body)} bytes at offset {offset}) fails its "
            "checksum: the file is damaged"
        )


def parse_manifest(data: bytes) -> dict[str, Any]:
    """The manifest's JSON object (checked to be one)."""
    try:
        manifest = json.loads(data)
    except ValueError as exc:
        raise CorruptDataError(f"the trailer's manifest is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict):
        raise CorruptDataError("the trailer's manifest is not a JSON object")
    return manifest


def decode_index(data: bytes) -> tuple[bytes, list[Record]]:
    """The header metadata bytes and the records of an index; raises
    :class:`CorruptDataError` on malformed bytes (sizes are not checked
    here, only that every count fits in the bytes given)."""
    reader = _Bytes(data)
    meta = reader.take(reader.varint())
    count = reader.varint()
    # Every record takes at least 3 bytes: no count can outgrow the input.
    reader.check_count(count, 3, "records")
    records: list[Record] = []
    for _ in range(count):
        kind = reader.byte()
        if kind == fmt.KIND_OPCODES:
            records.append(("O", reader.byte(), reader.varint(), reader.varint()))
        elif kind == fmt.KIND_PAYLOAD:
            raw = reader.varint()
            element_size = reader.varint()
            if element_size > fmt.MAX_ELEMENT_SIZE:
                raise CorruptDataError(
                    f"the trailer's index declares an element size of {element_size} bytes, "
                    f"over {fmt.MAX_ELEMENT_SIZE}"
                )
            chunks = reader.varint()
            reader.check_count(chunks, 3, "payload chunks")
            table = [(reader.byte(), reader.varint(), reader.varint()) for _ in range(chunks)]
            records.append(("P", raw, table, element_size))
        elif kind == fmt.KIND_RAW_PAYLOAD:
            records.append(("R", reader.byte(), reader.varint()))
        else:
            raise CorruptDataError(
                f"the trailer's index holds an unknown record kind {kind:#04x} at index byte "
                f"{reader.pos - 1}"
            )
    if reader.pos != len(data):
        raise CorruptDataError(
            f"the trailer's index has {len(data) - reader.pos} bytes after its last record"
        )
    return meta, records


def _put(out: bytearray, value: int) -> None:
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


class _Bytes:
    """Bounds-checked reads from index bytes."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            self._short()
        value = self.data[self.pos]
        self.pos += 1
        return value

    def varint(self) -> int:
        data = self.data
        value = shift = 0
        for _ in range(_MAX_VARINT_BYTES):
            if self.pos >= len(data):
                self._short()
            byte = data[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                if value >= 1 << 64:
                    break
                return value
            shift += 7
        raise CorruptDataError(f"the trailer's index has a malformed number at byte {self.pos}")

    def take(self, size: int) -> bytes:
        if size > len(self.data) - self.pos:
            self._short()
        start = self.pos
        self.pos += size
        return bytes(self.data[start : self.pos])

    def check_count(self, count: int, min_bytes: int, what: str) -> None:
        if count * min_bytes > len(self.data) - self.pos:
            raise CorruptDataError(
                f"the trailer's index declares {count} {what}, more than its remaining "
                f"{len(self.data) - self.pos} bytes can hold"
            )

    def _short(self) -> None:
        raise CorruptDataError(
            f"the trailer's index ends early at byte {self.pos} of {len(self.data)}"
        )


def read_after_end(source: Any, trailer_size: int, units: int, stream_start: int) -> Trailer:
    """Read and check the trailer that follows an END record from a
    sequential source (``source.offset`` just past the END checksum;
    ``stream_start`` is the source offset of the stream's first byte)."""
    offset = source.offset
    check_trailer_size(trailer_size, units, source.remaining(), offset)
    data = source.read_exact(trailer_size, "the trailer")
    return check_trailer(data, offset - stream_start + trailer_size, offset)


def check_trailer_size(trailer_size: int, units: int, remaining: int | None, offset: int) -> None:
    """Refuse a trailer size announced by an END record before reading it.

    The END record's counts are checked against the stream before this, so
    the bound holds: a pipe never makes a reader buffer more than a trailer
    of that many records can take.
    """
    bound = fmt.max_trailer_size(units)
    if not fmt.FOOTER.size <= trailer_size <= bound:
        raise CorruptDataError(
            f"the END record before offset {offset} announces a {trailer_size}-byte trailer; "
            f"expected {fmt.FOOTER.size}..{bound} for a stream of {units} records"
        )
    if remaining is not None and trailer_size > remaining:
        raise TruncatedFileError(
            f"the trailer at offset {offset} declares {trailer_size} bytes but the input has "
            f"only {remaining} left"
        )


def check_trailer(data: bytes, stream_size: int, offset: int) -> Trailer:
    """Check a whole trailer (``data``, at ``offset``, ending a stream of
    ``stream_size`` bytes): footer, sizes, checksum, manifest."""
    trailer_size = len(data)
    footer_offset = offset + trailer_size - fmt.FOOTER.size
    footer = parse_footer(data[-fmt.FOOTER.size :], footer_offset)
    if footer.trailer_size != trailer_size:
        raise CorruptDataError(
            f"the trailer footer at offset {footer_offset} sums to a {footer.trailer_size}-byte "
            f"trailer, but the END record announced {trailer_size} bytes"
        )
    if footer.stream_size != stream_size:
        raise CorruptDataError(
            f"the trailer footer at offset {footer_offset} declares a {footer.stream_size}-byte "
            f"stream, but the stream is {stream_size} bytes long"
        )
    body = data[: -fmt.FOOTER.size]
    check_body(body, footer, offset)
    manifest = parse_manifest(body[footer.index_size :])
    return Trailer(footer, body[: footer.index_size], manifest)


@dataclass(frozen=True)
class Trailer:
    """A checked trailer: its footer, index bytes and manifest."""

    footer: Footer
    index: bytes
    manifest: dict[str, Any]
