"""codecpickle bench: compare codecs on your own file."""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import mmap
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
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
    StorageOptions,
    UsageError,
    add_storage_flags,
    add_threads_flag,
    count,
    error,
    human_size,
    is_remote,
    local_path,
    open_input,
    print_json,
    storage_options,
)
from ._sample import Sample, take_sample
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
not the building of objects, which costs the same whatever the codec.

The raw bytes are held in memory, up to --sample-size (256 MiB by
default): from a larger file, the same leading share of every array and
of the pickle opcodes is measured, and the output says which share.
Standard input and URLs are first copied to a temporary file.

The recommendation is the smallest result among the codecs that write at
least a quarter as fast and read at least half as fast as the fastest
compressing codec; "none" when nothing compresses by more than 5%.
"""

_DEFAULT_EXTRA = ("zstd:1", "zstd:9")
_DEFAULT_SAMPLE = 256 << 20
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def byte_size(text: str) -> int:
    """argparse type: a positive number of bytes, with an optional K, M, G
    or T suffix (powers of 1024; a trailing B or iB is allowed)."""
    spelled = text.strip().upper().removesuffix("IB").removesuffix("B")
    unit = spelled[-1:] if spelled[-1:] in _UNITS else ""
    try:
        value = int(float(spelled[: len(spelled) - len(unit)]) * _UNITS[unit])
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a size such as 64M or 1G, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE",
                        help="a codecpickle file, a URL, or - for standard input")
    parser.add_argument("--codecs", nargs="+", metavar="CODEC",
                        help="what to try: none, NAME or NAME:LEVEL (default: every available "
                        "codec at its default level, plus zstd:1 and zstd:9)")
    parser.add_argument("--filters", nargs="+", default=["auto"],
                        choices=("auto", "none", "shuffle", "delta"), metavar="FILTER",
                        help="array filters to try with each codec: auto (the default, as dump "
                        "chooses), none, shuffle, delta; several give one row per pair")
    parser.add_argument("--repeat", type=int, default=1, metavar="N",
                        help="time each codec N times and keep the best (default 1)")
    parser.add_argument("--sample-size", type=byte_size, default=_DEFAULT_SAMPLE,
                        metavar="BYTES",
                        help="measure at most this many raw bytes, such as 64M or 2G (default "
                        "256M; suffixes K, M, G, T are powers of 1024)")
    add_threads_flag(parser, "compressing and decompressing chunks")
    parser.add_argument("--json", action="store_true",
                        help="print JSON: the rows, the recommendation and what was measured")
    add_storage_flags(parser)


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
    options = storage_options(args, [args.file])
    try:
        with _mapped(args.file, options) as data:
            # Decoded and checked once; every codec then starts from these bytes.
            sample = take_sample(data, args.sample_size)
    except (OSError, CodecPickleError) as exc:
        error(f"{args.file}: {exc}")
        return EXIT_FAILED
    rows = [
        measure(sample.stream, sample.raw_bytes, spec, codec, threads, args.repeat, policy)
        for spec, codec, policy in candidates
    ]
    best = recommend(rows)
    if args.json:
        print_json({
            "file": args.file, "raw_size": sample.file_raw_bytes, "objects": sample.objects,
            "sample_size": sample.raw_bytes, "sampled": not sample.whole,
            "threads": threads, "rows": rows,
            "recommended": None if best is None else best["codec"],
        })
        return EXIT_OK
    print(f"{args.file}: {count(sample.objects, 'object')}, "
          f"{human_size(sample.file_raw_bytes)} raw, {threads} threads")
    if not sample.whole:
        print(_sample_note(sample))
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


def _sample_note(sample: Sample) -> str:
    return (
        f"measured on a sample: {human_size(sample.raw_bytes)} of "
        f"{human_size(sample.file_raw_bytes)} raw ({100 * sample.fraction:.1f}%), the first "
        f"{100 * sample.fraction:.1f}% of every array and of the pickle opcodes "
        "(--sample-size to change)"
    )


@contextlib.contextmanager
def _mapped(name: str, options: StorageOptions) -> Iterator[Any]:
    """The bytes of ``name`` as a read-only memory map (pages are read only
    when touched); standard input and URLs are first copied to a temporary
    file, in bounded pieces."""
    with contextlib.ExitStack() as stack:
        if name == "-" or is_remote(name):
            file = stack.enter_context(tempfile.TemporaryFile(prefix="codecpickle-bench-"))
            if name == "-":
                shutil.copyfileobj(sys.stdin.buffer, file, _COPY_PIECE)
            else:
                with open_input(name, options) as handle:
                    shutil.copyfileobj(handle, file, _COPY_PIECE)
            file.flush()
        else:
            file = stack.enter_context(open(local_path(name), "rb"))
        if os.fstat(file.fileno()).st_size == 0:
            yield b""  # mmap refuses empty files; the walk reports empty input
            return
        mapped = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            yield mapped
        finally:
            # Views of the map may outlive the walk (in a traceback): the
            # map is then unmapped when the last one goes.
            with contextlib.suppress(BufferError):
                mapped.close()


_COPY_PIECE = 16 << 20
