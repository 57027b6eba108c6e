"""Container reader: the file-like opcode stream the unpickler reads, plus
the out-of-band buffers it pulls, in stream order.

The unpickler asks for opcode bytes; on its way to the next opcode chunk the
reader meets payload records (which the writer put *before* the opcodes that
consume them) and decodes each one straight into its final memory, queueing
it for the unpickler's ``buffers`` iterator.  Nothing is read past the END
record, so several streams can follow each other in one file.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _filters
from . import _format as fmt
from ._sources import MemorySource, StreamSource, allocate, default_buffer_limit
from ._trailer import Trailer, read_after_end
from .codecs import Codec, codec_from_header
from .errors import (
    ChecksumMismatchError,
    CodecPickleError,
    CorruptDataError,
    EmptyInputError,
    NotCodecPickleFileError,
    SizeLimitError,
    TruncatedFileError,
    UnsupportedVersionError,
)

Source = StreamSource | MemorySource

# How foreign inputs start, to say what a file is when it is not ours.
_FOREIGN_SIGNATURES = (
    (b"\x80", "a plain pickle (or an uncompressed joblib file): use pickle.load or joblib.load"),
    (b"\x1f\x8b", "a gzip stream (a compressed joblib file?)"),
    (b"\x28\xb5\x2f\xfd", "a zstd frame"),
    (b"\x04\x22\x4d\x18", "an lz4 frame (a compressed joblib file?)"),
    (b"BZh", "a bz2 stream (a compressed joblib file?)"),
    (b"\xfd7zXZ", "an xz stream (a compressed joblib file?)"),
    (b"\x78", "a zlib stream (a compressed joblib file?)"),
    (b"PK\x03\x04", "a zip archive (an .npz file?)"),
    (b"\x93NUMPY", "a .npy file: use numpy.load"),
)


_RAW_HINT = (
    " (if this uncompressed array data was changed on purpose through "
    "mmap_mode='r+', load with verify=False)"
)


@dataclass(frozen=True)
class Header:
    """What the stream header says."""

    version: int
    codec: Codec | None
    codec_name: str
    chunk_size: int
    #: Header flag bits (``fmt.HEADER_FLAGS``).
    flags: int = 0


def _describe_foreign(start: bytes) -> str:
    for signature, what in _FOREIGN_SIGNATURES:
        if start.startswith(signature):
            return f"; it looks like {what}"
    if start.startswith(fmt.MAGIC[:4]) and b"\r\n" not in start:
        return "; its line endings look translated: was it written or read in text mode?"
    return ""


def read_header(source: Source) -> Header:
    """Read and check the stream header, and find its codec; leave the
    source at the first record."""
    version, meta, flags = read_header_fields(source)
    name, params, chunk_size = meta["codec"], meta.get("params", {}), meta["chunk_size"]
    codec = None if name == fmt.NO_CODEC else codec_from_header(name, params, meta.get("provider"))
    return Header(version, codec, name, chunk_size, flags)


def read_header_meta(source: Source) -> tuple[int, dict[str, Any]]:
    """Read and check the stream header; return its version and its
    validated metadata without looking the codec up."""
    version, meta, _ = read_header_fields(source)
    return version, meta


def read_header_fields(source: Source) -> tuple[int, dict[str, Any], int]:
    """Read and check the stream header; return its version, its validated
    metadata and its flags, without looking the codec up."""
    start = source.read_upto(len(fmt.MAGIC))
    if not start:
        raise EmptyInputError("the input is empty: expected a codecpickle stream")
    if not fmt.MAGIC.startswith(start):
        raise NotCodecPickleFileError(
            f"not a codecpickle stream: it starts with {start!r}, expected the magic "
            f"{fmt.MAGIC!r}{_describe_foreign(start)}"
        )
    if len(start) < len(fmt.MAGIC):
        raise TruncatedFileError(f"the input ends inside the magic after {len(start)} bytes")
    rest = source.read_exact(fmt.HEADER_FIXED.size - len(fmt.MAGIC), "the stream header")
    _, version, flags, meta_size = fmt.HEADER_FIXED.unpack(start + rest)
    if version not in fmt.SUPPORTED_VERSIONS:
        raise UnsupportedVersionError(
            f"format version {version} is not supported by this codecpickle (it reads "
            f"versions {sorted(fmt.SUPPORTED_VERSIONS)}); the file was written by a newer "
            "release: upgrade codecpickle"
        )
    if flags & ~fmt.HEADER_FLAGS:
        raise CorruptDataError(f"header flags {flags:#06x} at offset 10 are not defined")
    if not 0 < meta_size <= fmt.MAX_META_SIZE:
        raise CorruptDataError(
            f"header metadata size {meta_size} at offset 12 is outside 1..{fmt.MAX_META_SIZE}"
        )
    meta_bytes = source.read_exact(meta_size, "the header metadata")
    (stored,) = fmt.CHECKSUM.unpack(source.read_exact(fmt.CHECKSUM.size, "the header checksum"))
    if stored != fmt.checksum(start + rest + meta_bytes, 0):
        raise ChecksumMismatchError(
            "the stream header (offsets 0.."
            f"{fmt.HEADER_FIXED.size + meta_size}) fails its checksum: the file is damaged"
        )
    return version, _parse_meta(meta_bytes), flags


def _parse_meta(meta_bytes: bytes) -> dict[str, Any]:
    try:
        meta = json.loads(meta_bytes)
    except ValueError as exc:
        raise CorruptDataError(f"the header metadata is not valid JSON: {exc}") from exc
    except RecursionError:
        # 64 KiB of "[" nests deeper than the JSON parser's recursion limit.
        raise CorruptDataError(
            "the header metadata nests too deeply to parse: it is not the flat JSON "
            "object a writer records"
        ) from None
    if not isinstance(meta, dict):
        raise CorruptDataError("the header metadata is not a JSON object")
    name = meta.get("codec")
    params = meta.get("params", {})
    provider = meta.get("provider")
    chunk_size = meta.get("chunk_size")
    if not isinstance(name, str) or not isinstance(params, dict):
        raise CorruptDataError(f"the header names no valid codec: {meta!r}")
    if provider is not None and not isinstance(provider, dict):
        raise CorruptDataError(f"the header's codec provider is malformed: {provider!r}")
    if (
        isinstance(chunk_size, bool)
        or not isinstance(chunk_size, int)
        or not fmt.MIN_CHUNK_SIZE <= chunk_size <= fmt.MAX_CHUNK_SIZE
    ):
        raise CorruptDataError(f"the header's chunk size {chunk_size!r} is out of range")
    return meta


class OpcodeReads:
    """The unpickler's ``readinto``/``readinto1``/``unread`` over a reader's
    opcode chunks, for readers that provide ``_take(limit)`` (up to
    ``limit`` bytes, at least one, of the current chunk), its position
    ``_pos`` in that chunk, and ``check_declared_size``."""

    _pos: int

    def _take(self, limit: int) -> memoryview:
        raise NotImplementedError

    def check_declared_size(self, nbytes: int, what: str) -> None:
        raise NotImplementedError

    def readinto(self, out: Any) -> int:
        view = memoryview(out).cast("B")
        # The unpickler allocates what an opcode (BINBYTES8, FRAME ...)
        # declares before asking for its bytes; the allocation is lazy, so
        # refusing here, before any byte is written, keeps memory untouched.
        self.check_declared_size(view.nbytes, "a pickled object")
        filled = 0
        while filled < view.nbytes:
            piece = self._take(view.nbytes - filled)
            view[filled : filled + len(piece)] = piece
            filled += len(piece)
        return filled

    def readinto1(self, out: Any) -> int:
        """Up to ``len(out)`` opcode bytes, at least one, from the current
        chunk only (the next is loaded when this one is used up): the raw
        read under a buffered reader, which then never reads ahead past the
        chunk the unpickler is in."""
        view = memoryview(out).cast("B")
        piece = self._take(view.nbytes)
        view[: len(piece)] = piece
        return len(piece)

    def unread(self, count: int) -> None:
        """Give back the last ``count`` opcode bytes taken from the current
        chunk (read ahead by a buffered reader, but not used)."""
        if not 0 <= count <= self._pos:
            raise ValueError(f"cannot give back {count} opcode bytes")
        self._pos -= count


class ContainerReader(OpcodeReads):
    """Serve one stream's opcodes (``read``/``readinto``/``readline``) and
    its payloads (:meth:`buffers`) to an unpickler."""

    def __init__(
        self,
        source: Source,
        *,
        executor: Executor | None = None,
        max_in_flight: int = 4,
        verify_raw_payloads: bool = True,
        max_buffer_size: int | None = None,
    ) -> None:
        self._source = source
        #: What post-processes the arrays the stream's constructors build
        #: (``_memmap.MappedFile`` for mapped loads, the spool of convert).
        self.array_hook = getattr(source, "array_hook", None)
        # No buffer sized by the input (payload, opcode chunk, pickled
        # bytes object) may exceed this; see docs/security.md.
        self._max_buffer = default_buffer_limit() if max_buffer_size is None else max_buffer_size
        #: The bound in effect, and the caller's own (None: the default).
        self.max_buffer_size = self._max_buffer
        self.requested_max_buffer_size = max_buffer_size
        self._line_cache: tuple[memoryview, bytes] | None = None
        # Array data stored uncompressed may be changed in place on purpose
        # (mmap_mode="r+"), which leaves its checksum stale.
        self._verify_raw_payloads = verify_raw_payloads
        self._stream_start = source.offset
        #: The version-2 trailer, once :meth:`finish` has read it.
        self.trailer: Trailer | None = None
        self.header = read_header(source)
        self.codec = self.header.codec
        if self.header.flags & fmt.FLAG_MUTABLE_RAW_PAYLOADS:
            # Changed in place through mmap_mode="r+" on purpose: those
            # checksums are stale until codecpickle.reseal() recomputes them.
            self._verify_raw_payloads = False
        self._executor = executor
        self._max_in_flight = max(1, max_in_flight)
        self._chunk: memoryview = memoryview(b"")
        # Reused buffers for compressed payload chunks read from a stream.
        self._scratch: list[np.ndarray] = []
        # Reused buffers that filtered chunks are decoded into before the
        # filter is undone into the payload's memory.
        self._filter_scratch = _filters.ScratchPool(0)
        self._pos = 0
        self._payloads: collections.deque[memoryview] = collections.deque()
        self._ordinal = 1
        self._payload_count = 0
        self._opcode_bytes = 0
        self._ended = False
        # Read-ahead (compressed streams with a thread pool): the next opcode
        # chunk is decoded in a worker while the unpickler consumes the
        # current one.  Looking ahead reads at most the next record; a record
        # kind read but not yet used waits in ``_lookahead``, and an error
        # met while looking ahead is raised only when the stream gets there.
        # Opcode chunks being decoded ahead of the unpickler, in stream order,
        # with their offsets (up to max_in_flight of them).
        self._prefetched: collections.deque[tuple[Future[Any], int]] = collections.deque()
        self._lookahead: int | None = None
        self._lookahead_error: CodecPickleError | None = None

    # -- the unpickler's file interface ----------------------------------

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            raise CorruptDataError("the pickle stream asked to read to the end")
        if self._pos + size <= len(self._chunk):
            start = self._pos
            self._pos += size
            return self._chunk[start : self._pos].tobytes()
        self._check_buffer_size(size, "a pickled object", self._source.offset)
        parts = []
        missing = size
        while missing:
            piece = self._take(missing)
            parts.append(piece)
            missing -= len(piece)
        return b"".join(parts)

    def readline(self) -> bytes:
        """One line of opcode bytes, newline included, across chunks.

        Only protocol 0-3 opcodes read lines; streams we write never do,
        but a reader must cope with any valid pickle.  A line is a buffer
        the input sizes, so it is bounded by ``max_buffer_size`` too.
        """
        parts = []
        length = 0
        while True:
            while self._pos >= len(self._chunk):
                # Load the next chunk without consuming anything from it:
                # its first byte may be the newline.
                self._load_next_opcode_chunk()
            end = self._find_newline()
            stop = len(self._chunk) if end < 0 else end + 1
            self._check_line(length + stop - self._pos)
            piece = self._take(stop - self._pos)
            parts.append(piece)
            length += len(piece)
            if end >= 0:
                return b"".join(parts)

    def _check_line(self, length: int) -> None:
        if length > self._max_buffer:
            raise SizeLimitError(
                f"a line of the pickle stream at offset {self._source.offset} is longer "
                f"than the limit of {self._max_buffer} bytes; if the input is trusted, raise "
                "it with load(..., max_buffer_size=...)"
            )


    def _find_newline(self) -> int:
        # The chunk's position-relative search, on a bytes copy made once
        # per chunk (a view's .obj may be the whole input, not the chunk).
        if self._line_cache is None or self._line_cache[0] is not self._chunk:
            self._line_cache = (self._chunk, self._chunk.tobytes())
        return self._line_cache[1].find(b"\n", self._pos)

    @property
    def input_offset(self) -> int:
        """How many bytes of the input have been read so far."""
        return int(self._source.offset)

    def check_declared_size(self, nbytes: int, what: str) -> None:
        """Refuse, with :class:`SizeLimitError`, a pickled object whose
        declared size is over the buffer bound, before it is read."""
        self._check_buffer_size(nbytes, what, self._source.offset)

    def _check_buffer_size(self, nbytes: int, what: str, offset: int) -> None:
        if nbytes > self._max_buffer:
            raise SizeLimitError(
                f"{what} at offset {offset} declares {nbytes} bytes, over the limit of "
                f"{self._max_buffer} bytes; if the input is trusted and the memory exists, "
                "raise it with load(..., max_buffer_size=...)"
            )

    def _take(self, limit: int) -> memoryview:
        """Up to ``limit`` opcode bytes, at least one; loads the next opcode
        chunk when the current one is used up."""
        while self._pos >= len(self._chunk):
            self._load_next_opcode_chunk()
        start = self._pos
        self._pos = min(len(self._chunk), start + limit)
        return self._chunk[start : self._pos]

    def buffers(self) -> Iterator[memoryview]:
        """The out-of-band buffers in stream order, for ``Unpickler(buffers=)``."""
        while True:
            if not self._payloads:
                raise CorruptDataError(
                    f"the pickle stream asks for out-of-band buffer #{self._payload_count + 1} "
                    f"at offset {self._source.offset}, but no payload record precedes it"
                )
            yield self._payloads.popleft()

    # -- records ---------------------------------------------------------

    def _load_next_opcode_chunk(self) -> None:
        if self._prefetched:
            future, _ = self._prefetched.popleft()
            self._chunk = memoryview(future.result())
            self._pos = 0
            self._prefetch_opcode_chunks()
            return
        while True:
            kind = self._read_kind()
            if kind == fmt.KIND_OPCODES:
                self._chunk = memoryview(self._decode_opcode_chunk(*self._read_opcode_chunk()))
                self._pos = 0
                self._prefetch_opcode_chunks()
                return
            if kind == fmt.KIND_PAYLOAD:
                self._payloads.append(self._read_payload())
            elif kind == fmt.KIND_RAW_PAYLOAD:
                self._payloads.append(self._read_raw_payload())
            elif kind == fmt.KIND_END:
                raise CorruptDataError(
                    f"the pickle stream ends at offset {self._source.offset - 1} before its "
                    "STOP opcode"
                )
            else:
                self._bad_kind(kind)

    def _prefetch_opcode_chunks(self) -> None:
        """Start decoding the records that follow in workers while they are
        opcode chunks, up to ``max_in_flight`` ahead (only worth it with a
        codec and a pool).  Several at once: objects whose arrays travel
        in-band (a fitted forest) keep all their data in opcode chunks.
        Stops at the first other record, so nothing past END is read."""
        if self._executor is None or self.codec is None:
            return
        while len(self._prefetched) < self._max_in_flight:
            if self._lookahead is not None or self._lookahead_error is not None:
                return
            try:
                offset = self._source.offset
                kind = self._read_kind()
                if kind != fmt.KIND_OPCODES:
                    self._lookahead = kind
                    return
                job = self._read_opcode_chunk()
            except CodecPickleError as exc:
                self._lookahead_error = exc
                return
            future = self._executor.submit(self._decode_opcode_chunk, *job)
            self._prefetched.append((future, offset))

    def _read_kind(self) -> int:
        if self._lookahead_error is not None:
            error, self._lookahead_error = self._lookahead_error, None
            raise error
        if self._lookahead is not None:
            # Its byte is consumed: offsets in messages stay "offset - 1".
            kind, self._lookahead = self._lookahead, None
            return kind
        if self._ended:
            raise CorruptDataError("read past the END record")
        return self._source.read_exact(1, "a record")[0]

    def _bad_kind(self, kind: int) -> None:
        raise CorruptDataError(
            f"unknown record kind {kind:#04x} at offset {self._source.offset - 1}"
        )

    def _chunk_header(
        self, expected_kind: int, limit: int, element_size: int = 0
    ) -> tuple[int, int, int, int]:
        """Read a chunk header (its kind byte already consumed when
        ``expected_kind`` is OPCODES) and check its flags and sizes; DATA
        chunks belong to a payload of ``element_size``-byte elements."""
        offset = self._source.offset
        head = self._source.read_exact(fmt.CHUNK_HEADER.size - 1, "a chunk header")
        kind, flags, raw_size, stored_size = fmt.CHUNK_HEADER.unpack(bytes([expected_kind]) + head)
        if flags & ~(fmt.CHUNK_FLAGS | fmt.FILTER_MASK):
            raise CorruptDataError(f"undefined chunk flags {flags:#04x} at offset {offset}")
        if flags & fmt.FILTER_MASK:
            self._check_filter(kind, flags, element_size, offset)
        if not 0 < raw_size <= limit:
            raise CorruptDataError(
                f"chunk at offset {offset - 1} declares {raw_size} raw bytes; expected 1..{limit}"
            )
        if flags & fmt.FLAG_STORED_RAW:
            if stored_size != raw_size:
                raise CorruptDataError(
                    f"raw chunk at offset {offset - 1} declares stored size {stored_size} "
                    f"!= raw size {raw_size}"
                )
        elif not 0 < stored_size < raw_size:
            raise CorruptDataError(
                f"compressed chunk at offset {offset - 1} declares stored size {stored_size} "
                f"for raw size {raw_size}; expected 1..{raw_size - 1}"
            )
        elif self.codec is None:
            raise CorruptDataError(
                f"compressed chunk at offset {offset - 1} in a stream written without a codec"
            )
        self._check_remaining(stored_size + fmt.CHECKSUM.size, "chunk", offset - 1)
        return kind, flags, raw_size, stored_size

    def _check_filter(self, kind: int, flags: int, element_size: int, offset: int) -> None:
        filter_id = (flags & fmt.FILTER_MASK) >> fmt.FILTER_SHIFT
        where = f"chunk flags {flags:#04x} at offset {offset}"
        if self.header.version < fmt.FILTERS_SINCE_VERSION:
            raise CorruptDataError(
                f"{where} name filter {filter_id}, but filters exist only from format version "
                f"{fmt.FILTERS_SINCE_VERSION} and this stream is version {self.header.version}"
            )
        if kind != fmt.KIND_DATA:
            raise CorruptDataError(f"{where} name filter {filter_id} on an opcode chunk")
        if flags & fmt.FLAG_STORED_RAW:
            raise CorruptDataError(f"{where} name filter {filter_id} on a chunk stored raw")
        if filter_id not in _filters.FILTER_NAMES:
            raise CorruptDataError(f"{where} name filter {filter_id}, which is not defined")
        if not _filters.valid_for(filter_id, element_size):
            raise CorruptDataError(
                f"{where} name filter {_filters.FILTER_NAMES[filter_id]!r}, which is not "
                f"defined for the payload's element size {element_size}"
            )

    def _check_remaining(self, nbytes: int, what: str, offset: int) -> None:
        remaining = self._source.remaining()
        if remaining is not None and nbytes > remaining:
            raise TruncatedFileError(
                f"{what} at offset {offset} declares {nbytes} more bytes but the input "
                f"has only {remaining} left"
            )

    def _read_opcode_chunk(self) -> tuple[int, int, memoryview, int, int, int]:
        """Read an opcode chunk (its kind byte already consumed); return what
        :meth:`_decode_opcode_chunk` needs to check and decode it."""
        _, flags, raw_size, stored_size = self._chunk_header(
            fmt.KIND_OPCODES, self.header.chunk_size
        )
        offset = self._source.offset
        stored = self._source.view(stored_size, "an opcode chunk")
        expected = self._read_checksum()
        ordinal = self._chunk_seed(flags, 0)
        self._opcode_bytes += raw_size
        return flags, raw_size, stored, expected, ordinal, offset

    def _decode_opcode_chunk(
        self, flags: int, raw_size: int, stored: memoryview, expected: int, ordinal: int,
        offset: int,
    ) -> Any:
        """Verify and decode one opcode chunk (in a worker when prefetched)."""
        self._verify(stored, expected, ordinal, offset)
        if flags & fmt.FLAG_STORED_RAW:
            return stored
        assert self.codec is not None
        # Lazily allocated (numpy, not a zero-filled bytearray): a hostile
        # chunk may declare up to chunk_size raw bytes and fail to decode.
        self._check_buffer_size(raw_size, "an opcode chunk", offset)
        out = memoryview(allocate(raw_size, "an opcode chunk", offset))
        _decode(self.codec, stored, out, offset)
        return out

    def _read_payload(self) -> memoryview:
        offset = self._source.offset - 1
        head = self._source.read_exact(fmt.PAYLOAD_HEADER.size - 1, "a payload header")
        _, reserved, element_size, raw_size = fmt.PAYLOAD_HEADER.unpack(b"\0" + head)
        if reserved or (element_size and self.header.version < fmt.FILTERS_SINCE_VERSION):
            raise CorruptDataError(f"payload header at offset {offset} has non-zero reserved bits")
        remaining = self._source.remaining()
        if remaining is not None:
            # Every DATA chunk costs at least a header, a byte and a checksum
            # on disk and yields at most one chunk of raw bytes.
            min_chunk = fmt.CHUNK_HEADER.size + 1 + fmt.CHECKSUM.size
            ceiling = -(-remaining // min_chunk) * self.header.chunk_size
            if raw_size > ceiling:
                # Truncated, as other records that overrun the input are:
                # filtered chunks compress well enough that a cut inside a
                # payload often leaves too few bytes for its declared size.
                raise TruncatedFileError(
                    f"payload at offset {offset} declares {raw_size} bytes, more than the "
                    f"{remaining} bytes left in the input can hold"
                )
        self._check_buffer_size(raw_size, "payload", offset)
        target = allocate(raw_size, "payload", offset)
        view = memoryview(target)
        self._payload_count += 1
        pending: collections.deque[tuple[Future[None], np.ndarray | None]] = collections.deque()
        filled = 0
        try:
            while filled < raw_size:
                chunk_offset = self._source.offset
                kind = self._source.read_exact(1, "a payload chunk")[0]
                if kind != fmt.KIND_DATA:
                    raise CorruptDataError(
                        f"payload at offset {offset} has {raw_size - filled} bytes to go but "
                        f"offset {chunk_offset} holds a record of kind {kind:#04x}, not DATA"
                    )
                _, flags, chunk_raw, stored_size = self._chunk_header(
                    fmt.KIND_DATA, min(self.header.chunk_size, raw_size - filled), element_size
                )
                out = view[filled : filled + chunk_raw]
                filled += chunk_raw
                ordinal = self._chunk_seed(flags, element_size)
                data_offset = self._source.offset
                scratch = None
                job: tuple[memoryview | None, memoryview, int, int, int, int, int]
                if flags & fmt.FLAG_STORED_RAW:
                    self._source.readinto_exact(out, "a payload chunk")
                    job = (None, out, self._read_checksum(), ordinal, data_offset, 0, 0)
                else:
                    stored, scratch = self._stored_chunk(stored_size)
                    filter_id = (flags & fmt.FILTER_MASK) >> fmt.FILTER_SHIFT
                    job = (
                        stored, out, self._read_checksum(), ordinal, data_offset, filter_id,
                        element_size,
                    )
                if self._executor is None:
                    self._decode_job(*job)
                    self._release_scratch(scratch)
                else:
                    pending.append((self._executor.submit(self._decode_job, *job), scratch))
                    while len(pending) > self._max_in_flight:
                        self._finish_job(*pending.popleft())
            while pending:
                self._finish_job(*pending.popleft())
        finally:
            for future, _ in pending:
                future.cancel()
        return view

    def _stored_chunk(self, size: int) -> tuple[memoryview, np.ndarray | None]:
        """The next ``size`` stored bytes of a payload chunk, and the scratch
        buffer holding them (to give back once decoded), if any.

        In-memory inputs hand out views.  Streams read into a few reused
        scratch buffers: a fresh multi-MiB ``bytes`` per chunk would be
        mapped and page-faulted anew each time (the allocator returns such
        blocks to the system): a 256 MiB lz4 load in a fresh process took
        0.31 s that way against 0.145 s with reused buffers (one thread).
        """
        if isinstance(self._source, MemorySource):
            return self._source.view(size, "a payload chunk"), None
        scratch = self._scratch.pop() if self._scratch else None
        if scratch is None or scratch.nbytes < size:
            scratch = allocate(self.header.chunk_size, "a chunk buffer", self._source.offset)
        stored = memoryview(scratch)[:size]
        self._source.readinto_exact(stored, "a payload chunk")
        return stored, scratch

    def _release_scratch(self, scratch: np.ndarray | None) -> None:
        if scratch is not None:
            self._scratch.append(scratch)

    def _finish_job(self, future: Future[None], scratch: np.ndarray | None) -> None:
        future.result()
        self._release_scratch(scratch)

    def _decode_job(
        self,
        stored: memoryview | None,
        out: memoryview,
        expected: int,
        ordinal: int,
        offset: int,
        filter_id: int,
        element_size: int,
    ) -> None:
        if stored is None:
            if self._verify_raw_payloads:
                self._verify(out, expected, ordinal, offset, _RAW_HINT)
            return
        self._verify(stored, expected, ordinal, offset)
        assert self.codec is not None
        if filter_id == _filters.NONE:
            _decode(self.codec, stored, out, offset)
            return
        # Decoded into a reused chunk-sized buffer, then unfiltered straight
        # into the payload's memory: no payload-sized copy.
        scratch = self._filter_scratch.take(out.nbytes)
        try:
            filtered = scratch.data[: out.nbytes]
            _decode(self.codec, stored, filtered, offset)
            _filters.decode(filter_id, filtered, out, element_size)
        finally:
            self._filter_scratch.give(scratch)

    def _read_raw_payload(self) -> memoryview:
        offset = self._source.offset - 1
        head = self._source.read_exact(fmt.RAW_PAYLOAD_HEADER.size - 1, "a raw payload header")
        _, pad, element_size, size = fmt.RAW_PAYLOAD_HEADER.unpack(b"\0" + head)
        if element_size and self.header.version < fmt.FILTERS_SINCE_VERSION:
            raise CorruptDataError(
                f"raw payload header at offset {offset} has non-zero reserved bits"
            )
        if pad >= fmt.ALIGNMENT:
            raise CorruptDataError(f"raw payload at offset {offset} declares {pad} padding bytes")
        self._check_remaining(pad + size + fmt.CHECKSUM.size, "raw payload", offset)
        self._source.read_exact(pad, "raw payload padding")  # not checked: padding only
        self._payload_count += 1
        ordinal = self._next_ordinal()
        data_offset = self._source.offset
        if self._source.zero_copy:
            data = self._source.view(size, "a raw payload")
            # Verifying would read every page of a memory map: O(size) on
            # what should be an O(1) load (documented in docs/format.md).
            self._read_checksum()
            return data
        self._check_buffer_size(size, "raw payload", offset)
        target = allocate(size, "raw payload", offset)
        view = memoryview(target)
        self._source.readinto_exact(view, "a raw payload")
        expected = self._read_checksum()
        if self._verify_raw_payloads:
            self._verify(view, expected, ordinal, data_offset, _RAW_HINT)
        return view

    def _read_checksum(self) -> int:
        return fmt.CHECKSUM.unpack(self._source.read_exact(fmt.CHECKSUM.size, "a checksum"))[0]

    def _next_ordinal(self) -> int:
        ordinal = self._ordinal
        self._ordinal += 1
        return ordinal

    def _chunk_seed(self, flags: int, element_size: int) -> int:
        """The next ordinal as the checksum seed of a chunk with ``flags``
        (from version 2 the seed also holds the flags and element size)."""
        return fmt.chunk_seed(self.header.version, self._next_ordinal(), flags, element_size)

    @staticmethod
    def _verify(data: Any, expected: int, seed: int, offset: int, hint: str = "") -> None:
        if fmt.checksum(data, seed) != expected:
            raise ChecksumMismatchError(
                f"the {memoryview(data).nbytes} bytes at offset {offset} fail their checksum "
                f"(record #{seed & 0xFFFFFFFF}): the file is damaged, or records were "
                f"reordered{hint}"
            )

    # -- end of stream ---------------------------------------------------

    def finish(self) -> None:
        """After the unpickler returned: check that nothing is left over and
        read the END record, leaving the source just past this stream."""
        if self._pos != len(self._chunk):
            raise CorruptDataError(
                f"{len(self._chunk) - self._pos} opcode bytes follow the pickle's STOP opcode"
            )
        if self._payloads:
            raise CorruptDataError(
                f"{len(self._payloads)} payload record(s) were never used by the pickle stream"
            )
        if self._prefetched:
            for future, _ in self._prefetched:
                future.cancel()
            raise CorruptDataError(
                f"record of kind {fmt.KIND_OPCODES:#04x} at offset {self._prefetched[0][1]} "
                "follows the pickle's STOP opcode; expected the END record"
            )
        offset = self._source.offset - (self._lookahead is not None)
        kind = self._read_kind()
        if kind != fmt.KIND_END:
            if kind in (fmt.KIND_OPCODES, fmt.KIND_PAYLOAD, fmt.KIND_RAW_PAYLOAD, fmt.KIND_DATA):
                raise CorruptDataError(
                    f"record of kind {kind:#04x} at offset {offset} follows the pickle's STOP "
                    "opcode; expected the END record"
                )
            self._bad_kind(kind)
        layout = fmt.end_record_for(self.header.version)
        rest = self._source.read_exact(layout.size - 1, "the END record")
        end = bytes([kind]) + rest
        _, payloads, units, opcode_bytes, *trailer_size = layout.unpack(end)
        self._verify(end, self._read_checksum(), self._next_ordinal(), offset)
        self._ended = True
        if (payloads, units, opcode_bytes) != (
            self._payload_count,
            self._ordinal - 2,
            self._opcode_bytes,
        ):
            raise CorruptDataError(
                f"the END record at offset {offset} counts {payloads} payloads, {units} "
                f"records and {opcode_bytes} opcode bytes, but the stream held "
                f"{self._payload_count}, {self._ordinal - 2} and {self._opcode_bytes}"
            )
        if trailer_size:
            self.trailer = read_after_end(
                self._source, trailer_size[0], units, self._stream_start
            )


def bounded_readline(
    readline: Callable[[int], bytes], check_declared_size: Callable[[int, str], None]
) -> Callable[[], bytes]:
    """A ``readline()`` over a buffered reader's ``readline(size)`` that
    reads a line in bounded pieces and has ``check_declared_size`` refuse it
    (with :class:`SizeLimitError`) as soon as it grows past the reader's
    buffer bound, so a line never costs more memory than that bound (for the
    restricted unpickler; :meth:`ContainerReader.readline` does the same)."""

    def readline_bounded() -> bytes:
        parts = []
        length = 0
        while True:
            piece = readline(_LINE_PIECE)
            parts.append(piece)
            length += len(piece)
            check_declared_size(length, "a line of the pickle stream")
            if len(piece) < _LINE_PIECE or piece.endswith(b"\n"):
                return b"".join(parts)

    return readline_bounded


# Lines of text opcodes are read in pieces of this size when bounded.
_LINE_PIECE = 64 << 10


def _decode(codec: Codec, stored: memoryview, out: memoryview, offset: int) -> None:
    try:
        codec.decode_into(stored, out)
    except CodecPickleError:
        raise
    except Exception as exc:
        raise CorruptDataError(
            f"codec {codec.name!r} failed to decode the {stored.nbytes}-byte chunk at offset "
            f"{offset}: {exc}"
        ) from exc
