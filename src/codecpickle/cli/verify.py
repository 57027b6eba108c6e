"""codecpickle verify: check every checksum of files, without unpickling."""

from __future__ import annotations

import argparse
import collections
import time
from concurrent.futures import Future
from typing import Any

from .. import _format as fmt
from .._config import default_threads
from .._pool import ChunkPool
from .._progress import Reporter, terminal_bar
from .._records import Record, StreamHeader, check, decode, iter_streams, walk_stream
from ..codecs import Codec
from ..errors import CodecPickleError
from ._common import (
    EXIT_FAILED,
    EXIT_OK,
    StorageOptions,
    UsageError,
    add_progress_flag,
    add_storage_flags,
    add_threads_flag,
    count,
    error,
    file_size,
    human_size,
    is_remote,
    local_path,
    open_source,
    print_json,
    show_progress,
    storage_options,
)

NAME = "verify"
SUMMARY = "check every checksum of files (fast, parallel, nothing unpickled)"
DESCRIPTION = """\
Read each FILE completely and check every record against its checksum:
the header, every opcode and data chunk, every raw array payload, the END
record and the trailer (format 2) of each object in the file. Nothing is unpickled, so verifying
is safe on files from anywhere; checksums are computed on several threads.

The first damage found is reported with its offset in the file and the
exit status is 1; an intact file prints "ok" and the exit status is 0.
With --decode, compressed chunks are also decompressed (slower), which
catches a codec that cannot read what was written.

Arrays stored uncompressed and changed in place through load(...,
mmap_mode="r+") leave their checksums stale on purpose (the file's header
says so): verify reports them as not checked rather than damaged.
--reseal first recomputes those checksums (codecpickle.reseal), after
which every byte is checked again.
"""

# Bytes of stored data waiting to be hashed at once (stdin reads are held).
_MAX_PENDING_BYTES = 256 << 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE",
                        help="a file, a URL (s3://, http://, ...), or - for standard input")
    parser.add_argument("--decode", action="store_true",
                        help="also decompress every compressed chunk")
    parser.add_argument("--reseal", action="store_true",
                        help="first recompute the checksums of array data changed in place "
                        "through mmap_mode='r+' (local files only; see codecpickle.reseal)")
    add_threads_flag(parser, "hashing chunks")
    parser.add_argument("--json", action="store_true",
                        help="print a JSON list with one object per FILE")
    add_progress_flag(parser)
    add_storage_flags(parser)


def _check_one(record: Record, codec: Codec | None, decode_too: bool) -> None:
    check(record)
    if decode_too and record.compressed:
        decode(record, codec)


def verify_file(
    name: str, threads: int, decode_too: bool = False, reporter: Reporter | None = None,
    options: StorageOptions = None,
) -> dict[str, Any]:
    """Check every checksum of file ``name`` (a URL's filesystem takes
    ``options``); return what ``verify`` reports."""
    result: dict[str, Any] = {
        "file": name, "ok": True, "objects": 0, "records": 0, "bytes": 0, "seconds": 0.0,
        "error": None, "offset": None, "unverified_raw_payloads": 0, "resealed": None,
    }
    started = time.perf_counter()
    pool = ChunkPool(threads)
    pending: collections.deque[tuple[Future[None], Record]] = collections.deque()
    pending_bytes = 0

    def settle_one() -> None:
        nonlocal pending_bytes
        future, record = pending.popleft()
        pending_bytes -= record.stored_size
        try:
            future.result()
        except CodecPickleError as exc:
            result.update(ok=False, error=str(exc), offset=record.offset)
            raise _Stop from None
        result["records"] += 1
        if reporter is not None:
            reporter.advance(record.stored_size)

    offset = 0
    try:
        with open_source(name, options) as source:
            try:
                for header in iter_streams(source):
                    codec = _codec(header, decode_too)
                    result["records"] += 1  # the header, checked as it was read
                    offset = source.offset
                    for record in walk_stream(source, header, read_raw_payloads=False):
                        if header.mutable_raw_payloads and record.kind == fmt.KIND_RAW_PAYLOAD:
                            # Changed in place on purpose (mmap_mode="r+"):
                            # stale until resealed, so not a sign of damage.
                            result["unverified_raw_payloads"] += 1
                            offset = source.offset
                            continue
                        pending.append((pool.submit(_check_one, record, codec, decode_too),
                                        record))
                        pending_bytes += record.stored_size
                        while len(pending) > 4 * threads or pending_bytes > _MAX_PENDING_BYTES:
                            settle_one()
                        offset = source.offset
                    while pending:
                        settle_one()
                    result["objects"] += 1
                    offset = source.offset
            except CodecPickleError as exc:
                # Damage met while walking: an earlier record may be damaged
                # too, and the first damage is the one to report.
                while pending:
                    settle_one()
                result.update(ok=False, error=str(exc), offset=offset)
            result["bytes"] = source.offset
    except _Stop:
        pass
    except OSError as exc:
        result.update(ok=False, error=str(exc))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    result["seconds"] = round(time.perf_counter() - started, 4)
    return result


class _Stop(Exception):
    """The first damage was found: stop reading."""


def _codec(header: StreamHeader, decode_too: bool) -> Codec | None:
    return header.codec() if decode_too else None


def run(args: argparse.Namespace) -> int:
    threads = default_threads() if args.threads is None else args.threads
    options = storage_options(args, args.files)
    if args.reseal:
        for name in args.files:
            if name == "-" or is_remote(name):
                raise UsageError(f"--reseal changes files in place: {name} is not a local file")
    results = []
    for name in args.files:
        resealed = None
        if args.reseal:
            from .. import reseal

            try:
                resealed = reseal(local_path(name))
            except (OSError, CodecPickleError) as exc:
                results.append({"file": name, "ok": False, "error": str(exc), "offset": None,
                                "resealed": None})
                if not args.json:
                    print(f"{name}: reseal failed: {exc}")
                continue
        bar = None
        if show_progress(args.progress):
            try:
                total = file_size(name)
            except OSError:
                total = None
            bar = terminal_bar(f"verify {name}", total)
        try:
            result = verify_file(name, threads, args.decode,
                                 None if bar is None else Reporter(bar.update, total),
                                 options if is_remote(name) else None)
        finally:
            if bar is not None:
                bar.close()
        result["resealed"] = resealed
        results.append(result)
        if not args.json:
            if resealed is not None:
                print(f"{name}: resealed ({count(resealed, 'checksum')} changed)")
            if result["ok"] and result["unverified_raw_payloads"]:
                print(f"{name}: ok, but {count(result['unverified_raw_payloads'], 'raw payload')} "
                      "changed in place through mmap_mode='r+' not checked: run "
                      "'codecpickle verify --reseal' once the edits are done")
            elif result["ok"]:
                speed = result["bytes"] / max(result["seconds"], 1e-9)
                print(f"{name}: ok ({count(result['objects'], 'object')}, "
                      f"{count(result['records'], 'record')}, "
                      f"{human_size(result['bytes'])} at {human_size(speed)}/s)")
            else:
                offset = result["offset"]
                where = "" if offset is None else f" (record at offset {offset})"
                print(f"{name}: DAMAGED{where}: {result['error']}")
    if args.json:
        print_json(results)
    failed = [result for result in results if not result["ok"]]
    if failed and args.json:
        for result in failed:
            error(f"{result['file']}: {result['error']}")
    return EXIT_FAILED if failed else EXIT_OK
