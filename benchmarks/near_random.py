"""What near-random float64 costs under each way of storing it, chunk by chunk.

    python benchmarks/near_random.py            # 128 MiB, about a minute
    python benchmarks/near_random.py --quick    # 8 MiB smoke run

Random float64 (uniform and normal) saves 12-16% through byte shuffle and
zstd-3, and nothing without the shuffle.  This weighs the candidate ways of
storing such chunks, each on 4 MiB chunks spread over two threads as the
writer does, in memory (no file: what the chunk work alone costs):

- **raw**: the chunk copied as it is (what raw storage costs on top of the
  write itself, on load the read straight into the array);
- **shuffle + zstd**: byte shuffle, then zstd-3 over the whole chunk; load
  decompresses into scratch memory and unshuffles into the array;
- **split planes**: byte shuffle, then zstd-3 over the two high byte planes
  only (sign, exponent and top mantissa bits), the six low planes stored as
  they are; load decompresses the two planes and unshuffles all eight (a
  layout that would need a new filter id; modelled here, not in the format);
- **screen**: the writer's decision alone (three codec calls on a 16 KiB
  sample per chunk), which is what a chunk stored raw costs on top of raw.

Ratio is array bytes over stored bytes (no record overhead).  Every round
trip is checked.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from codecpickle import _filters, _probe
from codecpickle.codecs import ZstdCodec

CHUNK = 4 << 20
ITEM = 8
HIGH_PLANES = 2
_CODEC = ZstdCodec(3)


def _compress(data: np.ndarray) -> bytes:
    return _CODEC.encode(memoryview(data), 1)


def _shuffled(chunk: np.ndarray) -> np.ndarray:
    out = np.empty_like(chunk)
    _filters.encode(_filters.SHUFFLE, memoryview(chunk), memoryview(out), ITEM)
    return out


def _decompress(data: bytes, out: np.ndarray) -> None:
    # The reader's own path: zstd straight into the destination.
    _CODEC.decode_into(memoryview(data), memoryview(out))


def raw_encode(chunk: np.ndarray) -> tuple[Any, ...]:
    return (chunk.copy(),)


def raw_decode(stored: tuple[Any, ...], out: np.ndarray) -> None:
    out[:] = stored[0]


def shuffle_encode(chunk: np.ndarray) -> tuple[Any, ...]:
    return (_compress(_shuffled(chunk)),)


def shuffle_decode(stored: tuple[Any, ...], out: np.ndarray) -> None:
    scratch = np.empty(out.size, np.uint8)
    _decompress(stored[0], scratch)
    _filters.decode(_filters.SHUFFLE, memoryview(scratch), memoryview(out), ITEM)


def split_encode(chunk: np.ndarray) -> tuple[Any, ...]:
    planes = _shuffled(chunk)
    low = (ITEM - HIGH_PLANES) * (chunk.size // ITEM)
    return (planes[:low].copy(), _compress(planes[low:]))


def split_decode(stored: tuple[Any, ...], out: np.ndarray) -> None:
    scratch = np.empty(out.size, np.uint8)
    low = stored[0].size
    scratch[:low] = stored[0]  # stands for reading the raw planes from the file
    _decompress(stored[1], scratch[low:])
    _filters.decode(_filters.SHUFFLE, memoryview(scratch), memoryview(out), ITEM)


_POOL = _filters.ScratchPool(CHUNK)


def screen_encode(chunk: np.ndarray) -> tuple[Any, ...]:
    choice = _probe.choose(_CODEC, memoryview(chunk), ITEM, _filters.candidates(ITEM), _POOL)
    assert choice == _probe.STORE_RAW
    return (chunk,)


CANDIDATES: dict[str, tuple[Callable[..., Any], Callable[..., Any] | None]] = {
    "raw": (raw_encode, raw_decode),
    "shuffle + zstd": (shuffle_encode, shuffle_decode),
    "split planes": (split_encode, split_decode),
    "screen": (screen_encode, None),
}


def _stored_size(parts: tuple[Any, ...]) -> int:
    return sum(len(p) if isinstance(p, bytes) else p.nbytes for p in parts)


def weigh(data: np.ndarray, pool: ThreadPoolExecutor, rounds: int) -> dict[str, dict[str, float]]:
    raw = data.view(np.uint8)
    chunks = [raw[i : i + CHUNK] for i in range(0, raw.size, CHUNK)]
    results = {}
    for name, (encode, decode) in CANDIDATES.items():
        dump = load = float("inf")
        for _ in range(rounds):
            start = time.perf_counter()
            stored = list(pool.map(encode, chunks))
            dump = min(dump, time.perf_counter() - start)
            if decode is None:
                continue
            out = np.zeros_like(raw)
            pieces = [out[i : i + CHUNK] for i in range(0, raw.size, CHUNK)]
            start = time.perf_counter()
            list(pool.map(decode, stored, pieces))
            load = min(load, time.perf_counter() - start)
            assert np.array_equal(out, raw), name
        size = sum(_stored_size(parts) for parts in stored)
        results[name] = {"dump_s": dump, "load_s": load, "ratio": raw.size / size}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    count = (8 << 20 if args.quick else 128 << 20) // ITEM
    rng = np.random.default_rng(0)
    arrays = {"uniform": rng.random(count), "normal": rng.standard_normal(count)}
    print("| array | candidate | ratio | chunk work dump ms | chunk work load ms |")
    print("|---|---|---:|---:|---:|")
    with ThreadPoolExecutor(2) as pool:
        for label, data in arrays.items():
            for name, row in weigh(data, pool, args.rounds).items():
                load = "" if row["load_s"] == float("inf") else f"{row['load_s'] * 1e3:.1f}"
                ratio = f"{row['ratio']:.3f}" if name != "screen" else ""
                print(f"| {label} | {name} | {ratio} | {row['dump_s'] * 1e3:.1f} | {load} |")


if __name__ == "__main__":
    main()
