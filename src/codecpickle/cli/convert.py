"""codecpickle convert: turn a pickle or joblib file into a codecpickle file."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys

from ..errors import CodecPickleError, InvalidOptionError, UnknownCodecError
from ._common import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    add_storage_flags,
    add_threads_flag,
    error,
    human_size,
    is_remote,
    local_path,
    open_input,
    storage_options,
)
from .recompress import parse_compress

NAME = "convert"
SUMMARY = "convert a plain pickle or joblib file into a codecpickle file"
DESCRIPTION = """\
Read SRC (a codecpickle file, a plain pickle, bare or compressed with gzip,
zlib, bz2, xz, lzma, zstd or lz4, or a joblib file of any format since
joblib 0.10) and write it to DST as a codecpickle file, atomically.
SRC may be - for standard input or a URL (s3://, http://, any fsspec
protocol); DST is a local path.

Converting rebuilds the object, which runs code named by the file as
pickle.load does: only convert files you trust, or use --safe (and
--allow) to restrict what the source may contain. Memory stays bounded by
about the largest array, not the whole file.

--compress is as for recompress; without it the name of DST may pick the
codec (.zst, .lz4, .gz, ...), else the result is uncompressed.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", metavar="SRC",
                        help="the file to convert: a path, a URL, or - for standard input")
    parser.add_argument("dst", metavar="DST", help="the codecpickle file to write (a local path)")
    parser.add_argument("--compress", "-c", metavar="CODEC",
                        help="none, NAME or NAME:LEVEL (default: from DST's extension)")
    parser.add_argument("--safe", action="store_true",
                        help="rebuild only numpy arrays and builtin types (see load(safe=True))")
    parser.add_argument("--allow", action="append", default=[], metavar="NAME",
                        help="also admit module.qualname NAME; implies --safe (repeatable)")
    add_threads_flag(parser, "compressing chunks")
    parser.add_argument("--no-fsync", dest="fsync", action="store_false",
                        help="do not flush DST to disk before renaming it into place")
    add_storage_flags(parser)


def run(args: argparse.Namespace) -> int:
    from .. import convert as convert_file

    options = {}
    if args.compress is not None:
        options["compress"] = parse_compress(args.compress)
    if is_remote(args.dst):
        raise UsageError(f"DST must be a local path, got the URL {args.dst}: convert to a "
                         "local file, then upload it (or recompress it to the URL)")
    remote = storage_options(args, [args.src])
    try:
        with contextlib.ExitStack() as stack:
            handle = stack.enter_context(open_input(args.src, remote))
            source = (sys.stdin.buffer if args.src == "-" else
                      local_path(args.src) if handle is None else handle)
            convert_file(source, local_path(args.dst), safe=True if args.safe else None,
                         allow=args.allow or None, threads=args.threads, fsync=args.fsync,
                         **options)
    except (InvalidOptionError, UnknownCodecError) as exc:
        raise UsageError(str(exc)) from None
    except (OSError, CodecPickleError) as exc:
        error(f"{args.src}: {exc}")
        return EXIT_FAILED
    size = human_size(os.stat(local_path(args.dst)).st_size)
    print(f"{args.src} -> {args.dst} ({size})")
    return EXIT_OK
