"""Text opcodes (protocols 0-3) read lines across opcode chunks, and a line
is a buffer the input sizes: bounded by ``max_buffer_size`` in normal and
restricted loads alike."""

from __future__ import annotations

import io
import pickle

import pytest

import codecpickle
from codecpickle import _format as fmt
from codecpickle._writer import ContainerWriter
from codecpickle.codecs import resolve_compress

CHUNK = fmt.MIN_CHUNK_SIZE


def container(opcodes: bytes, compress: str | None = None) -> bytes:
    """A valid stream holding ``opcodes`` as they are, in chunks of CHUNK."""
    out = io.BytesIO()
    writer = ContainerWriter(out, resolve_compress(compress), chunk_size=CHUNK)
    writer.write(opcodes)
    writer.finish()
    return out.getvalue()


@pytest.mark.parametrize("compress", [None, "zstd"])
@pytest.mark.parametrize("shift", range(-3, 4))
@pytest.mark.parametrize("safe", [False, True])
def test_newline_at_every_position_around_a_chunk_boundary(compress, shift, safe):
    # Protocol 0 writes ("a...a", "b") as "(Va...a\n...": the text's
    # newline lands on byte CHUNK + shift of the opcode stream, the first
    # byte of the second chunk when shift is 0.
    text = "a" * (CHUNK - 2 + shift)
    opcodes = pickle.dumps((text, "b"), protocol=0)
    assert opcodes.index(b"\n") == CHUNK + shift
    loaded = codecpickle.loads(container(opcodes, compress), safe=safe)
    assert loaded == (text, "b")


def test_lines_spanning_several_chunks():
    text = "xyz" * (3 * CHUNK)
    opcodes = pickle.dumps({"k": text, "n": 12345678901234567890}, protocol=0)
    assert codecpickle.loads(container(opcodes)) == {"k": text, "n": 12345678901234567890}


@pytest.mark.parametrize("safe", [False, True])
def test_a_line_longer_than_max_buffer_size_is_refused(safe):
    opcodes = pickle.dumps("a" * 20_000, protocol=0)
    data = container(opcodes)
    # A restricted load may refuse it first for its opcode budget (derived
    # from the same bound); a normal load has only the line bound.
    with pytest.raises(codecpickle.SizeLimitError, match=None if safe else "line"):
        codecpickle.loads(data, safe=safe, max_buffer_size=10_000)
    assert codecpickle.loads(data, safe=safe, max_buffer_size=40_000) == "a" * 20_000


@pytest.mark.parametrize("safe", [False, True])
def test_line_bound_on_streams_of_unknown_length(safe):
    # A pipe-like input: nothing bounds a line but max_buffer_size.
    opcodes = pickle.dumps("a" * 20_000, protocol=0)

    class Pipe(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self._data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:
            return self._data.readinto(buffer)

    with pytest.raises(codecpickle.SizeLimitError, match=None if safe else "line"):
        codecpickle.load(Pipe(container(opcodes)), safe=safe, max_buffer_size=10_000)
