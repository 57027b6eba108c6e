"""Per-chunk choice of filter, or of raw storage, from a sample.

Before compressing a chunk the writer compresses a *sample* of it once per
candidate filter (``_filters.candidates``: none, byte shuffle, delta, as
the element size allows) and keeps the filter whose sample came out
smallest.  The sample is :data:`SAMPLE_PIECES` evenly spaced pieces of
:data:`SAMPLE_PIECE` bytes, whole elements (64 KiB of a 4 MiB chunk, 1.6%
of the work per candidate); a chunk no larger than that is its own sample.
Spread-out pieces (not just the chunk's start) keep a chunk that starts with
noise and continues smooth, or the reverse, from being misjudged.

The same estimate decides raw storage: a chunk is stored raw
(``FLAG_STORED_RAW``) without compressing the rest of it when no candidate
makes the sample smaller by at least :func:`min_saving` (for chunks held to
the 15% below, judged first on a quarter of the sample, the *screen*, so
that a chunk stored raw costs little more than it did before filters).  That minimum
weighs ratio against speed (see :data:`FAST_MIN_SAVING`): at a codec's
default level or a faster one, a chunk of a megabyte or more is compressed
only when the best option saves 15% of it, because compressing data that
barely compresses costs the codec's full time on every byte (random float64
through byte shuffle and zstd-3: 12% smaller, seven times slower to write
and load than stored raw).  At a level above the default (the caller asked
for ratio over speed), and for smaller chunks (a few milliseconds at most),
any saving of :data:`MIN_SAVING` counts.

The choice depends only on the chunk's bytes, the element size, the codec
and the ``filters=`` option, never on timing or other chunks, so each
worker decides alone and the output is identical whatever the thread count.
"""

from __future__ import annotations

from . import _filters
from .codecs import Codec

#: The best candidate must make the sample smaller by at least this
#: fraction for the chunk to be compressed (1%: below it the estimate is
#: noise, and compressing costs the codec's full time for next to nothing).
MIN_SAVING = 0.01
#: The same, for chunks of :data:`MIN_PROBED_CHUNK` or more at the codec's
#: default level or a faster one.  Measured with zstd-3 on 4 MiB chunks
#: (``benchmarks/RESULTS.md``): data saving less than this is near-random
#: (random float64: the sample saves 7-12% through byte shuffle, the chunk
#: 12-16%), which the codec crawls through at 100-150 MB/s a core while raw
#: storage runs at memory speed, and whose load needs a decode and an
#: unshuffle pass where raw storage reads straight into the array.  On the
#: benchmark corpus every other chunk of 1 MiB or more estimates at 39% or
#: more; chunks estimating between 1% and 15% are rare outside noise.
FAST_MIN_SAVING = 0.15
#: Bytes per sampled piece, and pieces per sample.
SAMPLE_PIECE = 16 << 10
SAMPLE_PIECES = 4
#: Chunks with a single candidate smaller than this are simply compressed
#: (the sample would be a large share of the work; a chunk the codec does
#: not shrink is stored raw after the fact anyway).
MIN_PROBED_CHUNK = 16 * SAMPLE_PIECES * SAMPLE_PIECE

#: Delta on elements wider than a byte must beat the best cheaper option
#: (none or shuffle) by this fraction: undoing it costs an unshuffle and a
#: prefix sum, and its output decompresses slower (a smooth float32 chunk:
#: 60 ms to load through delta against 21 ms through shuffle, for 14% less).
DELTA_MARGIN = 0.15
#: Pieces of the smaller sample that decides whether a buffer under the
#: pickler's in-band limit goes out of band to be filtered (8 KiB in all:
#: a fitted forest holds hundreds of such arrays), and the gain a filter
#: must show there to make up for the context the buffer leaves behind.
SMALL_SAMPLE_PIECE = 2 << 10
FILTER_GAIN = 0.03

#: Bytes per piece of the *screen*: the smaller sample (four pieces, 16 KiB
#: in all) on which a chunk held to :data:`FAST_MIN_SAVING` is judged worth
#: compressing at all, before the whole sample picks its filter.  Its
#: estimates are within 1-4 points of the whole sample's (smaller samples
#: compress a little worse), for a quarter of the time: a chunk stored raw
#: then costs three codec calls on 16 KiB, as the single call of the probe
#: before filters did on 64 KiB.
SCREEN_PIECE = 4 << 10

#: What :func:`choose` returns for "store this chunk raw".
STORE_RAW = -1


def choose(
    codec: Codec,
    raw: memoryview,
    itemsize: int,
    options: tuple[int, ...],
    spare: _filters.ScratchPool,
) -> int:
    """The filter id (one of ``options``, ``NONE`` first) under which a
    sample of ``raw`` compresses best with ``codec``, or :data:`STORE_RAW`
    when none saves :func:`min_saving`."""
    if len(options) == 1 and raw.nbytes < MIN_PROBED_CHUNK:
        return options[0]
    if min_saving(codec, raw.nbytes) > MIN_SAVING:
        # Whether to compress at all, on a quarter of the sample: this is
        # all a chunk stored raw costs, so it must stay cheap.
        screen = _sample(raw, max(1, itemsize), SCREEN_PIECE)
        sizes = estimates(codec, screen, itemsize, options, spare)
        if min(sizes) > (1.0 - FAST_MIN_SAVING) * screen.nbytes:
            return STORE_RAW
        if len(options) == 1:
            return options[0]
    # Which filter, on the whole sample.
    sample = _sample(raw, max(1, itemsize), SAMPLE_PIECE)
    best, best_size = STORE_RAW, (1.0 - MIN_SAVING) * sample.nbytes
    sizes = estimates(codec, sample, itemsize, options, spare)
    for filter_id, estimate in zip(options, sizes, strict=True):
        limit = best_size
        if filter_id == _filters.DELTA and itemsize > 1 and best != STORE_RAW:
            limit *= 1.0 - DELTA_MARGIN
        # Strictly smaller: ties keep the earlier (cheaper) option.
        if estimate < limit:
            best, best_size = filter_id, estimate
    return best


def min_saving(codec: Codec, chunk_size: int) -> float:
    """The fraction of a chunk of ``chunk_size`` raw bytes that compressing
    it with ``codec`` must be estimated to save: :data:`FAST_MIN_SAVING`
    for chunks of :data:`MIN_PROBED_CHUNK` or more at the codec's default
    level or a faster one (or up to its ``fast_level``), else
    :data:`MIN_SAVING`.

    Every built-in codec (and the ``Codec`` base class) reads a higher level
    as "smaller and slower"; a codec without an integer ``level`` is taken
    at its default."""
    if chunk_size < MIN_PROBED_CHUNK:
        return MIN_SAVING
    level = getattr(codec, "level", None)
    default = getattr(codec, "default_level", None)
    if not (isinstance(level, int) and isinstance(default, int)):
        return FAST_MIN_SAVING
    fast = getattr(codec, "fast_level", None)
    # Levels up to the codec's fast mode (lz4's 0 to 2) ask for speed too.
    fastest_mode_ends = max(default, fast) if isinstance(fast, int) else default
    return MIN_SAVING if level > fastest_mode_ends else FAST_MIN_SAVING


def filter_pays_off(
    codec: Codec,
    raw: memoryview,
    itemsize: int,
    options: tuple[int, ...],
    spare: _filters.ScratchPool,
) -> bool:
    """Whether a filter makes a small sample of ``raw`` at least
    :data:`FILTER_GAIN` smaller than no filter does: the pickler's test for
    buffers that would otherwise stay in the opcode stream (which no filter
    reaches) to compress together with their neighbours."""
    if len(options) == 1:
        return False
    sample = _sample(raw, max(1, itemsize), SMALL_SAMPLE_PIECE)
    plain, *filtered = estimates(codec, sample, itemsize, options, spare)
    return min(filtered) < (1.0 - FILTER_GAIN) * plain


def estimates(
    codec: Codec,
    sample: memoryview,
    itemsize: int,
    options: tuple[int, ...],
    spare: _filters.ScratchPool,
) -> list[int]:
    """Compressed size of ``sample`` through each filter of ``options``."""
    target = max(1, itemsize)
    sizes = []
    filtered = spare.take(sample.nbytes)
    deltas = spare.take(sample.nbytes)
    try:
        for filter_id in options:
            if filter_id == _filters.NONE:
                encoded = codec.encode(sample, target)
            else:
                view = filtered.data[: sample.nbytes]
                _filters.encode(filter_id, sample, view, target, deltas)
                # The codec sees bytes, not elements, once they are filtered.
                encoded = codec.encode(view, 1)
            sizes.append(memoryview(encoded).nbytes)
    finally:
        spare.give(deltas)
        spare.give(filtered)
    return sizes


def _sample(raw: memoryview, itemsize: int, piece_size: int) -> memoryview:
    """:data:`SAMPLE_PIECES` evenly spaced whole-element pieces of about
    ``piece_size`` bytes of ``raw``, or all of it when it is no larger."""
    size = raw.nbytes
    if size <= SAMPLE_PIECES * piece_size:
        return raw
    piece = max(itemsize, piece_size // itemsize * itemsize)
    step = size // SAMPLE_PIECES // itemsize * itemsize
    return memoryview(b"".join(raw[i * step : i * step + piece] for i in range(SAMPLE_PIECES)))
