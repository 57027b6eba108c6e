"""Step over a container's payload records without decoding them.

:func:`skim_payloads` makes a :class:`~codecpickle._reader.ContainerReader`
check each payload record's headers and sizes as usual but step over its
stored bytes (:func:`codecpickle._records.skip`: seeking when the source
can, reading through otherwise) instead of decoding them into memory.
The opcode chunks are still read, verified and decoded, so the reader
serves the complete opcode stream.
:func:`codecpickle.inspect` reads inputs it cannot seek in this way (a
seekable file is read through its index instead), and a refused restricted
load uses it to walk the rest of a stream cheaply.

Payload checksums are not verified (the bytes are not read).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import _format as fmt
from ._reader import ContainerReader
from ._records import read_payload_header, read_raw_payload_header, skip
from .errors import CorruptDataError

__all__ = ["PayloadRecord", "skim_payloads"]


@dataclass(frozen=True)
class PayloadRecord:
    """What a skimmed payload record declared: where it starts in the
    stream, ``"coded"`` (DATA chunks) or ``"raw"``, its raw size, the
    bytes the whole record occupies, and its number of chunks."""

    offset: int
    kind: str
    raw_bytes: int
    stored_bytes: int
    chunks: int


def skim_payloads(
    reader: ContainerReader, on_payload: Callable[[PayloadRecord], None] | None = None
) -> None:
    """From now on, ``reader`` steps over payload data (see the module
    docstring) and tells ``on_payload`` of each payload record; the
    out-of-band buffers it queues for the unpickler are empty."""
    # Instance attributes take precedence over the class's methods, which
    # the reader calls as it meets payload records.
    reader._read_payload = lambda: _skim_payload(reader, on_payload)  # type: ignore[method-assign]
    reader._read_raw_payload = (  # type: ignore[method-assign]
        lambda: _skim_raw_payload(reader, on_payload)
    )


def _skim_payload(
    reader: ContainerReader, on_payload: Callable[[PayloadRecord], None] | None
) -> memoryview:
    source = reader._source
    offset = source.offset - 1
    element_size, raw_size = read_payload_header(source, reader.header.version)
    filled = stored = chunks = 0
    while filled < raw_size:
        chunk_offset = source.offset
        kind = source.read_exact(1, "a payload chunk")[0]
        if kind != fmt.KIND_DATA:
            raise CorruptDataError(
                f"payload at offset {offset} has {raw_size - filled} bytes to go but "
                f"offset {chunk_offset} holds a record of kind {kind:#04x}, not DATA"
            )
        _, _, chunk_raw, stored_size = reader._chunk_header(
            fmt.KIND_DATA, min(reader.header.chunk_size, raw_size - filled), element_size
        )
        reader._next_ordinal()
        skip(source, stored_size + fmt.CHECKSUM.size, "a payload chunk")
        filled += chunk_raw
        stored += fmt.CHUNK_HEADER.size + stored_size + fmt.CHECKSUM.size
        chunks += 1
    reader._payload_count += 1
    if on_payload is not None:
        on_payload(
            PayloadRecord(offset, "coded", raw_size, fmt.PAYLOAD_HEADER.size + stored, chunks)
        )
    return memoryview(b"")


def _skim_raw_payload(
    reader: ContainerReader, on_payload: Callable[[PayloadRecord], None] | None
) -> memoryview:
    source = reader._source
    offset = source.offset - 1
    pad, _, size = read_raw_payload_header(source, reader.header.version)
    reader._check_remaining(pad + size + fmt.CHECKSUM.size, "raw payload", offset)
    reader._next_ordinal()
    skip(source, pad + size + fmt.CHECKSUM.size, "a raw payload")
    reader._payload_count += 1
    if on_payload is not None:
        record = fmt.RAW_PAYLOAD_HEADER.size + pad + size + fmt.CHECKSUM.size
        on_payload(PayloadRecord(offset, "raw", size, record, 1))
    return memoryview(b"")
