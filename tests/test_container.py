"""The container format, checked by an independent walker written from
docs/format.md rather than by the library's own reader."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass

import numpy as np
import pytest
import xxhash

import codecpickle

MAGIC = b"\x89CPK\r\n\x1a\n"


@dataclass
class Record:
    kind: int
    offset: int  # of the record's first byte
    end: int  # one past its last byte
    data_offset: int = 0
    raw_size: int = 0
    stored_raw: bool = False
    filter_id: int = 0  # DATA chunks: bits 1-3 of the flags (version 2)
    element_size: int = 0  # PAYLOADs: the u16 at offset 2 (version 2)
    chunks: list[Record] | None = None  # PAYLOADs: their DATA chunks


def walk(data: bytes) -> tuple[dict, list[Record]]:
    """Parse a stream per docs/format.md, checking every checksum; the
    trailer's index must describe the same records."""
    assert data[:8] == MAGIC
    version, flags, meta_size = struct.unpack_from("<HHI", data, 8)
    assert (version, flags) == (2, 0)
    meta = json.loads(data[16 : 16 + meta_size])
    pos = 16 + meta_size
    (header_sum,) = struct.unpack_from("<Q", data, pos)
    assert header_sum == xxhash.xxh3_64_intdigest(data[:pos], seed=0)
    pos += 8
    ordinal = 1
    records: list[Record] = []

    def chunk(kind_expected: int, element_size: int = 0) -> Record:
        nonlocal pos, ordinal
        kind, cflags, raw, stored = struct.unpack_from("<BBII", data, pos)
        assert kind == kind_expected
        assert cflags & 0xF0 == 0
        filter_id = (cflags >> 1) & 0x07
        if filter_id:
            # Filters: version 2, DATA chunks that went through the codec,
            # 1 byte shuffle (element size >= 2), 2 delta (1, 2, 4 or 8).
            assert version == 2
            assert kind == 0x04
            assert not cflags & 1
            if filter_id == 1:
                assert element_size >= 2
            else:
                assert filter_id == 2
                assert element_size in (1, 2, 4, 8)
        record = Record(kind, pos, 0, pos + 10, raw, bool(cflags & 1), filter_id)
        body = data[pos + 10 : pos + 10 + stored]
        (digest,) = struct.unpack_from("<Q", data, pos + 10 + stored)
        # Version 2 chunks: flags and the payload's element size join the seed.
        seed = ordinal if version == 1 else ordinal + (cflags << 32) + (element_size << 40)
        assert digest == xxhash.xxh3_64_intdigest(body, seed=seed)
        assert stored <= raw
        ordinal += 1
        pos += 10 + stored + 8
        record.end = pos
        return record

    while True:
        kind = data[pos]
        if kind == 0x01:
            records.append(chunk(0x01))
        elif kind == 0x02:
            _, reserved, element_size, total = struct.unpack_from("<BBHQ", data, pos)
            assert reserved == 0
            assert version == 2 or element_size == 0
            start = pos
            pos += 12
            chunks = []
            while sum(c.raw_size for c in chunks) < total:
                chunks.append(chunk(0x04, element_size))
            assert sum(c.raw_size for c in chunks) == total
            records.append(Record(0x02, start, pos, raw_size=total, element_size=element_size,
                                  chunks=chunks))
        elif kind == 0x03:
            _, pad, _, size = struct.unpack_from("<BBHQ", data, pos)
            start = pos
            data_offset = pos + 12 + pad
            body = data[data_offset : data_offset + size]
            (digest,) = struct.unpack_from("<Q", data, data_offset + size)
            assert digest == xxhash.xxh3_64_intdigest(body, seed=ordinal)
            ordinal += 1
            pos = data_offset + size + 8
            records.append(Record(0x03, start, pos, data_offset, size, True))
        elif kind == 0x00:
            end = data[pos : pos + 28]
            _, payloads, units, opcode_bytes, trailer_size = struct.unpack("<B3xIIQQ", end)
            (digest,) = struct.unpack_from("<Q", data, pos + 28)
            assert digest == xxhash.xxh3_64_intdigest(end, seed=ordinal)
            assert units == ordinal - 1
            assert payloads == sum(r.kind in (0x02, 0x03) for r in records)
            assert opcode_bytes == sum(r.raw_size for r in records if r.kind == 0x01)
            records.append(Record(0x00, pos, pos + 36))
            assert pos + 36 + trailer_size == len(data)
            check_trailer(data, pos + 36, records, data[16 : 16 + meta_size])
            return meta, records
        else:
            raise AssertionError(f"unknown kind {kind} at {pos}")


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def check_trailer(data: bytes, start: int, records: list[Record], meta: bytes) -> None:
    """The trailer after END (docs/format.md): footer, checksums, and an
    index that lists exactly the records walked."""
    footer = data[-40:]
    stream_size, index_size, manifest_size, body_sum, footer_sum = struct.unpack_from(
        "<QIIQQ", footer
    )
    assert footer[32:] == b"\x89CPI\r\n\x1a\n"
    assert footer_sum == xxhash.xxh3_64_intdigest(footer[:24], seed=0)
    assert stream_size == len(data)
    body = data[start:-40]
    assert len(body) == index_size + manifest_size
    assert body_sum == xxhash.xxh3_64_intdigest(body, seed=stream_size)
    manifest = json.loads(body[index_size:])
    assert isinstance(manifest, dict)
    index = body[:index_size]
    meta_size, pos = _varint(index, 0)
    assert index[pos : pos + meta_size] == meta
    count, pos = _varint(index, pos + meta_size)
    top = [r for r in records if r.kind in (0x01, 0x02, 0x03)]
    assert count == len(top)
    for record in top:
        assert index[pos] == record.kind
        pos += 1
        if record.kind == 0x01:
            pos += 1  # flags
            raw, pos = _varint(index, pos)
            stored, pos = _varint(index, pos)
            assert raw == record.raw_size
            assert record.end - record.offset == 10 + stored + 8
        elif record.kind == 0x02:
            raw, pos = _varint(index, pos)
            element_size, pos = _varint(index, pos)
            chunks, pos = _varint(index, pos)
            assert raw == record.raw_size
            assert element_size == record.element_size
            size = 12
            for _ in range(chunks):
                pos += 1
                _, pos = _varint(index, pos)
                stored, pos = _varint(index, pos)
                size += 10 + stored + 8
            assert size == record.end - record.offset
        else:
            pad = index[pos]
            size, pos = _varint(index, pos + 1)
            assert record.data_offset == record.offset + 12 + pad
            assert size == record.raw_size
    assert pos == index_size


OBJ = {
    "a": np.arange(300_000, dtype=np.float64),
    "b": np.arange(1000, dtype=np.int8),
    "words": ["x"] * 50_000,
}


@pytest.mark.parametrize("compress", [None, "zstd", "lz4", "zlib", "gzip", "bz2", "lzma"])
def test_streams_follow_the_documented_layout(compress):
    data = codecpickle.dumps(OBJ, compress=compress, chunk_size=1 << 16)
    meta, records = walk(data)
    assert meta["codec"] == (compress or "none")
    assert meta["chunk_size"] == 1 << 16
    kinds = {r.kind for r in records}
    assert 0x01 in kinds
    assert (0x03 if compress is None else 0x02) in kinds


def test_raw_payload_data_is_64_byte_aligned_in_the_file():
    data = codecpickle.dumps([np.arange(n, dtype=np.uint8) for n in (1, 63, 64, 1000, 4097)])
    _, records = walk(data)
    raws = [r for r in records if r.kind == 0x03]
    assert len(raws) == 5
    assert all(r.data_offset % 64 == 0 for r in raws)


def test_magic_differs_from_every_common_format():
    for other in (b"\x80", b"\x1f\x8b", b"\x28\xb5\x2f\xfd", b"\x04\x22\x4d\x18", b"BZh",
                  b"\xfd7zXZ", b"\x78", b"PK", b"\x93NUMPY", b"\x89PNG"):
        assert not MAGIC.startswith(other)
    assert b"\r\n\x1a\n" in MAGIC


def test_incompressible_chunks_are_stored_raw():
    noise = np.random.default_rng(0).integers(0, 256, 1 << 20, dtype=np.uint8)
    data = codecpickle.dumps(noise, compress="zstd", chunk_size=1 << 16)
    _, records = walk(data)
    assert [r for r in records if r.kind == 0x02], "the array went through the codec"
    assert len(data) < noise.nbytes + 4096
    assert codecpickle.loads(data).tobytes() == noise.tobytes()


def test_reordered_records_fail_their_checksum():
    data = codecpickle.dumps([f"word {i}" for i in range(100_000)], compress="zstd",
                             chunk_size=1 << 14)
    _, records = walk(data)
    chunks = [r for r in records if r.kind == 0x01]
    assert len(chunks) >= 3
    first, second = chunks[0], chunks[1]
    swapped = (
        data[: first.offset]
        + data[second.offset : second.end]
        + data[first.offset : first.end]
        + data[second.end :]
    )
    with pytest.raises(codecpickle.ChecksumMismatchError, match="reordered"):
        codecpickle.loads(swapped)
    duplicated = data[: second.end] + data[second.offset : second.end] + data[second.end :]
    with pytest.raises(codecpickle.FileFormatError):
        codecpickle.loads(duplicated)


def test_dropped_record_is_detected():
    data = codecpickle.dumps([np.arange(10_000), np.arange(20_000)])
    _, records = walk(data)
    payload = next(r for r in records if r.kind == 0x03)
    with pytest.raises(codecpickle.FileFormatError):
        codecpickle.loads(data[: payload.offset] + data[payload.end :])


def test_header_records_the_codec_name_and_parameters():
    meta, _ = walk(codecpickle.dumps(1, compress=("zstd", 9)))
    assert meta["codec"] == "zstd"
    assert meta["params"] == {"level": 9}
    assert "provider" not in meta  # built-in codecs need no distribution hint


def test_writes_are_strictly_sequential():
    class AppendOnly:
        def __init__(self):
            self.parts = []

        def write(self, chunk):
            self.parts.append(bytes(chunk))
            return len(self.parts[-1])

        def seekable(self):
            return False

        def __getattr__(self, name):
            if name in ("seek", "tell", "read", "truncate"):
                raise AssertionError(f"the writer used .{name}()")
            raise AttributeError(name)

    sink = AppendOnly()
    codecpickle.dump(OBJ, sink, compress="lz4")
    walk(b"".join(sink.parts))
