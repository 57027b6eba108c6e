"""Files whose uncompressed array data is changed in place.

``load(path, mmap_mode="r+")`` hands out arrays that are views of the file:
writing to them changes the file, and leaves the checksums of those
RAW_PAYLOAD records stale.  So that such a file still loads without options,
the load first sets the header flag ``MUTABLE_RAW_PAYLOADS``
(:func:`mark_raw_payloads_mutable`); readers then skip the raw payloads'
checksums and verify everything else.  :func:`reseal` recomputes those
checksums and clears the flag, making the file fully verified again.

Both work in place, never through a temporary copy: arrays of a running
``r+`` session map the file's current inode, and a rename would leave their
later writes in a file nobody can open.  Writes are ordered so that a crash
at any moment leaves a loadable file (see :func:`reseal`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from . import _format as fmt
from ._records import Record, StreamHeader, checksum_matches, read_stream_header, walk_stream
from ._sources import StreamSource
from ._targets import local_path
from ._types import PathType
from .errors import ChecksumMismatchError

__all__ = ["mark_raw_payloads_mutable", "reseal"]

_FLAGS = fmt.HEADER_FLAGS_OFFSET


def mark_raw_payloads_mutable(mapped: Any, start: int) -> None:
    """Set ``MUTABLE_RAW_PAYLOADS`` in the header of the stream that starts
    at ``start`` in the writable buffer ``mapped`` (an ``mmap`` opened for
    writing), with its header checksum, unless it is set already.  The
    header is rewritten with one copy."""
    _, _, flags, meta_size = fmt.HEADER_FIXED.unpack_from(mapped, start)
    if flags & fmt.FLAG_MUTABLE_RAW_PAYLOADS:
        return
    end = start + fmt.HEADER_FIXED.size + meta_size
    _rewrite_header(mapped, start, end, flags | fmt.FLAG_MUTABLE_RAW_PAYLOADS)


def _rewrite_header(mapped: Any, start: int, end: int, flags: int) -> None:
    head = bytearray(mapped[start:end])
    head[_FLAGS : _FLAGS + 2] = flags.to_bytes(2, "little")
    mapped[start : end + fmt.CHECKSUM.size] = bytes(head) + fmt.CHECKSUM.pack(
        fmt.checksum(head, 0)
    )


def reseal(path: PathType) -> int:
    """Recompute the checksums of the uncompressed array data in the file
    at ``path`` and clear its ``MUTABLE_RAW_PAYLOADS`` flag, for every
    stream in the file; return how many checksums changed.

    Use it once the arrays of an ``mmap_mode="r+"`` session are written
    and no process holds the file mapped for writing any more: a write
    after the reseal makes a checksum stale again, now without the flag,
    and a plain load then raises
    :class:`~codecpickle.errors.ChecksumMismatchError`.

    Everything else in the file is verified on the way (header, opcode
    chunks, compressed chunks, END records); damage there raises the usual
    :class:`~codecpickle.errors.FileFormatError` and nothing is changed.
    A stream without the flag is verified as a plain load verifies it, and
    left alone, so resealing a file twice does nothing the second time.

    The file is changed in place (see the module notes for why not by a
    temporary copy): first every new checksum is written and flushed to
    disk, then each header is rewritten with its flag cleared.  A crash in
    between leaves the flag set, so the file loads as before and a second
    ``reseal`` finishes the work.
    """
    target = local_path(path)
    if target is None:
        raise TypeError(f"reseal() expects a path; got {type(path).__name__}")
    with open(target, "r+b") as file:
        source = StreamSource(file, os.fstat(file.fileno()).st_size)
        flagged: list[tuple[int, bytes]] = []
        updates: list[tuple[int, bytes]] = []
        while source.remaining() or not source.offset:
            stream = read_stream_header(source)
            start = stream.offset
            header = _header_bytes(file, start, source.offset)
            for checksum_offset, actual in _stale_checksums(source, stream):
                updates.append((checksum_offset, fmt.CHECKSUM.pack(actual)))
            if stream.mutable_raw_payloads:
                flagged.append((start, header))
        # Nothing is written before the whole file has been verified.
        for offset, packed in updates:
            _write_at(file, offset, packed)
        _sync(file, bool(updates))
        for start, header in flagged:
            head = bytearray(header[: -fmt.CHECKSUM.size])
            flags = int.from_bytes(head[_FLAGS : _FLAGS + 2], "little")
            head[_FLAGS : _FLAGS + 2] = (flags & ~fmt.FLAG_MUTABLE_RAW_PAYLOADS).to_bytes(
                2, "little"
            )
            # One write per header: flag and header checksum together.
            _write_at(file, start, bytes(head) + fmt.CHECKSUM.pack(fmt.checksum(head, 0)))
        _sync(file, bool(flagged))
    return len(updates)


def _header_bytes(file: Any, start: int, end: int) -> bytes:
    position = file.tell()
    file.seek(start)
    header = file.read(end - start)
    file.seek(position)
    return bytes(header)


def _write_at(file: Any, offset: int, data: bytes) -> None:
    file.seek(offset)
    file.write(data)


def _sync(file: Any, wrote: bool) -> None:
    if wrote:
        file.flush()
        os.fsync(file.fileno())


def _stale_checksums(source: StreamSource, stream: StreamHeader) -> Iterator[tuple[int, int]]:
    """Verify one stream's records after its header, leaving ``source``
    just past the stream (its END record, and its trailer in version 2);
    yield ``(checksum offset, checksum of the data)`` for every RAW_PAYLOAD
    of a stream flagged mutable whose stored checksum is stale, and raise
    on any other checksum or structure error."""
    for record in walk_stream(source, stream, read_raw_payloads=False):
        if checksum_matches(record):
            continue
        if stream.mutable_raw_payloads and record.kind == fmt.KIND_RAW_PAYLOAD:
            yield record.data_offset + record.stored_size, _digest(record)
            continue
        # Raw payloads are named by their data, chunks by their record.
        where = record.data_offset if record.kind == fmt.KIND_RAW_PAYLOAD else record.offset
        raise ChecksumMismatchError(
            f"the {record.stored_size} bytes at offset {where} fail their checksum (record "
            f"#{record.ordinal}): the file is damaged; nothing was resealed"
        )


def _digest(record: Record) -> int:
    """The checksum of a raw payload hashed while walking."""
    assert record.digest is not None  # walked with read_raw_payloads=False
    return record.digest
