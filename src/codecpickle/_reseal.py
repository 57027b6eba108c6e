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
from ._reader import read_header_fields
from ._sources import StreamSource
from ._targets import local_path
from ._trailer import read_after_end
from ._types import PathType
from .errors import ChecksumMismatchError, CorruptDataError, TruncatedFileError

__all__ = ["mark_raw_payloads_mutable", "reseal"]

_FLAGS = fmt.HEADER_FLAGS_OFFSET
# Raw payloads are hashed in pieces of this size, never read whole.
_PIECE = 16 << 20


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
            start = source.offset
            version, _, flags = read_header_fields(source)
            header = _header_bytes(file, start, source.offset)
            mutable = bool(flags & fmt.FLAG_MUTABLE_RAW_PAYLOADS)
            records = _walk_records(source, version, start, mutable)
            for checksum_offset, actual, stored in records:
                if actual != stored:
                    updates.append((checksum_offset, fmt.CHECKSUM.pack(actual)))
            if mutable:
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


def _walk_records(
    source: StreamSource, version: int, start: int, mutable: bool
) -> Iterator[tuple[int, int, int]]:
    """Verify one stream's records after its header, leaving ``source``
    just past the stream (its END record, and its trailer in version 2);
    yield ``(checksum offset, checksum of the data, stored checksum)`` for
    every RAW_PAYLOAD of a stream flagged mutable, and raise on any other
    checksum or structure error."""
    ordinal = 1
    while True:
        offset = source.offset
        kind = source.read_exact(1, "a record")[0]
        if kind == fmt.KIND_END:
            layout = fmt.end_record_for(version)
            end = bytes([kind]) + source.read_exact(layout.size - 1, "the END record")
            _check(source, end, ordinal, offset)
            _, _, units, _, *trailer_size = layout.unpack(end)
            if trailer_size:
                # The trailer holds the index and manifest (header metadata
                # verbatim, never the flags): checked, and left as it is.
                read_after_end(source, trailer_size[0], units, start)
            return
        if kind == fmt.KIND_OPCODES:
            _chunk(source, kind, version, ordinal, 0, offset)
            ordinal += 1
        elif kind == fmt.KIND_PAYLOAD:
            head = source.read_exact(fmt.PAYLOAD_HEADER.size - 1, "a payload header")
            _, _, element_size, raw_size = fmt.PAYLOAD_HEADER.unpack(bytes([kind]) + head)
            filled = 0
            while filled < raw_size:
                chunk_offset = source.offset
                if source.read_exact(1, "a payload chunk")[0] != fmt.KIND_DATA:
                    raise CorruptDataError(
                        f"payload at offset {offset} is cut short by another record at "
                        f"offset {chunk_offset}"
                    )
                filled += _chunk(
                    source, fmt.KIND_DATA, version, ordinal, element_size, chunk_offset
                )
                ordinal += 1
        elif kind == fmt.KIND_RAW_PAYLOAD:
            head = source.read_exact(fmt.RAW_PAYLOAD_HEADER.size - 1, "a raw payload header")
            _, pad, _, size = fmt.RAW_PAYLOAD_HEADER.unpack(bytes([kind]) + head)
            source.read_exact(pad, "raw payload padding")
            data_offset = source.offset
            hasher = fmt.new_hasher(ordinal)
            left = size
            while left:
                piece = source.read_exact(min(left, _PIECE), "a raw payload")
                hasher.update(piece)
                left -= len(piece)
            actual = hasher.intdigest()
            checksum_offset = source.offset
            (stored,) = fmt.CHECKSUM.unpack(source.read_exact(fmt.CHECKSUM.size, "a checksum"))
            if mutable:
                yield checksum_offset, actual, stored
            elif actual != stored:
                raise _mismatch(size, data_offset, ordinal)
            ordinal += 1
        else:
            raise CorruptDataError(f"unknown record kind {kind:#04x} at offset {offset}")


def _chunk(
    source: StreamSource, kind: int, version: int, ordinal: int, element_size: int, offset: int
) -> int:
    head = source.read_exact(fmt.CHUNK_HEADER.size - 1, "a chunk header")
    _, flags, raw_size, stored_size = fmt.CHUNK_HEADER.unpack(bytes([kind]) + head)
    remaining = source.remaining()
    if remaining is not None and stored_size > remaining:
        raise TruncatedFileError(
            f"chunk at offset {offset} declares {stored_size} stored bytes but the file has "
            f"only {remaining} left"
        )
    # From version 2 a chunk's seed also holds its flags and element size.
    seed = fmt.chunk_seed(version, ordinal, flags, element_size)
    _check(source, source.read_exact(stored_size, "a chunk"), seed, offset, ordinal)
    return int(raw_size)


def _check(
    source: StreamSource, data: Any, seed: int, offset: int, ordinal: int | None = None
) -> None:
    (stored,) = fmt.CHECKSUM.unpack(source.read_exact(fmt.CHECKSUM.size, "a checksum"))
    if fmt.checksum(data, seed) != stored:
        raise _mismatch(memoryview(data).nbytes, offset, seed if ordinal is None else ordinal)


def _mismatch(size: int, offset: int, ordinal: int) -> ChecksumMismatchError:
    return ChecksumMismatchError(
        f"the {size} bytes at offset {offset} fail their checksum (record #{ordinal}): the "
        "file is damaged; nothing was resealed"
    )
