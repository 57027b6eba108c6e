"""Container writer: turns opcode bytes and payload buffers into records.

The writer is a file-like sink for the pickler (``write``) plus
``write_payload`` for out-of-band buffers.  It writes strictly sequentially
(no ``seek``/``tell``), so the target may be a pipe or a socket.

Chunks are encoded on a thread pool when one is given; results are written
in submission order, and at most ``max_in_flight`` chunks wait at once, so
memory stays bounded and the output is identical whatever the thread count.
Array chunks may go through a filter (``_filters.py``) before the codec,
chosen per chunk from a sample (``_probe.py``); a chunk on which no option
saves space is stored raw without compressing the rest of it.
"""

from __future__ import annotations

import collections
import pickle
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, Future
from typing import Any

from . import _filters
from . import _format as fmt
from ._probe import STORE_RAW, choose, filter_pays_off
from ._trailer import IndexBuilder, encode_trailer
from .codecs import Codec

# Raw payloads at least this large are hashed on a second thread while they
# are written (an uncompressed dump of a 512 MiB array: see the commit).
_OVERLAP_HASH_MIN = 8 << 20

# Buffers under the pickler's in-band limit but at least this large go out
# of band when a filter pays off on them (smaller ones gain too little for
# the 30 bytes of records, the lost compression context and the sample
# compressed for each: a fitted forest holds hundreds of small arrays).
# 16 KiB would make a 43 KB elevation grid 13% smaller and a 26 KB EEG
# recording 5% (benchmarks/RESULTS.md), but changes the bytes written for
# the golden files' object, which tests/test_golden.py pins.
_FILTER_OUT_OF_BAND_MIN = 64 << 10

# Parts of one encoded record, written one after the other without joining,
# after what the index records of it: (kind, flags, raw size, stored size).
Parts = tuple[Any, ...]
Entry = tuple[int, int, int, int]
Encoded = tuple[Entry, Parts]


def write_all(write: Callable[[Any], Any], data: Any) -> int:
    """Write every byte of ``data``; raw files and sockets may write less
    than asked and return the count."""
    view = memoryview(data).cast("B")
    total = view.nbytes
    written = write(view)
    # Buffered files return the full length (or None on some file-likes).
    if written is None or written == total:
        return total
    while written < total:
        step = write(view[written:])
        if step is None:
            return total
        if step == 0:
            raise OSError("the file accepted no more bytes (write returned 0)")
        written += step
    return total


def _element_size(itemsize: int) -> int:
    """What a payload header records for ``itemsize``-byte elements."""
    return itemsize if 0 < itemsize <= fmt.MAX_ELEMENT_SIZE else 0


class ContainerWriter:
    """Write one object's stream: header, chunk records, END record."""

    def __init__(
        self,
        file: Any,
        codec: Codec | None,
        *,
        chunk_size: int,
        executor: Executor | None = None,
        max_in_flight: int = 4,
        base_offset: int = 0,
        provider: dict[str, str] | None = None,
        filters: str | int = _filters.AUTO,
    ) -> None:
        self._write_raw = file.write
        self.codec = codec
        # "auto" or one filter id (``_filters.parse_filters``).
        self._filters = filters
        self._scratch = _filters.ScratchPool(chunk_size)
        self.chunk_size = chunk_size
        self._executor = executor
        self._max_in_flight = max(1, max_in_flight)
        self._in_flight: collections.deque[Future[Encoded] | Encoded] = collections.deque()
        self._opcodes = bytearray()
        self._position = base_offset
        self._start = base_offset
        self._index = IndexBuilder()
        self._ordinal = 1  # the header is unit 0
        self._payload_count = 0
        self._opcode_bytes = 0
        meta: dict[str, Any] = {
            "codec": fmt.NO_CODEC if codec is None else codec.name,
            "params": {} if codec is None else codec.params,
            "chunk_size": chunk_size,
        }
        if provider is not None:
            meta["provider"] = provider
        header = fmt.encode_header(meta)
        self._meta_bytes = header[fmt.HEADER_FIXED.size : -fmt.CHECKSUM.size]
        self._emit(header)

    # -- the pickler's file interface -------------------------------------

    def write(self, data: Any) -> int:
        """Accept opcode bytes from the pickler (frames and large in-band
        ``bytes``); cut them into chunks without copying large ones."""
        # In-band PickleBuffers may be Fortran-ordered: raw() is their bytes
        # in memory order, which is what the unpickler reads back.
        view = data.raw() if isinstance(data, pickle.PickleBuffer) else memoryview(data).cast("B")
        size = view.nbytes
        self._opcode_bytes += size
        buffer = self._opcodes
        room = self.chunk_size - len(buffer)
        if size < room:
            buffer += view
            return size
        buffer += view[:room]
        self._opcodes = bytearray()
        self._submit_chunk(fmt.KIND_OPCODES, memoryview(buffer), 1)
        offset = room
        while size - offset >= self.chunk_size:
            self._submit_chunk(fmt.KIND_OPCODES, view[offset : offset + self.chunk_size], 1)
            offset += self.chunk_size
        self._opcodes += view[offset:]
        return size

    # -- payloads ------------------------------------------------------------

    def write_payload(self, view: memoryview, itemsize: int = 1) -> None:
        """Write one out-of-band buffer (a contiguous byte view) as a
        payload record: through the codec, or raw and aligned when there is
        no codec."""
        self.write_payload_pieces(view.nbytes, (view,), itemsize)

    def write_payload_pieces(
        self, nbytes: int, pieces: Iterable[memoryview], itemsize: int = 1
    ) -> None:
        """Write one payload of ``nbytes`` given as contiguous byte pieces in
        order (cut into chunks here; a raw payload is written as given, one
        contiguous run in the file for mmap_mode); used to stream buffers that are
        not contiguous in memory without ever holding a whole copy."""
        self._payload_count += 1
        if self.codec is None:
            self._write_raw_payload(nbytes, pieces, itemsize)
        else:
            # The element size travels in the header (0: not told) so that
            # readers can undo filters; wider elements are never filtered.
            header = fmt.PAYLOAD_HEADER.pack(
                fmt.KIND_PAYLOAD, 0, _element_size(itemsize), nbytes
            )
            # Queued behind chunks still being encoded, never written past them.
            # The index records the element size where chunks keep flags.
            entry = (fmt.KIND_PAYLOAD, _element_size(itemsize), nbytes, 0)
            self._in_flight.append((entry, (header,)))
            written = 0
            step = self.chunk_size
            for piece in pieces:
                for start in range(0, piece.nbytes, step):
                    chunk = piece[start : start + step]
                    written += chunk.nbytes
                    self._submit_chunk(fmt.KIND_DATA, chunk, itemsize)
            self._check_payload_size(nbytes, written)

    def filter_pays_off(self, view: memoryview, itemsize: int) -> bool:
        """Whether a buffer the pickler would keep in band (small) compresses
        clearly better through a filter, so it should go out of band."""
        if self.codec is None or view.nbytes < _FILTER_OUT_OF_BAND_MIN:
            return False
        options = self._filter_options(fmt.KIND_DATA, itemsize)
        return filter_pays_off(self.codec, view, itemsize, options, self._scratch)

    def _write_raw_payload(
        self, nbytes: int, pieces: Iterable[memoryview], itemsize: int
    ) -> None:
        self._drain()
        pad = fmt.padding_for(self._position)
        self._index.raw_payload(pad, nbytes)
        # The element size is only a record of the array's (never used to
        # decode): recompressing the stream can then filter its chunks.
        head = fmt.RAW_PAYLOAD_HEADER.pack(
            fmt.KIND_RAW_PAYLOAD, pad, _element_size(itemsize), nbytes
        )
        self._emit(head + bytes(pad))
        hasher = fmt.new_hasher(self._next_ordinal())
        written = 0
        for piece in pieces:
            if piece.nbytes >= _OVERLAP_HASH_MIN:
                # xxh3 releases the GIL: hash while the same bytes are written.
                hashing = threading.Thread(target=hasher.update, args=(piece,))
                hashing.start()
                try:
                    self._emit(piece)
                finally:
                    hashing.join()
            else:
                hasher.update(piece)
                self._emit(piece)
            written += piece.nbytes
        self._check_payload_size(nbytes, written)
        self._emit(fmt.CHECKSUM.pack(hasher.intdigest()))

    @staticmethod
    def _check_payload_size(declared: int, written: int) -> None:
        if declared != written:
            # A bug in the caller, not in the data: the record header already
            # promised ``declared`` bytes.
            raise RuntimeError(f"payload declared {declared} bytes but {written} were given")


    # -- end of stream -------------------------------------------------------

    def finish(self, manifest: dict[str, Any] | None = None) -> None:
        """Flush pending opcodes, write the END record and the trailer
        (index, ``manifest``, footer)."""
        if self._opcodes:
            buffer, self._opcodes = self._opcodes, bytearray()
            self._submit_chunk(fmt.KIND_OPCODES, memoryview(buffer), 1)
        self._drain()
        index = self._index.encode(self._meta_bytes)
        end_size = fmt.END_RECORD_V2.size + fmt.CHECKSUM.size
        position = self._position - self._start + end_size
        trailer = encode_trailer(index, manifest or {}, position)
        end = fmt.END_RECORD_V2.pack(
            fmt.KIND_END, self._payload_count, self._ordinal - 1, self._opcode_bytes, len(trailer)
        )
        self._emit(end + fmt.CHECKSUM.pack(fmt.checksum(end, self._next_ordinal())))
        self._emit(trailer)

    def abort(self) -> None:
        """Drop work not yet started; called when pickling fails."""
        while self._in_flight:
            item = self._in_flight.popleft()
            if isinstance(item, Future):
                item.cancel()

    # -- chunk pipeline ------------------------------------------------------

    def _next_ordinal(self) -> int:
        ordinal = self._ordinal
        self._ordinal += 1
        return ordinal

    def _submit_chunk(self, kind: int, raw: memoryview, itemsize: int) -> None:
        ordinal = self._next_ordinal()
        if self.codec is None or self._executor is None:
            # Nothing runs in the background: write at once rather than
            # holding finished chunks in memory.
            self._in_flight.append(self._encode_chunk(kind, raw, itemsize, ordinal))
            self._drain()
            return
        self._in_flight.append(
            self._executor.submit(self._encode_chunk, kind, raw, itemsize, ordinal)
        )
        while len(self._in_flight) > self._max_in_flight:
            self._write_parts(self._in_flight.popleft())

    def _filter_options(self, kind: int, itemsize: int) -> tuple[int, ...]:
        """The filters this chunk may go through (``NONE`` first)."""
        if kind != fmt.KIND_DATA or self._filters == _filters.NONE:
            return (_filters.NONE,)
        found = _filters.candidates(itemsize)
        if self._filters == _filters.AUTO:
            return found
        return (self._filters,) if self._filters in found else (_filters.NONE,)

    def _encode_chunk(
        self, kind: int, raw: memoryview, itemsize: int, ordinal: int
    ) -> Encoded:
        flags = fmt.FLAG_STORED_RAW
        stored: Any = raw
        codec = self.codec
        options = self._filter_options(kind, itemsize)
        choice = STORE_RAW if codec is None else choose(
            codec, raw, itemsize, options, self._scratch
        )
        if codec is not None and choice != STORE_RAW:
            encoded = self._filter_and_encode(codec, choice, raw, itemsize)
            # Never store more than the raw size: incompressible chunks stay
            # raw (unfiltered), which also bounds every stored size by its
            # raw size.
            if memoryview(encoded).nbytes < raw.nbytes:
                flags, stored = choice << fmt.FILTER_SHIFT, encoded
        stored_size = memoryview(stored).nbytes
        head = fmt.CHUNK_HEADER.pack(kind, flags, raw.nbytes, stored_size)
        element_size = _element_size(itemsize) if kind == fmt.KIND_DATA else 0
        seed = fmt.chunk_seed(fmt.VERSION, ordinal, flags, element_size)
        entry = (kind, flags, raw.nbytes, stored_size)
        return entry, (head, stored, fmt.CHECKSUM.pack(fmt.checksum(stored, seed)))

    def _filter_and_encode(self, codec: Codec, choice: int, raw: memoryview, itemsize: int) -> Any:
        if choice == _filters.NONE:
            return codec.encode(raw, itemsize)
        filtered = self._scratch.take(raw.nbytes)
        spare = self._scratch.take(raw.nbytes) if choice == _filters.DELTA else None
        try:
            view = filtered.data[: raw.nbytes]
            _filters.encode(choice, raw, view, itemsize, spare)
            # The codec sees bytes, not elements, once they are filtered;
            # bytes() in case a codec returns a view of its input.
            encoded = codec.encode(view, 1)
            if isinstance(encoded, memoryview):
                encoded = bytes(encoded)
            return encoded
        finally:
            if spare is not None:
                self._scratch.give(spare)
            self._scratch.give(filtered)

    def _drain(self) -> None:
        while self._in_flight:
            self._write_parts(self._in_flight.popleft())

    def _write_parts(self, item: Future[Encoded] | Encoded) -> None:
        entry, parts = item.result() if isinstance(item, Future) else item
        for part in parts:
            self._emit(part)
        kind, flags, raw, stored = entry
        if kind == fmt.KIND_DATA:
            self._index.data_chunk(flags, raw, stored)
        elif kind == fmt.KIND_OPCODES:
            self._index.opcode_chunk(flags, raw, stored)
        else:
            self._index.start_payload(raw, flags)  # flags: the element size

    def _emit(self, data: Any) -> None:
        self._position += write_all(self._write_raw, data)
