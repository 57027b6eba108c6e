"""Reversible byte transforms applied to array chunks before the codec.

Typed numeric arrays compress far better when the bytes that vary slowly
sit next to each other.  A filter rearranges one payload chunk before the
codec sees it and is undone after the codec decoded it; the codec (built-in
or plugin) only ever sees bytes and is told nothing of it.  Which filter a
chunk went through is recorded in its flag bits (format version 2, see
``docs/format.md``), with the array's element size in the payload header.

Filters (ids are part of the format):

- :data:`SHUFFLE` (byte shuffle): byte ``j`` of every element, then byte
  ``j + 1`` ...: the exponent and high mantissa bytes of floats, and the
  high bytes of integers, form long runs the codec compresses well.
- :data:`DELTA` (delta, then byte shuffle): each element minus the one
  before it, as little-endian unsigned integers of the element's width
  (1, 2, 4 or 8 bytes, wrapping), then shuffled.  Sorted ids and timestamps
  become small steps whose high bytes are all zero.

Bit shuffle was measured on the benchmark corpus and left out: see
``docs/format.md`` ("Filters") for the numbers.

Only whole elements are transformed; the ``len % itemsize`` bytes left at
the end of a chunk (chunks are cut at a fixed byte size) are kept as they
are.  The transforms are numpy copies (2-3 GB/s per core here); the inverse
writes straight into the payload's final memory.
"""

from __future__ import annotations

import threading
from typing import Any, Final

import numpy as np

from .codecs import Codec
from .errors import InvalidOptionError

#: Filter ids, stored in bits 1-3 of a DATA chunk's flags (``id << 1``).
NONE: Final = 0
SHUFFLE: Final = 1
DELTA: Final = 2
FILTER_NAMES: Final = {NONE: "none", SHUFFLE: "shuffle", DELTA: "delta"}

#: Element sizes each filter is defined for (checked by readers too).
_DELTA_WIDTHS: Final[dict[int, np.dtype[Any]]] = {
    1: np.dtype("<u1"), 2: np.dtype("<u2"), 4: np.dtype("<u4"), 8: np.dtype("<u8")
}
#: The largest element size a writer shuffles: wider elements (records of
#: many fields) gain little and make the sample too coarse.
MAX_SHUFFLE_ITEMSIZE: Final = 64
#: Above this element size the per-plane copy loop loses to one strided copy.
_PLANE_LOOP_MAX: Final = 8


def valid_for(filter_id: int, itemsize: int) -> bool:
    """Whether ``filter_id`` is defined for elements of ``itemsize`` bytes
    (what a reader accepts; ``NONE`` always is)."""
    if filter_id == NONE:
        return True
    if filter_id == SHUFFLE:
        return itemsize >= 2
    if filter_id == DELTA:
        return itemsize in _DELTA_WIDTHS
    return False


def candidates(itemsize: int) -> tuple[int, ...]:
    """The filters a writer tries on chunks of ``itemsize``-byte elements,
    ``NONE`` first."""
    found = [NONE]
    if 2 <= itemsize <= MAX_SHUFFLE_ITEMSIZE:
        found.append(SHUFFLE)
    if itemsize in _DELTA_WIDTHS:
        found.append(DELTA)
    return tuple(found)


# -- the user's choice -----------------------------------------------------

#: ``filters=`` values and what they mean.
AUTO: Final = "auto"
_FORCED: Final = {"shuffle": SHUFFLE, "delta": DELTA}


def parse_filters(value: object) -> str | int:
    """Check a ``filters=`` option: ``"auto"`` (the default: chosen per
    chunk), ``None`` (no filter), ``"shuffle"`` or ``"delta"``.  Returns
    ``"auto"`` or a filter id."""
    if value is None:
        return NONE
    if isinstance(value, str):
        if value == AUTO:
            return AUTO
        if value in _FORCED:
            return _FORCED[value]
    raise InvalidOptionError(
        "Expected filters to be 'auto', None, 'shuffle' or 'delta'. "
        f"Got {value!r} instead."
    )


def filters_for(value: object, codec: Codec | None, *, configured: bool = False) -> str | int:
    """:func:`parse_filters` for a dump with ``codec``: a forced filter
    needs a codec (uncompressed streams store arrays as they are, for
    ``mmap_mode``).

    ``configured=True`` says ``value`` comes from a ``codecpickle.config``
    block rather than the call: such a forced filter is a default for
    compressed dumps, and an uncompressed dump inside the block goes
    without it instead of failing."""
    policy = parse_filters(value)
    if codec is None and policy not in (AUTO, NONE):
        if configured:
            return NONE
        raise InvalidOptionError(
            f"filters={value!r} needs a compressed stream: filters transform array data "
            "before the codec, and this dump has no codec (give compress=...)."
        )
    return policy


# -- the transforms ----------------------------------------------------------


def encode(
    filter_id: int, src: memoryview, out: memoryview, itemsize: int, spare: np.ndarray | None = None
) -> None:
    """Apply ``filter_id`` to ``src`` into ``out`` (same length, no overlap).

    ``spare`` (at least ``len(src)`` bytes) holds the deltas of
    :data:`DELTA` on their way to being shuffled; allocated when not given.
    """
    source = np.frombuffer(src, dtype=np.uint8)
    target = np.frombuffer(out, dtype=np.uint8)
    whole = source.size - source.size % itemsize
    target[whole:] = source[whole:]
    if filter_id == SHUFFLE:
        _shuffle(source[:whole], target[:whole], itemsize)
    elif filter_id == DELTA:
        width = _DELTA_WIDTHS[itemsize]
        values = source[:whole].view(width)
        if itemsize == 1:
            deltas = target[:whole]
        else:
            # Deltas first, then shuffled into the output.
            deltas = np.empty(whole, dtype=np.uint8) if spare is None else spare[:whole]
        steps = deltas.view(width)
        if values.size:
            steps[:1] = values[:1]
            np.subtract(values[1:], values[:-1], out=steps[1:])
        if itemsize > 1:
            _shuffle(deltas, target[:whole], itemsize)
    else:
        raise ValueError(f"unknown filter id {filter_id}")


def decode(filter_id: int, src: memoryview, out: memoryview, itemsize: int) -> None:
    """Undo ``filter_id``: read the filtered bytes ``src``, write the
    original bytes into ``out`` (the payload's final memory)."""
    source = np.frombuffer(src, dtype=np.uint8)
    target = np.frombuffer(out, dtype=np.uint8)
    whole = source.size - source.size % itemsize
    target[whole:] = source[whole:]
    if filter_id == SHUFFLE:
        _unshuffle(source[:whole], target[:whole], itemsize)
    elif filter_id == DELTA:
        if itemsize == 1:
            target[:whole] = source[:whole]
        else:
            _unshuffle(source[:whole], target[:whole], itemsize)
        values = target[:whole].view(_DELTA_WIDTHS[itemsize])
        # Unsigned sums wrap exactly as the deltas did; in place, no copy.
        np.add.accumulate(values, out=values)
    else:
        raise ValueError(f"unknown filter id {filter_id}")


def _shuffle(source: np.ndarray, target: np.ndarray, itemsize: int) -> None:
    count = source.size // itemsize
    elements = source.reshape(count, itemsize)
    if itemsize <= _PLANE_LOOP_MAX:
        # One contiguous write per byte plane: 2.5 GB/s here, against
        # 0.5-1.7 GB/s for a single transposed copy of narrow elements.
        for plane in range(itemsize):
            target[plane * count : (plane + 1) * count] = elements[:, plane]
    else:
        np.copyto(target.reshape(itemsize, count), elements.T)


def _unshuffle(source: np.ndarray, target: np.ndarray, itemsize: int) -> None:
    count = source.size // itemsize
    elements = target.reshape(count, itemsize)
    if itemsize <= _PLANE_LOOP_MAX:
        for plane in range(itemsize):
            elements[:, plane] = source[plane * count : (plane + 1) * count]
    else:
        np.copyto(elements, source.reshape(itemsize, count).T)


# -- scratch buffers -----------------------------------------------------------


class ScratchPool:
    """Chunk-sized byte buffers reused across chunks and threads.

    A fresh multi-MiB allocation per chunk would be mapped and page-faulted
    anew every time; a few reused buffers stay warm.  Workers share one
    pool: ``take`` and ``give`` hold a lock for a list operation only.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._free: list[np.ndarray] = []
        self._lock = threading.Lock()

    def take(self, nbytes: int) -> np.ndarray:
        """A buffer of at least ``nbytes`` bytes (uninitialised)."""
        with self._lock:
            buffer = self._free.pop() if self._free else None
        if buffer is None or buffer.nbytes < nbytes:
            buffer = np.empty(max(nbytes, self._size), dtype=np.uint8)
        return buffer

    def give(self, buffer: np.ndarray) -> None:
        """Return a buffer from :meth:`take` for reuse."""
        with self._lock:
            self._free.append(buffer)
