"""codecpickle bench: compare codecs on your own file."""

from __future__ import annotations

import argparse
import collections
import io
import sys
import time
from concurrent.futures import Future
from typing import Any

from .._config import default_threads
from .._filters import filters_for
from .._pool import ChunkPool
from .._records import Record, check, decode, iter_streams, walk_stream
from .._sources import MemorySource
from .._transcode import transcode
from ..codecs import Codec, available_codecs, resolve_compress
from ..errors import CodecPickleError, InvalidOptionError, UnknownCodecError
from ._common import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    add_threads_flag,
    count,
    error,
    human_size,
    open_source,
    print_json,
)
from .recompress import parse_compress

NAME = "bench"
SUMMARY = "compare codecs on your own file: ratio, write and read speed"
DESCRIPTION = """\
Rewrite FILE with each codec in turn (in memory; with --filters, each
codec with each array filter) and read each result back, then print a
table of file size, compression ratio and write and read throughput (of
the raw data, per second) and recommend a codec.

Nothing is unpickled: the file's records are decoded once, then each codec
compresses and decompresses the same raw bytes with the same threads as
dump and load would. Times therefore measure the container and the codec,
not the building of objects, which costs the same whatever the codec. The
whole raw content is held in memory.

The recommendation is the smallest result among the codecs that write at
least a quarter as fast and read at least half as fast as the fastest
compressing codec; "none" when nothing compresses by more than 5%.
"""

_DEFAULT_EXTRA = ("zstd:1", "zstd:9")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="a codecpickle file, or - for standard input")
    parser.add_argument("--codecs", nargs="+", metavar="CODEC",
                        help="what to try: none, NAME or NAME:LEVEL (default: every available "
                        "codec at its default level, plus zstd:1 and zstd:9)")
    parser.add_argument("--filters", nargs="+", default=["auto"],
                        choices=("auto", "none", "shuffle", "delta"), metavar="FILTER",
                        help="array filters to try with each codec: auto (the default, as dump "
                        "chooses), none, shuffle, delta; several give one row per pair")
    parser.add_argument("--repeat", type=int, default=1, metavar="N",
                        help="time each codec N times and keep the best (default 1)")
    add_threads_flag(parser, "compressing and decompressing chunks")
    parser.add_argument("--json", action="store_true", help="print JSON rows")


def default_specs() -> list[str]:
    """Every available codec at its default level, zstd at 1 and 9, and none."""
    names = [name for name, info in available_codecs().items() if info.available]
    specs = ["none", *names, *_DEFAULT_EXTRA]
    return sorted(set(specs), key=specs.index)


def _resolve(specs: list[str], filters: list[str]) -> list[tuple[str, Codec | None, Any]]:
    """(label, codec, filter policy) for every codec and filter to try;
    uncompressed streams are never filtered, so "none" appears once."""
    resolved = []
    for spec in specs:
        try:
            codec = resolve_compress(parse_compress(spec))
        except (InvalidOptionError, UnknownCodecError) as exc:
            raise UsageError(f"--codecs {spec}: {exc}") from None
        for name in filters if codec is not None else ["none"]:
            policy = filters_for(None if name == "none" else name, codec)
            label = spec if len(filters) == 1 or codec is None else f"{spec}/{name}"
            resolved.append((label, codec, policy))
    return resolved


def _read_back(data: memoryview, threads: int) -> None:
    """Check and decode every record of ``data`` on ``threads`` threads, as
    a load would (without unpickling)."""
    pool = ChunkPool(threads)
    pending: collections.deque[Future[Any]] = collections.deque()
    source = MemorySource(data)

    def work(record: Record, codec: Codec | None) -> None:
        check(record)
        decode(record, codec)

    try:
        for header in iter_streams(source):
            codec = header.codec()
            for record in walk_stream(source, header):
                if record.stored is not None:
                    pending.append(pool.submit(work, record, codec))
                while len(pending) > 2 * threads:
                    pending.popleft().result()
            while pending:
                pending.popleft().result()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def measure(raw_stream: memoryview, raw_size: int, spec: str, codec: Codec | None,
            threads: int, repeat: int, filters: Any = "auto") -> dict[str, Any]:
    """Write ``raw_stream`` (an uncompressed stream) with ``codec`` and read
    it back; the best of ``repeat`` times."""
    write_times, read_times = [], []
    size = 0
    for _ in range(repeat):
        out = io.BytesIO()
        started = time.perf_counter()
        stats = transcode(MemorySource(raw_stream), out, codec, threads=threads, verify=False,
                          filters=filters)
        write_times.append(time.perf_counter() - started)
        size = stats.written_bytes
        buffer = out.getbuffer()
        started = time.perf_counter()
        _read_back(buffer, threads)
        read_times.append(time.perf_counter() - started)
        del buffer
    write, read = min(write_times), min(read_times)
    return {
        "codec": spec,
        "name": "none" if codec is None else codec.name,
        "params": {} if codec is None else codec.params,
        "size": size,
        "ratio": round(raw_size / size, 3) if size else None,
        "write_seconds": round(write, 4),
        "read_seconds": round(read, 4),
        "write_mb_s": round(raw_size / write / 1e6, 1),
        "read_mb_s": round(raw_size / read / 1e6, 1),
    }


def recommend(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The row to recommend (see the command's description)."""
    compressing = [row for row in rows if row["name"] != "none"]
    if not compressing:
        return rows[0] if rows else None
    fastest_write = max(row["write_mb_s"] for row in compressing)
    fastest_read = max(row["read_mb_s"] for row in compressing)
    fit = [
        row for row in compressing
        if row["write_mb_s"] >= fastest_write / 4 and row["read_mb_s"] >= fastest_read / 2
    ]
    best = min(fit, key=lambda row: row["size"])
    if best["ratio"] is not None and best["ratio"] < 1.05:
        plain = [row for row in rows if row["name"] == "none"]
        if plain:
            return plain[0]
    return best


def run(args: argparse.Namespace) -> int:
    if args.repeat < 1:
        raise UsageError(f"--repeat must be at least 1, got {args.repeat}")
    candidates = _resolve(args.codecs or default_specs(), args.filters)
    threads = default_threads() if args.threads is None else args.threads
    try:
        with open_source(args.file) as source:
            # Decoded and checked once; every codec then starts from these bytes.
            plain = io.BytesIO()
            stats = transcode(source, plain, None, threads=threads)
    except (OSError, CodecPickleError) as exc:
        error(f"{args.file}: {exc}")
        return EXIT_FAILED
    raw_stream = plain.getbuffer()
    rows = [
        measure(raw_stream, stats.raw_bytes, spec, codec, threads, args.repeat, policy)
        for spec, codec, policy in candidates
    ]
    best = recommend(rows)
    if args.json:
        print_json({
            "file": args.file, "raw_size": stats.raw_bytes, "objects": stats.streams,
            "threads": threads, "rows": rows,
            "recommended": None if best is None else best["codec"],
        })
        return EXIT_OK
    print(f"{args.file}: {count(stats.streams, 'object')}, {human_size(stats.raw_bytes)} raw, "
          f"{threads} threads")
    _table(rows, best)
    if best is not None:
        print(f"recommended: {best['codec']} (ratio {best['ratio']}, writes at "
              f"{best['write_mb_s']} MB/s, reads at {best['read_mb_s']} MB/s)")
    return EXIT_OK


def _table(rows: list[dict[str, Any]], best: dict[str, Any] | None) -> None:
    headers = ("codec", "size", "ratio", "write MB/s", "read MB/s")
    cells = [
        (
            row["codec"] + (" *" if row is best else ""),
            human_size(row["size"]),
            f"{row['ratio']:.2f}",
            f"{row['write_mb_s']:.0f}",
            f"{row['read_mb_s']:.0f}",
        )
        for row in rows
    ]
    try:
        if not sys.stdout.isatty():
            raise ImportError("plain text for pipes and files")
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        widths = [max(len(text) for text in column) for column in zip(headers, *cells, strict=True)]
        for line in (headers, *cells):
            print("  ".join(
                text.ljust(width) if index == 0 else text.rjust(width)
                for index, (text, width) in enumerate(zip(line, widths, strict=True))
            ))
        return
    table = Table(*headers)
    for line in cells:
        table.add_row(*line)
    Console().print(table)
