"""A cheap test for chunks that will not compress.

Compressing data that does not shrink costs the codec's full time for
nothing: zlib at level 3 runs at ~37 MB/s per core on random float64 and
saves 5%, against ~2 GB/s for writing the bytes as they are.  So before
compressing a large chunk the writer compresses a *sample* of it:
:data:`SAMPLE_PIECES` evenly spaced pieces of :data:`SAMPLE_PIECE` bytes
(64 KiB of a 4 MiB chunk, 1.6% of the work).  Unless the sample shrinks by
at least :data:`MIN_SAVING`, the chunk is stored raw (``FLAG_STORED_RAW``,
an existing format feature) without compressing the rest of it.

The decision depends only on the chunk's bytes and the codec, never on
timing or on other chunks, so each worker decides alone and the output is
identical whatever the thread count.

Trade-off, on purpose: data that would shrink by less than 10% (random
float64 with zstd or zlib saves ~5%) is stored raw: a file a few percent
larger, written and read at the speed of an uncompressed one.  Spread-out
pieces (not just the chunk's start) keep a compressible chunk that starts
with noise, or the reverse, from being misjudged.
"""

from __future__ import annotations

from .codecs import Codec

#: The sample must shrink by at least this fraction for the chunk to be
#: compressed.
MIN_SAVING = 0.10
#: Bytes per sampled piece, and pieces per sample.
SAMPLE_PIECE = 16 << 10
SAMPLE_PIECES = 4
#: Chunks smaller than this are simply compressed: the sample would be a
#: large share of the work.
MIN_PROBED_CHUNK = 16 * SAMPLE_PIECES * SAMPLE_PIECE


def worth_compressing(codec: Codec, raw: memoryview, itemsize: int = 1) -> bool:
    """Whether a sample of ``raw`` shrinks enough under ``codec`` to be
    worth compressing the whole chunk."""
    size = raw.nbytes
    if size < MIN_PROBED_CHUNK:
        return True
    itemsize = max(1, itemsize)
    # Whole elements, so filter codecs (byte shuffle) see aligned data.
    piece = max(itemsize, SAMPLE_PIECE // itemsize * itemsize)
    step = size // SAMPLE_PIECES // itemsize * itemsize
    sample = b"".join(raw[i * step : i * step + piece] for i in range(SAMPLE_PIECES))
    encoded = codec.encode(memoryview(sample), itemsize)
    return memoryview(encoded).nbytes <= (1.0 - MIN_SAVING) * len(sample)
