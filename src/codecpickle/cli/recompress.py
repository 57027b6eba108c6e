"""codecpickle recompress: rewrite a file with another codec, without
unpickling it."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from .._config import default_threads
from .._filters import filters_for
from .._progress import Reporter, terminal_bar
from .._transcode import transcode
from ..codecs import resolve_compress
from ..errors import CodecPickleError, InvalidOptionError, UnknownCodecError
from ._common import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    add_progress_flag,
    add_storage_flags,
    add_threads_flag,
    chunk_size,
    error,
    file_size,
    human_size,
    is_remote,
    open_output,
    open_source,
    print_json,
    ratio,
    show_progress,
    storage_options,
)

NAME = "recompress"
SUMMARY = "rewrite a file with another codec, chunk by chunk, without unpickling"
DESCRIPTION = """\
Rewrite FILE with the codec given by --compress, record by record: every
chunk is checked against its checksum, decompressed and compressed again
with the new codec; nothing is unpickled, so this is safe on files from
anywhere, and memory stays at a few chunks whatever the file's size (arrays
stored uncompressed pass through in pieces of at most 16 MiB).

Without -o, FILE is replaced atomically (the new file is written next to
it and renamed over it only once complete); with -o OUT the result goes to
OUT (also atomically), or to standard output with -o -. FILE may be - to
read standard input (then -o is required); FILE and OUT may be URLs.

--compress takes the same forms as dump's compress argument: none, a codec
name (zstd, lz4, gzip, zlib, bz2, lzma or a plugin's), name:level such as
zstd:9, or a level alone for zstd.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE",
                        help="the file to rewrite: a path, a URL, or - for standard input")
    parser.add_argument("--compress", "-c", required=True, metavar="CODEC",
                        help="the new codec: none, NAME or NAME:LEVEL (e.g. zstd:9, lz4)")
    parser.add_argument("-o", "--output", metavar="OUT",
                        help="write here instead of replacing FILE: a path, a URL, or - for "
                        "standard output")
    parser.add_argument("--filters", choices=("auto", "none", "shuffle", "delta"), default="auto",
                        help="array filters before the codec: auto (the default: chosen per "
                        "chunk, as dump does), none, shuffle or delta")
    parser.add_argument("--chunk-size", type=chunk_size, default=None, metavar="BYTES",
                        help="the new chunk size in bytes (default: the codec's)")
    add_threads_flag(parser, "compressing chunks")
    parser.add_argument("--no-fsync", dest="fsync", action="store_false",
                        help="do not flush the new file to disk before renaming it")
    parser.add_argument("--json", action="store_true", help="print a JSON summary")
    add_progress_flag(parser)
    add_storage_flags(parser)


def parse_compress(text: str) -> Any:
    """The ``compress`` value a command-line CODEC spelling stands for."""
    spelled = text.strip()
    if spelled.lower() in ("none", "0", "false", "no"):
        return None
    try:
        return int(spelled)
    except ValueError:
        return spelled


def run(args: argparse.Namespace) -> int:
    try:
        codec = resolve_compress(parse_compress(args.compress))
        filters = filters_for(None if args.filters == "none" else args.filters, codec)
    except (InvalidOptionError, UnknownCodecError) as exc:
        raise UsageError(str(exc)) from None
    if args.file == "-" and args.output is None:
        raise UsageError("reading standard input needs -o OUT (or -o - for standard output)")
    threads = default_threads() if args.threads is None else args.threads
    target = args.file if args.output is None else args.output
    options = storage_options(args, [args.file, target])
    started = time.perf_counter()
    try:
        total = file_size(args.file)
        bar = terminal_bar(f"recompress {args.file}", total) if show_progress(
            args.progress) else None
        try:
            with (
                open_source(args.file, options if is_remote(args.file) else None) as source,
                open_output(target, args.fsync, options if is_remote(target) else None) as out,
            ):
                if bar is not None:
                    out = Reporter(bar.update, None).wrap_writer(out)
                try:
                    stats = transcode(source, out, codec, threads=threads,
                                      chunk_size=args.chunk_size, filters=filters)
                except CodecPickleError as exc:
                    # Report where the input is damaged; the output is dropped.
                    raise _Failed(str(exc)) from exc
        finally:
            if bar is not None:
                bar.close()
    except _Failed as exc:
        error(f"{args.file}: {exc}; nothing was written")
        return EXIT_FAILED
    except (OSError, CodecPickleError) as exc:
        error(f"{args.file}: {exc}")
        return EXIT_FAILED
    summary = {
        "file": args.file,
        "output": target,
        "codec": "none" if codec is None else codec.name,
        "params": {} if codec is None else codec.params,
        "objects": stats.streams,
        "size_before": total,
        "size_after": stats.written_bytes,
        "raw_size": stats.raw_bytes,
        "ratio": ratio(stats.raw_bytes, stats.written_bytes),
        "seconds": round(time.perf_counter() - started, 4),
    }
    # With -o - the data went to standard output: the summary goes to stderr.
    to_stderr = target == "-"
    if args.json:
        print_json(summary, sys.stderr if to_stderr else None)
    else:
        before = "?" if total is None else human_size(total)
        line = (
            f"{args.file}: {summary['codec']} {json.dumps(summary['params'])}: {before} -> "
            f"{human_size(stats.written_bytes)} (ratio {summary['ratio']}) "
            f"in {summary['seconds']:.2f} s"
        )
        print(line, file=sys.stderr if to_stderr else sys.stdout)
    return EXIT_OK


class _Failed(Exception):
    """The input is damaged: the rewrite stops and writes nothing."""
