"""``codecpickle.inspect`` and ``codecpickle.untrusted_types``: what a file
holds and what it would import, without loading it.

Nothing from the file is executed or imported: the opcode stream is walked
by :mod:`codecpickle._scan`, which simulates the unpickler's stack with
plain values.  Payload data is never read or decoded.  A seekable input is
read through its file index (:mod:`codecpickle._index`: the version-2
trailer in three reads, or a scan of the record headers for version 1),
then only its opcode chunks are read, checked and decoded.  Any other input
(a pipe, a socket, a ``GzipFile``) is read once from end to end by a
container reader that steps over payload data (:mod:`codecpickle._skim`).
Either way the opcode chunks' checksums, the record layout and the END
counts are checked as a load checks them; payload checksums are not (that
would mean reading every byte: load the file to verify it).
"""

from __future__ import annotations

import bisect
import io
import itertools
import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any, BinaryIO

from . import _format as fmt
from . import _remote
from ._foreign import sniff
from ._index import ChunkInfo, StreamIndex, iter_indexes
from ._inspect_foreign import inspect_foreign
from ._reader import ContainerReader, _decode
from ._safe import make_allowlist
from ._scan import OpcodeScanner, ScanResult
from ._skim import PayloadRecord, skim_payloads
from ._sources import StreamSource, allocate
from .codecs import Codec, codec_from_header
from .errors import (
    ChecksumMismatchError,
    CorruptDataError,
    EmptyInputError,
    InvalidOptionError,
    NotCodecPickleFileError,
)

__all__ = [
    "ArrayInfo",
    "GlobalInfo",
    "Inspection",
    "ObjectInfo",
    "PayloadInfo",
    "inspect",
    "untrusted_types",
]

#: Version of the :meth:`Inspection.to_dict` layout; it changes only when a
#: member is removed or changes meaning (new members may be added).
SCHEMA_VERSION = 1

# -- the result ------------------------------------------------------------------


@dataclass(frozen=True)
class PayloadInfo:
    """One payload record (an out-of-band buffer), in stream order.

    ``kind`` is ``"coded"`` (DATA chunks through the codec, some possibly
    stored raw) or ``"raw"`` (stored as is, aligned); ``offset`` counts
    from the start of the file (or of the input, for file objects).
    """

    index: int
    offset: int
    kind: str
    raw_bytes: int
    stored_bytes: int
    chunks: int


@dataclass(frozen=True)
class ArrayInfo:
    """An array the stream builds, read from its constructor call.

    ``payload`` is the index of the payload record holding its data, or
    None when the data travels in-band inside the opcode stream (small
    arrays of compressed streams); ``stored_bytes`` is then None, as the
    data is compressed together with the opcodes around it.
    """

    shape: tuple[int, ...]
    dtype: str
    order: str
    raw_bytes: int
    stored_bytes: int | None
    payload: int | None
    constructor: str


@dataclass(frozen=True)
class GlobalInfo:
    """A global (class or function) the stream would import.

    ``allowed`` says whether a restricted load (``safe=True`` plus the
    ``allow=`` given to :func:`inspect`) admits it; ``opcode`` is how the
    stream names it first (``GLOBAL``, ``STACK_GLOBAL``, ``INST``, or
    ``getattr`` for an attribute fetched from a class), ``count`` how many
    times it is named.
    """

    name: str
    module: str
    qualname: str
    allowed: bool
    opcode: str
    count: int


@dataclass(frozen=True)
class ObjectInfo:
    """One object's stream (one ``dump``) within the input."""

    #: Where the stream starts in the input, in bytes.
    offset: int
    format_version: int
    codec: str
    codec_params: dict[str, Any]
    chunk_size: int
    #: The header's whole metadata object, as written.
    header: dict[str, Any]
    #: Bytes the stream occupies in the input, headers and checksums included.
    stored_bytes: int
    #: Raw (uncompressed) opcode bytes plus payload bytes.
    raw_bytes: int
    opcode_raw_bytes: int
    opcode_stored_bytes: int
    payload_raw_bytes: int
    payload_stored_bytes: int
    #: raw_bytes / stored_bytes.
    ratio: float
    pickle_protocol: int | None
    payloads: tuple[PayloadInfo, ...]
    arrays: tuple[ArrayInfo, ...]
    globals: tuple[GlobalInfo, ...]
    #: Extension codes (EXT1/EXT2/EXT4) the stream uses; they name globals
    #: through the process's ``copyreg`` registry, which is not consulted.
    extension_codes: tuple[int, ...]
    #: STACK_GLOBAL opcodes whose names are not literal strings in the
    #: stream (a restricted load still checks what they name when it runs).
    unresolved_globals: int
    #: The manifest of a version-2 stream's trailer (the writer's
    #: environment, see docs/format.md); None for version 1.
    manifest: dict[str, Any] | None
    #: ``"codecpickle"``, or for the other files ``load`` reads
    #: ``"pickle"`` (a plain pickle stream) or ``"joblib"`` (a pickle with
    #: joblib's arrays between its opcodes).  Those have ``format_version``
    #: 0, ``codec`` the compression around the stream (``"none"``, ``"gzip"``,
    #: ``"zstd"`` ...), no header, payloads or manifest, their array data
    #: counted in ``payload_raw_bytes``, and offsets and raw sizes counted in
    #: the decompressed stream.
    format: str = "codecpickle"


@dataclass(frozen=True)
class Inspection:
    """What :func:`inspect` found: one :class:`ObjectInfo` per object
    dumped into the input, in order."""

    #: The path or URL inspected, or None for a file object or bytes.
    path: str | None
    objects: tuple[ObjectInfo, ...]

    @property
    def globals(self) -> tuple[GlobalInfo, ...]:
        """Every global named by any object, first occurrence first."""
        seen: dict[str, GlobalInfo] = {}
        for obj in self.objects:
            for info in obj.globals:
                seen.setdefault(info.name, info)
        return tuple(seen.values())

    @property
    def untrusted(self) -> list[str]:
        """Sorted ``"module.qualname"`` names a restricted load refuses."""
        return sorted(info.name for info in self.globals if not info.allowed)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``json.dumps`` takes it as is).

        Layout (``schema`` = 1): ``{"schema", "path", "objects": [...]}``;
        each object has the members of :class:`ObjectInfo` (tuples become
        lists; ``payloads``, ``arrays`` and ``globals`` are lists of dicts
        with the members of :class:`PayloadInfo`, :class:`ArrayInfo` and
        :class:`GlobalInfo`).  Members are only ever added.
        """
        return {
            "schema": SCHEMA_VERSION,
            "path": self.path,
            "objects": [_jsonable(asdict(obj)) for obj in self.objects],
        }

    def __str__(self) -> str:
        return "\n".join(_render(self))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value


def _size(nbytes: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if nbytes < 1024 or unit == "GiB":
            return f"{nbytes} B" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024  # type: ignore[assignment]
    raise AssertionError  # unreachable


def _render(found: Inspection) -> Iterator[str]:
    count = len(found.objects)
    yield f"{found.path or '<file object>'}: {count} object{'s' * (count != 1)}"
    for number, obj in enumerate(found.objects, 1):
        params = ", ".join(f"{key}={value!r}" for key, value in sorted(obj.codec_params.items()))
        foreign = obj.format != "codecpickle"
        if foreign:
            wrapped = "" if obj.codec == "none" else f", {obj.codec}-compressed"
            protocol = "0 or 1" if obj.pickle_protocol is None else obj.pickle_protocol
            yield (
                f"object {number} at offset {obj.offset}: a {obj.format} file{wrapped} (not "
                f"codecpickle's format), pickle protocol {protocol}"
            )
        else:
            yield (
                f"object {number} at offset {obj.offset}: format version {obj.format_version}, "
                f"codec {obj.codec}{f' ({params})' if params else ''}, "
                f"pickle protocol {obj.pickle_protocol}"
            )
        data = (
            f"array data {_size(obj.payload_raw_bytes)} between the opcodes"
            if foreign
            else f"payloads {_size(obj.payload_raw_bytes)} in {len(obj.payloads)} record(s)"
        )
        yield (
            f"  size: {_size(obj.stored_bytes)} stored, {_size(obj.raw_bytes)} raw "
            f"(ratio {obj.ratio:.2f}); opcodes {_size(obj.opcode_raw_bytes)}, {data}"
        )
        yield f"  arrays: {len(obj.arrays)}"
        for array in obj.arrays:
            where = (
                f"payload #{array.payload}, {_size(array.stored_bytes or 0)} stored"
                if array.payload is not None
                else "in-band"
            )
            if array.dtype.endswith("O8") and not array.raw_bytes:
                where = "Python objects, in-band"
            yield (
                f"    {array.dtype} {array.shape} order {array.order}: "
                f"{_size(array.raw_bytes)} ({where})"
            )
        refused = sum(not info.allowed for info in obj.globals)
        yield f"  globals: {len(obj.globals)} ({refused} not allowed under safe=True)"
        for info in obj.globals:
            yield f"    {'ok     ' if info.allowed else 'REFUSED'} {info.name}"
        if obj.extension_codes:
            yield f"  extension codes (refused): {list(obj.extension_codes)}"
        if obj.unresolved_globals:
            yield f"  globals named by computed strings: {obj.unresolved_globals}"
        if obj.manifest is not None:
            yield f"  written with: {json.dumps(obj.manifest, sort_keys=True)}"


# -- the public functions ------------------------------------------------------------


def inspect(
    file: str | os.PathLike[str] | BinaryIO | bytes,
    *,
    allow: Iterable[str | type | Callable[..., Any]] = (),
    storage_options: dict[str, Any] | None = None,
) -> Inspection:
    """Describe what ``file`` holds without loading it.

    ``file`` is a path, a URL (``s3://``, ``memory://``, any fsspec
    protocol, with ``storage_options`` for its filesystem; read with range
    requests), a binary file object (read from its current position; pipes
    work) or the bytes of a stream.  For every object
    dumped into it, one after another: the format version, codec and
    parameters, header metadata, sizes and ratio, every payload record,
    every array with shape, dtype, order and size, and every global the
    object would import, marked allowed or not under ``safe=True`` (with
    ``allow`` added, as for :func:`codecpickle.load`).  Plain pickles (any
    protocol, bare or compressed) and joblib files, which ``load`` also
    reads, are described the same way (``format`` ``"pickle"`` or
    ``"joblib"``): their globals, and the arrays whose shape and dtype the
    stream states (joblib's wrappers, numpy's own reductions).

    Nothing in the file is executed or imported, and payload data is not
    decoded: a seekable input is sought past it.  The header, opcode chunks
    and END records are verified; payload checksums are not.  Damaged or
    hostile input raises a :class:`~codecpickle.errors.CodecPickleError`.
    """
    allowed = make_allowlist(True, allow)
    assert allowed is not None
    file, remote = _remote.route(file, storage_options)
    if remote is not None:
        with _remote.open_for_reading(remote) as handle:
            return Inspection(remote.url, _inspect_input(handle, allowed))
    if isinstance(file, bytes | bytearray | memoryview):
        return Inspection(None, _inspect_input(io.BytesIO(file), allowed))
    if isinstance(file, str | os.PathLike):
        with open(file, "rb") as handle:
            return Inspection(os.fspath(file), _inspect_input(handle, allowed))
    if not callable(getattr(file, "read", None)):
        raise InvalidOptionError(
            "inspect() expects a path, a binary file object or bytes. "
            f"Got {type(file).__name__} instead."
        )
    return Inspection(None, _inspect_input(file, allowed))


def untrusted_types(
    file: str | os.PathLike[str] | BinaryIO | bytes,
    allow: Iterable[str | type | Callable[..., Any]] = (),
    *,
    storage_options: dict[str, Any] | None = None,
) -> list[str]:
    """The ``"module.qualname"`` globals in ``file`` that ``safe=True``
    (plus ``allow``) does not admit, sorted; nothing is executed.

    Review them, then ``load(file, allow=untrusted_types(file))``.
    Extension codes and globals named by computed strings cannot be
    listed by name (see :func:`inspect`); a restricted load still refuses
    them if they are not allowed.
    """
    return inspect(file, allow=allow, storage_options=storage_options).untrusted


# -- walking the input -------------------------------------------------------------
# Seekable inputs of known size are read through the file index (the
# version-2 trailer: three reads, or a scan of the record headers for
# version 1), then only their opcode chunks.  Other inputs (pipes, sockets,
# GzipFile) are read once from end to end, stepping over payload data.


def _inspect_input(file: Any, allowed: frozenset[str]) -> tuple[ObjectInfo, ...]:
    size = _remaining(file) if _seekable(file) else None
    if size is None:
        # Plain pickles and joblib files, as load() finds them: from the
        # first bytes (served again to whichever walk follows).
        file, foreign = sniff(file)
        if foreign is not None:
            return inspect_foreign(file, foreign, allowed, _summary)
        return _inspect_sequential(file, allowed)
    start = file.tell()
    try:
        indexes = list(iter_indexes(file))  # leaves the position where it was
    except NotCodecPickleFileError:
        # Not looked for first: over a URL, reading the first bytes of a
        # codecpickle file would cost a request its index does not need.
        file.seek(start)
        file, foreign = sniff(file)
        if foreign is None:
            raise
        return inspect_foreign(file, foreign, allowed, _summary)
    objects = tuple(_inspect_indexed(file, index, start, allowed) for index in indexes)
    file.seek(indexes[-1].end)  # just past the last stream, as load leaves it
    return objects


def _seekable(file: Any) -> bool:
    try:
        return bool(file.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def _remaining(file: Any) -> int | None:
    """Bytes from the position to the end; None when the file cannot say
    (a GzipFile cannot seek from its end: it is then read through)."""
    try:
        start = file.tell()
        end = file.seek(0, io.SEEK_END)
        file.seek(start)
    except (OSError, ValueError):
        return None
    return int(end - start)


def _summary(
    *,
    offset: int,
    version: int,
    meta: dict[str, Any],
    stored: int,
    opcode_stored: int,
    scan: ScanResult,
    payloads: tuple[PayloadInfo, ...],
    manifest: dict[str, Any] | None,
    allowed: frozenset[str],
    format: str = "codecpickle",
) -> ObjectInfo:
    # Array data a joblib stream carries between its opcodes counts as
    # payload, not opcodes.
    opcode_raw = scan.opcode_bytes - scan.inline_bytes
    payload_raw = sum(p.raw_bytes for p in payloads) + scan.inline_bytes
    raw = opcode_raw + payload_raw
    return ObjectInfo(
        offset=offset,
        format_version=version,
        codec=meta["codec"],
        codec_params=dict(meta.get("params", {})),
        chunk_size=meta["chunk_size"],
        header=meta,
        stored_bytes=stored,
        raw_bytes=raw,
        opcode_raw_bytes=opcode_raw,
        opcode_stored_bytes=opcode_stored,
        payload_raw_bytes=payload_raw,
        payload_stored_bytes=sum(p.stored_bytes for p in payloads),
        ratio=raw / stored if stored else 0.0,
        pickle_protocol=scan.protocol,
        payloads=payloads,
        arrays=_arrays(scan, payloads),
        globals=_globals(scan, allowed),
        extension_codes=tuple(code for code, _ in scan.extensions),
        unresolved_globals=len(scan.unresolved),
        manifest=manifest,
        format=format,
    )


# -- through the index ----------------------------------------------------------------


def _inspect_indexed(
    file: Any, index: StreamIndex, start: int, allowed: frozenset[str]
) -> ObjectInfo:
    meta = index.meta
    name = meta["codec"]
    codec = None if name == fmt.NO_CODEC else codec_from_header(
        name, meta.get("params", {}), meta.get("provider")
    )
    chunks = index.opcode_chunks
    # Where each opcode chunk starts in the opcode stream, to find the
    # chunk a NEXT_BUFFER is in: its payload must come before that chunk.
    starts = list(itertools.accumulate((c.raw_size for c in chunks), initial=0))
    payloads = index.payloads
    scanner: OpcodeScanner

    def check_buffer(number: int) -> None:
        if number >= len(payloads):
            raise CorruptDataError(
                f"the pickle stream asks for out-of-band buffer #{number + 1}, but the stream "
                f"has {len(payloads)} payload record(s)"
            )
        chunk = chunks[bisect.bisect_right(starts, scanner.opcode_offset) - 1]
        if payloads[number].offset > chunk.offset:
            raise CorruptDataError(
                f"payload #{number + 1} at offset {payloads[number].offset} follows the opcode "
                f"chunk at offset {chunk.offset} that consumes it"
            )

    scanner = OpcodeScanner(_indexed_chunks(file, chunks, codec), on_next_buffer=check_buffer)
    scan = scanner.run()
    if scan.opcode_bytes != index.opcode_bytes:
        raise CorruptDataError(
            f"{index.opcode_bytes - scan.opcode_bytes} opcode bytes follow the pickle's STOP "
            f"opcode in the stream at offset {index.offset}"
        )
    if scan.buffers != len(payloads):
        raise CorruptDataError(
            f"{len(payloads) - scan.buffers} payload record(s) of the stream at offset "
            f"{index.offset} are never used by the pickle stream"
        )
    return _summary(
        offset=index.offset - start,
        version=index.version,
        meta=meta,
        stored=index.size,
        opcode_stored=sum(chunk.end - chunk.offset for chunk in chunks),
        scan=scan,
        payloads=tuple(
            PayloadInfo(
                p.number,
                p.offset - start,
                "coded" if p.kind == "payload" else "raw",
                p.raw_size,
                p.record_size,
                len(p.chunks) or 1,
            )
            for p in payloads
        ),
        manifest=index.manifest,
        allowed=allowed,
    )


def _indexed_chunks(file: Any, chunks: Iterable[ChunkInfo], codec: Codec | None) -> Iterator[Any]:
    """Each opcode chunk read at its offset, checked and decoded."""
    for chunk in chunks:
        file.seek(chunk.data_offset)
        data = StreamSource(file).read_exact(
            chunk.stored_size + fmt.CHECKSUM.size, "an opcode chunk"
        )
        stored = memoryview(data)[: chunk.stored_size]
        (expected,) = fmt.CHECKSUM.unpack_from(data, chunk.stored_size)
        if fmt.checksum(stored, chunk.seed) != expected:
            raise ChecksumMismatchError(
                f"the opcode chunk at offset {chunk.offset} fails its checksum (record "
                f"#{chunk.ordinal}): the file is damaged, or records were reordered"
            )
        if chunk.stored_raw:
            yield stored
            continue
        if codec is None:
            raise CorruptDataError(
                f"compressed chunk at offset {chunk.offset} in a stream written without a codec"
            )
        out = allocate(chunk.raw_size, "an opcode chunk", chunk.offset)
        _decode(codec, stored, out.data, chunk.offset)
        yield out


# -- read through (pipes) ---------------------------------------------------------------


def _inspect_sequential(file: Any, allowed: frozenset[str]) -> tuple[ObjectInfo, ...]:
    objects: list[ObjectInfo] = []
    offset = 0
    while True:
        source = _RecordingSource(file)
        try:
            obj = _inspect_stream(source, offset, allowed)
        except EmptyInputError:
            if objects:
                return tuple(objects)  # the end of the input after the last object
            raise
        objects.append(obj)
        offset += obj.stored_bytes


class _RecordingSource(StreamSource):
    """A stream source that keeps the bytes it reads until told to stop
    (the header, whose metadata the reader does not hand out)."""

    def __init__(self, file: Any) -> None:
        super().__init__(file)
        self.recorded: list[bytes] | None = []

    def read_upto(self, nbytes: int) -> bytes:
        data = super().read_upto(nbytes)
        if self.recorded is not None:
            self.recorded.append(data)
        return data

    def read_exact(self, nbytes: int, what: str) -> bytes:
        data = super().read_exact(nbytes, what)
        if self.recorded is not None:
            self.recorded.append(data)
        return data


def _inspect_stream(source: _RecordingSource, start: int, allowed: frozenset[str]) -> ObjectInfo:
    reader = ContainerReader(source)
    assert source.recorded is not None
    header_bytes = b"".join(source.recorded)
    source.recorded = None
    meta = json.loads(header_bytes[fmt.HEADER_FIXED.size : -fmt.CHECKSUM.size])
    version = fmt.HEADER_FIXED.unpack_from(header_bytes)[1]

    records: list[PayloadRecord] = []
    skim_payloads(reader, records.append)
    opcode_stored = _count_opcode_records(reader)
    buffers = reader.buffers()
    scanner = OpcodeScanner(_opcode_chunks(reader), on_next_buffer=lambda _: next(buffers))
    scan = scanner.run()
    reader.unread(scanner.unused())
    reader.finish()
    return _summary(
        offset=start,
        version=version,
        meta=meta,
        stored=source.offset,
        opcode_stored=opcode_stored[0],
        scan=scan,
        payloads=tuple(
            PayloadInfo(index, start + r.offset, r.kind, r.raw_bytes, r.stored_bytes, r.chunks)
            for index, r in enumerate(records)
        ),
        manifest=None if reader.trailer is None else reader.trailer.manifest,
        allowed=allowed,
    )


def _count_opcode_records(reader: ContainerReader) -> list[int]:
    """A running total of the bytes of the opcode chunk records ``reader``
    reads (in a one-item list)."""
    total = [0]
    read_chunk = reader._read_opcode_chunk

    def counted() -> Any:
        job = read_chunk()
        total[0] += fmt.CHUNK_HEADER.size + job[2].nbytes + fmt.CHECKSUM.size
        return job

    reader._read_opcode_chunk = counted  # type: ignore[method-assign]
    return total


def _opcode_chunks(reader: ContainerReader) -> Iterator[memoryview]:
    """The opcode bytes, one decoded chunk at a time (the reader raises
    CorruptDataError at the END record: a walk stops at STOP before)."""
    while True:
        yield reader._take(1 << 62)


def _arrays(scan: ScanResult, payloads: tuple[PayloadInfo, ...]) -> tuple[ArrayInfo, ...]:
    arrays = []
    for call in scan.arrays:
        if call.buffer is not None:
            payload = payloads[call.buffer]
            raw, stored = payload.raw_bytes, payload.stored_bytes
        else:
            raw, stored = call.inband_bytes or 0, None
        arrays.append(
            ArrayInfo(
                call.shape, call.dtype, call.order, raw, stored, call.buffer, call.constructor
            )
        )
    return tuple(arrays)


def _globals(scan: ScanResult, allowed: frozenset[str]) -> tuple[GlobalInfo, ...]:
    counts: dict[str, int] = {}
    first: dict[str, Any] = {}
    for ref in scan.globals:
        counts[ref.dotted] = counts.get(ref.dotted, 0) + 1
        first.setdefault(ref.dotted, ref)
    return tuple(
        GlobalInfo(name, ref.module, ref.name, name in allowed, ref.opcode, counts[name])
        for name, ref in first.items()
    )
