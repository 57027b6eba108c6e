"""The record walker (``_records``) that reseal, the index scan, the
skimming reader and the command line share."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest

import codecpickle
from codecpickle import _format as fmt
from codecpickle._index import read_index
from codecpickle._records import read_stream_header, walk_stream
from codecpickle._sources import StreamSource
from codecpickle.errors import ChecksumMismatchError, TruncatedFileError
from tests.test_index import CountingFile

OBJ = {
    "big": np.random.default_rng(6).random(600_000),  # several chunks, incompressible
    "many": [np.full(20_000, index, dtype=np.int32) for index in range(40)],
    "words": ["x"] * 10_000,
}


@pytest.fixture(scope="module", params=[None, "zstd"], ids=["raw", "zstd"])
def stream(request: pytest.FixtureRequest) -> bytes:
    return codecpickle.dumps(OBJ, compress=request.param, chunk_size=1 << 20)


def test_skipping_walk_reads_only_record_headers(stream):
    file = CountingFile(stream)
    source = StreamSource(file, len(stream))
    header = read_stream_header(source)
    records = list(walk_stream(source, header, skip_stored=True, read_trailer=False))
    assert records[-1].kind == fmt.KIND_END
    assert all(record.stored is None for record in records[:-1])
    # Record headers (read a few at a time) and the END record only.
    assert file.bytes_read <= 128 * len(records) + 1024
    assert sum(record.stored_size for record in records) > 5 * file.bytes_read


def test_skipping_and_reading_walks_find_the_same_records(stream):
    def walk(skip_stored: bool) -> list[tuple[int, int, int, int, int | None]]:
        source = StreamSource(io.BytesIO(stream), len(stream))
        header = read_stream_header(source)
        return [
            (record.kind, record.offset, record.data_offset, record.raw_size, record.ordinal)
            for record in walk_stream(source, header, skip_stored=skip_stored)
        ]

    assert walk(True) == walk(False)


def test_scan_reads_once_per_record(stream):
    file = CountingFile(stream)
    index = read_index(file, method="scan")
    records = len(index.opcode_chunks) + sum(1 + len(p.chunks) for p in index.payloads)
    assert file.reads <= records + 5  # plus the header, END record and trailer
    assert read_index(stream, method="trailer").payloads == index.payloads


def test_stream_source_skip_seeks_and_stops_at_the_end():
    file = CountingFile(b"a" * 1000)
    source = StreamSource(file, 1000)
    source.skip(900, "data")
    assert (source.offset, file.tell(), file.reads) == (900, 900, 0)
    with pytest.raises(TruncatedFileError, match="data"):
        source.skip(101, "data")


def test_stream_source_skip_reads_through_pipes():
    class Pipe:
        def __init__(self) -> None:
            self._data = io.BytesIO(b"b" * 5000)

        def read(self, size: int = -1) -> bytes:
            return self._data.read(size)

    source = StreamSource(Pipe())
    source.skip(4000, "data")
    assert source.read_exact(1000, "rest") == b"b" * 1000
    with pytest.raises(TruncatedFileError):
        source.skip(1, "data")


def test_reseal_names_a_damaged_chunk_by_its_record(tmp_path):
    path = tmp_path / "x.cpkl"
    codecpickle.dump(OBJ, path, compress="zstd", chunk_size=1 << 20)
    index = read_index(path)
    chunk = index.payloads[0].chunks[0]
    data = bytearray(path.read_bytes())
    data[chunk.data_offset + 5] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ChecksumMismatchError) as caught:
        codecpickle.reseal(path)
    expected = (
        f"the {chunk.stored_size} bytes at offset {chunk.offset} fail their checksum "
        f"(record #{chunk.ordinal}): the file is damaged; nothing was resealed"
    )
    assert str(caught.value) == expected
    assert path.read_bytes() == bytes(data)


def test_damage_offsets_agree_between_verify_walk_and_load(tmp_path):
    # A chunk header made invalid: the walker and the reader name the same offset.
    data = bytearray(codecpickle.dumps(OBJ, compress="zstd", chunk_size=1 << 20))
    chunk = read_index(bytes(data)).opcode_chunks[0]
    data[chunk.offset + 2 : chunk.offset + 6] = (0).to_bytes(4, "little")  # 0 raw bytes
    with pytest.raises(codecpickle.CorruptDataError) as loaded:
        codecpickle.loads(bytes(data))
    source = StreamSource(io.BytesIO(bytes(data)), len(data))
    header = read_stream_header(source)
    with pytest.raises(codecpickle.CorruptDataError) as walked:
        list(walk_stream(source, header))
    assert str(walked.value) == str(loaded.value)
    assert re.search(rf"offset {chunk.offset}\b", str(walked.value))
