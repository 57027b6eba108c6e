"""Byte layout of the codecpickle container, format versions 1 and 2.

This module holds every constant and ``struct`` layout of the format, and
nothing else, so that ``docs/format.md`` can be checked against one place.
The writer (``_writer.py``) and the reader (``_reader.py``) both build on it.

A stream is a header followed by records; every multi-byte integer is
little-endian.  Checksums are xxh3-64 of the bytes as stored, seeded with the
ordinal of the checksummed unit in the stream (0, 1, 2, ...) so that
reordered or duplicated records fail their checksum too.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import xxhash

# PNG-style: a high-bit first byte (not ASCII, not a pickle's 0x80), the
# format's initials, then CR LF, SUB, LF so that text-mode mangling
# (newline translation, a stray ``type`` on Windows) breaks the magic.
MAGIC = b"\x89CPK\r\n\x1a\n"
VERSION = 2
SUPPORTED_VERSIONS = frozenset({1, 2})
# The first version whose END record announces a trailer (index, manifest,
# footer) after it.
TRAILER_VERSION = 2

# magic, version, flags (reserved, must be 0), length of the JSON metadata.
HEADER_FIXED = struct.Struct("<8sHHI")
MAX_META_SIZE = 1 << 16

# Codec name recorded for uncompressed streams.
NO_CODEC = "none"

# Record kinds: the first byte of every record.
KIND_END = 0x00
KIND_OPCODES = 0x01
KIND_PAYLOAD = 0x02
KIND_RAW_PAYLOAD = 0x03
KIND_DATA = 0x04

# Chunk: kind (OPCODES or DATA), flags, raw size, stored size; then the
# stored bytes, then their checksum.
CHUNK_HEADER = struct.Struct("<BBII")
FLAG_STORED_RAW = 0x01
CHUNK_FLAGS = FLAG_STORED_RAW
# Version 2: bits 1-3 of a DATA chunk's flags hold the id of the filter its
# raw bytes went through before the codec (``_filters.py``); 0 is none.
FILTER_SHIFT = 1
FILTER_MASK = 0x07 << FILTER_SHIFT
FILTERS_SINCE_VERSION = 2

# Payload through the codec: kind, reserved byte, element size u16 (version
# 2; 0 when not told; reserved and 0 in version 1), total raw size; then
# DATA chunks whose raw sizes add up to the total.
PAYLOAD_HEADER = struct.Struct("<BBHQ")
MAX_ELEMENT_SIZE = 0xFFFF

# Payload stored raw: kind, pad length, reserved u16, size; then ``pad``
# zero bytes so the data starts 64-byte aligned in the file, the data, and
# its checksum.
RAW_PAYLOAD_HEADER = struct.Struct("<BBHQ")
ALIGNMENT = 64

# End of stream: kind, three reserved bytes, number of payloads, number of
# checksummed units before it, total raw opcode bytes; then a checksum of
# those 20 bytes.
END_RECORD = struct.Struct("<B3xIIQ")
# Version 2 adds the size of the trailer that follows the END checksum, so
# a sequential reader can read (or skip) exactly that many bytes.
END_RECORD_V2 = struct.Struct("<B3xIIQQ")

# Version 2 trailer: index bytes, manifest bytes (JSON), then this footer,
# last in the stream: stream size (first header byte to last footer byte),
# index size, manifest size, checksum of index + manifest (seeded with the
# stream size), checksum of the first 24 footer bytes, magic.
FOOTER = struct.Struct("<QIIQQ8s")
FOOTER_MAGIC = b"\x89CPI\r\n\x1a\n"
# Bytes of the footer covered by its own checksum.
FOOTER_CHECKED = 24
MAX_MANIFEST_SIZE = 1 << 24
# Index bytes one record may take at most (kind, flags, two 10-byte varints);
# with the header metadata, this bounds a trailer by the END record's counts.
MAX_INDEX_BYTES_PER_UNIT = 24

CHECKSUM = struct.Struct("<Q")

# Chunks are bounded so a reader can size its buffers from the header.
MIN_CHUNK_SIZE = 1 << 12
MAX_CHUNK_SIZE = 1 << 30


def checksum(data: Any, ordinal: int) -> int:
    """xxh3-64 of ``data`` seeded with the unit's ordinal in the stream."""
    return xxhash.xxh3_64_intdigest(data, seed=ordinal)


def chunk_seed(version: int, ordinal: int, flags: int, element_size: int) -> int:
    """The checksum seed of a chunk: its ordinal, and from version 2 also its
    flags and its payload's element size (0 for opcode chunks), which decide
    how its bytes are unfiltered, so damage to them is caught too."""
    if version < FILTERS_SINCE_VERSION:
        return ordinal
    return ordinal + (flags << 32) + (element_size << 40)


def filter_bits_valid(kind: int, flags: int) -> bool:
    """Whether a chunk's filter bits may be set at all: on DATA chunks that
    went through the codec, with a defined filter id (1 shuffle, 2 delta).
    Whether the id suits the payload's element size is checked by readers
    that know it."""
    filter_id = (flags & FILTER_MASK) >> FILTER_SHIFT
    return kind == KIND_DATA and not flags & FLAG_STORED_RAW and filter_id in (1, 2)


def new_hasher(ordinal: int) -> xxhash.xxh3_64:
    """Incremental form of :func:`checksum` for data written in pieces."""
    return xxhash.xxh3_64(seed=ordinal)


def padding_for(position: int) -> int:
    """Zero bytes needed after a raw-payload header at ``position`` so the
    payload data that follows it starts on an :data:`ALIGNMENT` boundary."""
    return -(position + RAW_PAYLOAD_HEADER.size) % ALIGNMENT


def end_record_for(version: int) -> struct.Struct:
    """The END record layout of a format version."""
    return END_RECORD if version < TRAILER_VERSION else END_RECORD_V2


def chunk_record_size(flags: int, stored_size: int) -> int:
    """Bytes a chunk record takes in the stream: header, stored bytes,
    checksum (``flags`` is there for chunk layouts that depend on it)."""
    return CHUNK_HEADER.size + stored_size + CHECKSUM.size


def raw_payload_record_size(pad: int, size: int) -> int:
    """Bytes a RAW_PAYLOAD record takes: header, padding, data, checksum."""
    return RAW_PAYLOAD_HEADER.size + pad + size + CHECKSUM.size


def max_trailer_size(units: int) -> int:
    """The largest trailer a valid stream with ``units`` checksummed records
    can carry; readers refuse larger ones before reading them."""
    index = 32 + MAX_META_SIZE + MAX_INDEX_BYTES_PER_UNIT * (units + 1)
    return index + MAX_MANIFEST_SIZE + FOOTER.size


def encode_header(meta: dict[str, Any]) -> bytes:
    """The complete stream header for ``meta`` (codec name and parameters,
    provider, chunk size), checksum included."""
    body = json.dumps(meta, sort_keys=True, separators=(",", ":")).encode()
    if len(body) > MAX_META_SIZE:
        raise ValueError(f"header metadata is {len(body)} bytes, over {MAX_META_SIZE}")
    head = HEADER_FIXED.pack(MAGIC, VERSION, 0, len(body)) + body
    return head + CHECKSUM.pack(checksum(head, 0))
