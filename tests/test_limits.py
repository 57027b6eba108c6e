"""Declared sizes are never trusted: hostile size fields fail before any
large allocation, with a bound (``max_buffer_size``) callers can set."""

from __future__ import annotations

import io
import json
import os
import resource
import struct
import subprocess
import sys
import textwrap
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import codecpickle
from codecpickle import _format as fmt


def header(codec: str = "none", chunk_size: int = 1 << 20) -> bytes:
    """A version-1 header (readers accept version 1 forever, and its END
    record has no trailer to build): the records after it are the same in
    both versions."""
    params = {} if codec == "none" else {"level": 3}
    meta = json.dumps({"codec": codec, "params": params, "chunk_size": chunk_size}).encode()
    head = fmt.HEADER_FIXED.pack(fmt.MAGIC, 1, 0, len(meta)) + meta
    return head + fmt.CHECKSUM.pack(fmt.checksum(head, 0))


def chunk(kind: int, stored: bytes, ordinal: int, raw_size: int | None = None) -> bytes:
    flags = fmt.FLAG_STORED_RAW if raw_size is None else 0
    raw = len(stored) if raw_size is None else raw_size
    head = fmt.CHUNK_HEADER.pack(kind, flags, raw, len(stored))
    return head + stored + fmt.CHECKSUM.pack(fmt.checksum(stored, ordinal))


def end(payloads: int, units: int, opcode_bytes: int) -> bytes:
    record = fmt.END_RECORD.pack(fmt.KIND_END, payloads, units, opcode_bytes)
    return record + fmt.CHECKSUM.pack(fmt.checksum(record, units + 1))


def opcode_stream(opcodes: bytes) -> bytes:
    return header() + chunk(fmt.KIND_OPCODES, opcodes, 1) + end(0, 1, len(opcodes))


TERABYTE = 1 << 40


class Pipe(io.RawIOBase):
    """A non-seekable stream of unknown size (no fileno, seek or tell)."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._data.readinto(buffer)


LOADERS: dict[str, Callable[..., Any]] = {
    "loads": lambda data, **kw: codecpickle.loads(data, **kw),
    "BytesIO": lambda data, **kw: codecpickle.load(io.BytesIO(data), **kw),
    "pipe": lambda data, **kw: codecpickle.load(Pipe(data), **kw),
}

HOSTILE_SIZES = {
    # A payload through the codec claiming a terabyte.
    "payload": lambda: header("zstd") + fmt.PAYLOAD_HEADER.pack(fmt.KIND_PAYLOAD, 0, 0, TERABYTE),
    # A raw (uncompressed) payload claiming a terabyte.
    "raw_payload": lambda: header() + fmt.RAW_PAYLOAD_HEADER.pack(
        fmt.KIND_RAW_PAYLOAD, fmt.padding_for(len(header())), 0, TERABYTE
    ),
    # Largest size field there is: "negative" when read as signed.
    "payload_u64_max": lambda: header("zstd")
    + fmt.PAYLOAD_HEADER.pack(fmt.KIND_PAYLOAD, 0, 0, (1 << 64) - 1),
    # A compressed opcode chunk claiming 1 GiB from 24 stored bytes.
    "opcode_chunk": lambda: header("zstd", fmt.MAX_CHUNK_SIZE)
    + chunk(fmt.KIND_OPCODES, b"\x28\xb5\x2f\xfd" + bytes(20), 1, raw_size=fmt.MAX_CHUNK_SIZE),
    # Pickle opcodes that make the unpickler allocate what they declare.
    "BINBYTES8": lambda: opcode_stream(b"\x80\x05\x8e" + struct.pack("<Q", TERABYTE) + b"ab"),
    "BINUNICODE8": lambda: opcode_stream(b"\x80\x05\x8d" + struct.pack("<Q", 8 << 30) + b"ab"),
    "BYTEARRAY8": lambda: opcode_stream(b"\x80\x05\x96" + struct.pack("<Q", 8 << 30) + b"ab"),
    "FRAME": lambda: opcode_stream(b"\x80\x05\x95" + struct.pack("<Q", 8 << 30) + b"ab"),
    "BINBYTES": lambda: opcode_stream(b"\x80\x05B" + struct.pack("<I", (4 << 30) - 1) + b"ab"),
    "BINUNICODE": lambda: opcode_stream(b"\x80\x05X" + struct.pack("<I", (4 << 30) - 1) + b"ab"),
    "BINSTRING": lambda: opcode_stream(b"\x80\x02T" + struct.pack("<i", (2 << 30) - 1) + b"ab"),
    "LONG4": lambda: opcode_stream(b"\x80\x02\x8b" + struct.pack("<i", (2 << 30) - 1) + b"ab"),
}


@pytest.mark.parametrize("safe", [False, True], ids=["normal", "safe"])
@pytest.mark.parametrize("loader", sorted(LOADERS))
@pytest.mark.parametrize("case", sorted(HOSTILE_SIZES))
def test_hostile_sizes_fail_cleanly(case: str, loader: str, safe: bool) -> None:
    # safe=True runs a different unpickler (pure Python), checked here too.
    data = HOSTILE_SIZES[case]()
    with pytest.raises(codecpickle.FileFormatError):
        LOADERS[loader](data, safe=safe)


@pytest.mark.parametrize("case", sorted(HOSTILE_SIZES))
def test_hostile_sizes_do_not_grow_memory(case: str) -> None:
    # In a fresh process, so that the peak RSS belongs to this load alone.
    script = textwrap.dedent(
        f"""
        import io, resource, sys
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        import test_limits as t
        data = t.HOSTILE_SIZES[{case!r}]()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        for load in t.LOADERS.values():
            for safe in (False, True):
                try:
                    load(data, safe=safe)
                except t.codecpickle.CodecPickleError:
                    pass
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert int(out.stdout.split()[-1]) < 64, f"peak RSS grew by {out.stdout.strip()} MiB"


@pytest.mark.parametrize("loader", sorted(LOADERS))
def test_max_buffer_size_refuses_large_payloads(loader: str) -> None:
    array = np.arange(1 << 17, dtype=np.int64)  # 1 MiB
    for compress in (None, "zstd"):
        data = codecpickle.dumps({"a": array}, compress=compress)
        loaded = LOADERS[loader](data, max_buffer_size=2 << 20)
        np.testing.assert_array_equal(loaded["a"], array)
        with pytest.raises(codecpickle.SizeLimitError, match="max_buffer_size"):
            LOADERS[loader](data, max_buffer_size=512 << 10)


@pytest.mark.parametrize("safe", [False, True], ids=["normal", "safe"])
def test_max_buffer_size_bounds_pickled_bytes(safe: bool) -> None:
    data = codecpickle.dumps(b"x" * (1 << 20), compress="zstd")
    assert codecpickle.loads(data, max_buffer_size=2 << 20, safe=safe) == b"x" * (1 << 20)
    with pytest.raises(codecpickle.SizeLimitError):
        codecpickle.loads(data, max_buffer_size=1 << 19, safe=safe)


def test_path_load_takes_the_limit(tmp_path: Any) -> None:
    path = tmp_path / "a.cpkl"
    codecpickle.dump(np.zeros(1 << 18), path)
    with pytest.raises(codecpickle.SizeLimitError):
        codecpickle.load(path, max_buffer_size=1 << 20)
    assert codecpickle.load(path, max_buffer_size=4 << 20).shape == (1 << 18,)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "1GB"])
def test_bad_max_buffer_size_is_an_option_error(bad: Any) -> None:
    with pytest.raises(codecpickle.InvalidOptionError):
        codecpickle.loads(codecpickle.dumps(1), max_buffer_size=bad)


def test_default_bound_is_physical_memory() -> None:
    from codecpickle._sources import default_buffer_limit

    limit = default_buffer_limit()
    assert 1 << 28 <= limit < 1 << 50
    assert resource.getpagesize() > 0
