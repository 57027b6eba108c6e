"""Reading a file's index: from the version-2 trailer, or by scanning."""

from __future__ import annotations

import io
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import codecpickle
from codecpickle import _filters
from codecpickle import _format as fmt
from codecpickle._index import iter_indexes, read_index
from codecpickle.errors import (
    ChecksumMismatchError,
    CorruptDataError,
    EmptyInputError,
    FileFormatError,
    InvalidOptionError,
)

GOLDEN_V1 = Path(__file__).parent / "data" / "v1"

OBJ = {
    "big": np.arange(300_000, dtype=np.float64),
    "fortran": np.asfortranarray(np.arange(200_000, dtype=np.int32).reshape(400, 500)),
    "small": np.arange(10),
    "words": ["x"] * 20_000,
}


class CountingFile(io.RawIOBase):
    """A seekable file that counts its reads and the bytes they return."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0
        self.reads = 0
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: len(self._data)}[whence]
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer: Any) -> int:
        self.reads += 1
        piece = self._data[self._pos : self._pos + len(buffer)]
        buffer[: len(piece)] = piece
        self._pos += len(piece)
        self.bytes_read += len(piece)
        return len(piece)


@pytest.mark.parametrize("compress", [None, "zstd", "lz4", "zlib"])
def test_trailer_and_scan_give_the_same_index(compress):
    data = codecpickle.dumps(OBJ, compress=compress, chunk_size=1 << 16)
    index = read_index(data)
    scanned = read_index(data, method="scan")
    assert index.method == "trailer"
    assert scanned.method == "scan"
    for field in ("opcode_chunks", "payloads", "meta", "header_size", "end_offset", "size",
                  "manifest", "version", "trailer_size"):
        assert getattr(index, field) == getattr(scanned, field), field
    assert index.size == len(data)
    assert index.codec == (compress or "none")
    assert index.opcode_bytes == sum(c.raw_size for c in index.opcode_chunks)


@pytest.mark.parametrize("compress", [None, "zstd"])
def test_payload_table_points_at_the_arrays_bytes(compress):
    data = codecpickle.dumps(OBJ, compress=compress, chunk_size=1 << 16)
    index = read_index(data)
    big = OBJ["big"]
    payload = next(p for p in index.payloads if p.raw_size == big.nbytes)
    codec = None if compress is None else codecpickle.get_codec(compress)()
    if compress is None:
        assert payload.kind == "raw"
        assert payload.data_offset % 64 == 0
        raw = data[payload.data_offset : payload.data_offset + payload.raw_size]
    else:
        assert payload.kind == "payload"
        assert len(payload.chunks) > 1
        pieces = []
        for chunk in payload.chunks:
            stored = data[chunk.data_offset : chunk.data_offset + chunk.stored_size]
            assert fmt.checksum(stored, chunk.seed) == fmt.CHECKSUM.unpack_from(
                data, chunk.data_offset + chunk.stored_size
            )[0]
            if chunk.stored_raw:
                pieces.append(stored)
            else:
                out = bytearray(chunk.raw_size)
                codec.decode_into(memoryview(stored), memoryview(out))
                filter_id = (chunk.flags & fmt.FILTER_MASK) >> fmt.FILTER_SHIFT
                if filter_id:
                    # The bytes went through a filter before the codec.
                    filtered, out = out, bytearray(chunk.raw_size)
                    _filters.decode(filter_id, memoryview(filtered), memoryview(out),
                                    payload.element_size)
                pieces.append(bytes(out))
        raw = b"".join(pieces)
    assert raw == big.tobytes()


def test_three_reads_find_a_payload():
    data = codecpickle.dumps(OBJ, compress="zstd", chunk_size=1 << 16)
    file = CountingFile(data)
    index = read_index(file)
    # The footer, then END + index + manifest: the third read is the payload's.
    assert file.reads == 2
    assert file.bytes_read < 2000
    assert index.payloads


def test_the_trailer_stays_small_for_many_arrays():
    arrays = [np.full(4, i, dtype=np.int64) for i in range(10_000)]
    data = codecpickle.dumps(arrays)  # uncompressed: every array is a payload
    index = read_index(data)
    assert len(index.payloads) == 10_000
    assert index.trailer_size < 10_000 * 6


def test_file_position_is_restored_and_offsets_are_absolute():
    buffer = io.BytesIO()
    buffer.write(b"junk before the stream")
    start = buffer.tell()
    codecpickle.dump(OBJ, buffer, compress="lz4")
    buffer.seek(start)
    index = read_index(buffer)
    assert buffer.tell() == start
    assert index.offset == start
    assert index.end == len(buffer.getvalue())
    assert all(c.offset > start for c in index.opcode_chunks)


def test_paths_are_read(tmp_path):
    path = tmp_path / "x.cpkl"
    codecpickle.dump(OBJ, path, compress="zstd")
    assert read_index(path).size == path.stat().st_size
    assert read_index(str(path)).method == "trailer"


def test_multi_stream_files_are_indexed_stream_by_stream():
    buffer = io.BytesIO()
    objects = [OBJ, [1, 2, 3], {"a": np.ones(200_000)}]
    for obj, compress in zip(objects, ["zstd", None, "lz4"], strict=True):
        codecpickle.dump(obj, buffer, compress=compress)
    # A version-1 stream in the middle stops the walk back through footers:
    # the streams before it are scanned, the ones after read from trailers.
    buffer.write((GOLDEN_V1 / "zstd.cpkl").read_bytes())
    codecpickle.dump("last", buffer)
    data = buffer.getvalue()
    indexes = list(iter_indexes(data))
    assert [i.version for i in indexes] == [2, 2, 2, 1, 2]
    assert [i.method for i in indexes] == ["scan", "scan", "scan", "scan", "trailer"]
    assert indexes[-1].end == len(data)
    for previous, following in itertools.pairwise(indexes):
        assert previous.end == following.offset
    # Each stream's index agrees with the one read from its trailer alone.
    for index in indexes:
        if index.version == 2:
            alone = read_index(data[index.offset : index.end])
            assert alone.method == "trailer"
            assert alone.payloads == tuple(
                _shift(p, -index.offset) for p in index.payloads
            )
    # Without the version-1 stream, every stream comes from its trailer.
    v2_only = data[: indexes[3].offset]
    assert [i.method for i in iter_indexes(v2_only)] == ["trailer"] * 3
    assert read_index(io.BytesIO(v2_only), offset=indexes[1].offset).method == "trailer"


def _shift(payload: Any, delta: int) -> Any:
    import dataclasses

    chunks = tuple(
        dataclasses.replace(c, offset=c.offset + delta, data_offset=c.data_offset + delta)
        for c in payload.chunks
    )
    data_offset = None if payload.data_offset is None else payload.data_offset + delta
    return dataclasses.replace(
        payload, offset=payload.offset + delta, chunks=chunks, data_offset=data_offset
    )


def test_version_1_files_are_scanned():
    index = read_index(GOLDEN_V1 / "lz4.cpkl")
    assert index.version == 1
    assert index.method == "scan"
    assert index.manifest is None
    assert index.trailer_size == 0
    assert index.size == (GOLDEN_V1 / "lz4.cpkl").stat().st_size
    with pytest.raises(CorruptDataError, match="no intact version-2 trailer"):
        read_index(GOLDEN_V1 / "lz4.cpkl", method="trailer")


def test_damaged_trailer_is_reported_and_scan_still_indexes():
    data = bytearray(codecpickle.dumps(OBJ, compress="zstd"))
    trailer = read_index(bytes(data))
    # A byte of the index flipped: the footer is intact, the body is not.
    data[trailer.end_offset + 36 + 3] ^= 0x40
    with pytest.raises(ChecksumMismatchError, match="trailer"):
        read_index(bytes(data), method="trailer")
    with pytest.raises(FileFormatError, match="trailer of the stream at offset 0 is damaged"):
        read_index(bytes(data))
    scanned = read_index(bytes(data), method="scan")
    assert "checksum" in scanned.trailer_damage
    assert scanned.payloads == trailer.payloads
    assert scanned.manifest is None
    # A load checks the trailer too.
    with pytest.raises(ChecksumMismatchError, match="trailer"):
        codecpickle.loads(bytes(data))


def test_damaged_footer_falls_back_to_the_scan_with_an_error():
    data = bytearray(codecpickle.dumps(OBJ, compress="zstd"))
    data[-20] ^= 1
    with pytest.raises(FileFormatError, match="damaged"):
        read_index(bytes(data))
    assert read_index(bytes(data), method="scan").trailer_damage


def test_truncated_stream_is_refused():
    data = codecpickle.dumps(OBJ, compress="zstd")
    for cut in (10, 100, len(data) // 2, len(data) - 41, len(data) - 1):
        with pytest.raises(FileFormatError):
            read_index(data[:cut])


def test_bad_inputs():
    with pytest.raises(InvalidOptionError, match="seek"):
        read_index(_Pipe())
    with pytest.raises(InvalidOptionError, match="method"):
        read_index(b"", method="fast")  # type: ignore[arg-type]
    with pytest.raises(EmptyInputError):
        read_index(b"")
    with pytest.raises(codecpickle.NotCodecPickleFileError):
        read_index(b"\x80\x05N.")


class _Pipe:
    def read(self, size: int = -1) -> bytes:
        return b""

    def seekable(self) -> bool:
        return False
