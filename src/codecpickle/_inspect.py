"""``codecpickle.inspect`` and ``codecpickle.untrusted_types``: what a file
holds and what it would import, without loading it.

Nothing from the file is executed or imported: the opcode stream is walked
by :mod:`codecpickle._scan`, which simulates the unpickler's stack with
plain values.  Payload data is never decoded: the record walk below reads
each payload's headers and steps over its stored bytes (a seek in a
seekable file, a read-through otherwise).  The header, every opcode chunk
(checksum and decoding) and the END record are checked as a load checks
them; payload checksums are not (that would mean reading every byte: load
the file to verify it).
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any, BinaryIO

import numpy as np

from . import _format as fmt
from ._reader import ContainerReader
from ._safe import make_allowlist
from ._scan import OpcodeScanner, ScanResult
from ._skim import PayloadRecord, skim_payloads
from ._sources import StreamSource
from .errors import EmptyInputError, InvalidOptionError

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

_SKIP_PIECE = 1 << 20  # read-through step over payload bytes of a pipe


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
    #: The writer's environment (Python, codecpickle and library
    #: versions) when the file records one; None otherwise.
    manifest: dict[str, Any] | None


@dataclass(frozen=True)
class Inspection:
    """What :func:`inspect` found: one :class:`ObjectInfo` per object
    dumped into the input, in order."""

    #: The path inspected, or None for a file object.
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
        yield (
            f"object {number} at offset {obj.offset}: format version {obj.format_version}, "
            f"codec {obj.codec}{f' ({params})' if params else ''}, "
            f"pickle protocol {obj.pickle_protocol}"
        )
        yield (
            f"  size: {_size(obj.stored_bytes)} stored, {_size(obj.raw_bytes)} raw "
            f"(ratio {obj.ratio:.2f}); opcodes {_size(obj.opcode_raw_bytes)}, "
            f"payloads {_size(obj.payload_raw_bytes)} in {len(obj.payloads)} record(s)"
        )
        yield f"  arrays: {len(obj.arrays)}"
        for array in obj.arrays:
            where = (
                f"payload #{array.payload}, {_size(array.stored_bytes or 0)} stored"
                if array.payload is not None
                else "in-band"
            )
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
) -> Inspection:
    """Describe what ``file`` holds without loading it.

    ``file`` is a path, a binary file object (read from its current
    position; pipes work) or the bytes of a stream.  For every object
    dumped into it, one after another: the format version, codec and
    parameters, header metadata, sizes and ratio, every payload record,
    every array with shape, dtype, order and size, and every global the
    object would import, marked allowed or not under ``safe=True`` (with
    ``allow`` added, as for :func:`codecpickle.load`).

    Nothing in the file is executed or imported, and payload data is not
    decoded: a seekable input is sought past it.  The header, opcode chunks
    and END records are verified; payload checksums are not.  Damaged or
    hostile input raises a :class:`~codecpickle.errors.CodecPickleError`.
    """
    allowed = make_allowlist(True, allow)
    assert allowed is not None
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
) -> list[str]:
    """The ``"module.qualname"`` globals in ``file`` that ``safe=True``
    (plus ``allow``) does not admit, sorted; nothing is executed.

    Review them, then ``load(file, allow=untrusted_types(file))``.
    Extension codes and globals named by computed strings cannot be
    listed by name (see :func:`inspect`); a restricted load still refuses
    them if they are not allowed.
    """
    return inspect(file, allow=allow).untrusted


# -- walking the input -------------------------------------------------------------


def _inspect_input(file: Any, allowed: frozenset[str]) -> tuple[ObjectInfo, ...]:
    size = _remaining(file) if _seekable(file) else None
    seekable = size is not None
    objects: list[ObjectInfo] = []
    offset = 0
    while size is None or offset < size:
        source = _SkippingSource(file, seekable, None if size is None else size - offset)
        try:
            obj = _inspect_stream(source, offset, allowed)
        except EmptyInputError:
            if objects:
                break  # the end of a pipe after the last object
            raise
        objects.append(obj)
        offset += obj.stored_bytes
    if not objects:
        raise EmptyInputError("the input is empty: expected a codecpickle stream")
    return tuple(objects)


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


class _SkippingSource(StreamSource):
    """A stream source that can step over bytes (seeking when it can) and
    keeps the header bytes it reads."""

    def __init__(self, file: Any, seekable: bool, size: int | None) -> None:
        super().__init__(file, size)
        self._file = file
        self._seekable = seekable
        self._buffer: memoryview | None = None
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

    def skip(self, nbytes: int, what: str) -> None:
        """Step over ``nbytes`` by seeking, or by reading through when the
        input cannot seek; TruncatedFileError if it ends first."""
        remaining = self.remaining()
        if not self._seekable or remaining is None:
            left = nbytes
            while left:
                step = min(left, _SKIP_PIECE)
                self.readinto_exact(self._scratch(step), what)
                left -= step
            return
        if nbytes > remaining:
            self._truncated(what, nbytes, remaining)
        self._file.seek(nbytes, io.SEEK_CUR)
        self.offset += nbytes

    def _scratch(self, size: int) -> memoryview:
        if self._buffer is None or len(self._buffer) < size:
            self._buffer = np.empty(size, dtype=np.uint8).data
        return self._buffer[:size]


def _inspect_stream(source: _SkippingSource, start: int, allowed: frozenset[str]) -> ObjectInfo:
    reader = ContainerReader(source)
    records: list[PayloadRecord] = []
    skim_payloads(reader, records.append)
    assert source.recorded is not None
    header_bytes = b"".join(source.recorded)
    source.recorded = None
    meta = json.loads(header_bytes[fmt.HEADER_FIXED.size : -fmt.CHECKSUM.size])
    version = fmt.HEADER_FIXED.unpack_from(header_bytes)[1]

    buffers = reader.buffers()
    scanner = OpcodeScanner(
        _opcode_chunks(reader), on_next_buffer=lambda _: next(buffers)
    )
    scan = scanner.run()
    reader.unread(scanner.unused())
    reader.finish()

    payloads = tuple(
        PayloadInfo(index, start + r.offset, r.kind, r.raw_bytes, r.stored_bytes, r.chunks)
        for index, r in enumerate(records)
    )
    opcode_raw = scan.opcode_bytes
    payload_raw = sum(p.raw_bytes for p in payloads)
    payload_stored = sum(p.stored_bytes for p in payloads)
    raw = opcode_raw + payload_raw
    stored = source.offset
    framing = len(header_bytes) + fmt.END_RECORD.size + fmt.CHECKSUM.size
    return ObjectInfo(
        offset=start,
        format_version=version,
        codec=meta["codec"],
        codec_params=dict(meta.get("params", {})),
        chunk_size=meta["chunk_size"],
        header=meta,
        stored_bytes=stored,
        raw_bytes=raw,
        opcode_raw_bytes=opcode_raw,
        opcode_stored_bytes=stored - payload_stored - framing,
        payload_raw_bytes=payload_raw,
        payload_stored_bytes=payload_stored,
        ratio=raw / stored if stored else 0.0,
        pickle_protocol=scan.protocol,
        payloads=payloads,
        arrays=_arrays(scan, payloads),
        globals=_globals(scan, allowed),
        extension_codes=tuple(code for code, _ in scan.extensions),
        unresolved_globals=len(scan.unresolved),
        manifest=None,
    )


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
