"""File size against chunk size, per codec, on object-heavy pickles.

    python benchmarks/chunk_sizes.py [--codecs lzma,zstd] [--rows 300000]

Chunks compress independently, so every chunk restarts the codec's match
window: the cost is largest for codecs with big dictionaries (lzma).  Prints,
for each codec, the size of the whole buffer compressed in one call and the
ratio chunked/whole for several chunk sizes; the built-in codecs' default
``chunk_size`` values are chosen from this table (target: within 3%).
"""

from __future__ import annotations

import argparse
import pickle
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import workloads

import codecpickle
from codecpickle.codecs import Codec

MiB = 1 << 20
LEVELS = {"zstd": 3, "lz4": 1, "zlib": 3, "gzip": 3, "bz2": 1, "lzma": 1}
CHUNK_SIZES = (1 * MiB, 4 * MiB, 16 * MiB, 32 * MiB, 64 * MiB)


def chunked_size(codec: Codec, data: memoryview, chunk: int, pool: ThreadPoolExecutor) -> int:
    pieces = [data[i : i + chunk] for i in range(0, data.nbytes, chunk)]
    return sum(min(len(out), p.nbytes) for out, p in
               zip(pool.map(codec.encode, pieces), pieces, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codecs", default=",".join(LEVELS))
    parser.add_argument("--rows", type=int, default=300_000, help="dicts in the list")
    args = parser.parse_args()
    obj = workloads.list_of_dicts(False)[: args.rows]
    data = memoryview(pickle.dumps(obj, protocol=5))
    print(f"list of {len(obj)} dicts: pickle of {data.nbytes / MiB:.1f} MiB\n")
    print("| codec | whole MiB | " + " | ".join(f"{c // MiB} MiB chunks" for c in CHUNK_SIZES)
          + " |")
    print("|---" * (2 + len(CHUNK_SIZES)) + "|")
    with ThreadPoolExecutor() as pool:
        for name in args.codecs.split(","):
            codec = codecpickle.get_codec(name)(LEVELS[name])
            whole = len(codec.encode(data))
            ratios = [chunked_size(codec, data, c, pool) / whole for c in CHUNK_SIZES]
            print(f"| {name}:{LEVELS[name]} | {whole / MiB:.2f} | "
                  + " | ".join(f"{r:.3f}" for r in ratios) + " |")


if __name__ == "__main__":
    main()
