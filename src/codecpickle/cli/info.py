"""codecpickle info: what a file holds, from its headers and record sizes."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from typing import Any

from .._index import iter_indexes
from .._records import StreamTotals, iter_streams, walk_stream
from ..errors import (
    CodecPickleError,
    EmptyInputError,
    FileFormatError,
    NotCodecPickleFileError,
)
from ._common import (
    EXIT_FAILED,
    EXIT_OK,
    StorageOptions,
    add_storage_flags,
    count,
    error,
    file_size,
    human_size,
    is_remote,
    local_path,
    open_input,
    open_source,
    print_json,
    ratio,
    storage_options,
)

NAME = "info"
SUMMARY = "show format, codec, sizes and ratio of files, without unpickling"
DESCRIPTION = """\
For each FILE: the format version, the codec and its parameters, the
file's size and the raw size of what it holds, the compression ratio, the
number of objects (streams dumped one after another) and of array payloads.

Nothing is unpickled and no stored data is decompressed: the index is
read from the trailer of version-2 files (a few small reads), or found by
walking the record headers (version 1, standard input), so info is fast on
large files and safe on files from anywhere. Structural damage (a truncated
file, a bad record, a damaged trailer) is reported and the exit status is
1; to check every byte against its checksum, use 'codecpickle verify'.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE",
                        help="a file, a URL (s3://, http://, ...), or - for standard input")
    parser.add_argument("--json", action="store_true",
                        help="print a JSON list with one object per FILE")
    add_storage_flags(parser)


def describe(name: str, options: StorageOptions = None) -> dict[str, Any]:
    """Everything ``info`` reports on file ``name`` (a URL's filesystem
    takes ``options``), as JSON-ready data."""
    result: dict[str, Any] = {
        "file": name, "ok": True, "error": None, "problem": None, "size": None,
        "objects": 0, "payloads": 0,
        "raw_size": 0, "stored_size": 0, "ratio": None, "streams": [],
    }
    try:
        with open_input(name, options if is_remote(name) else None) as handle:
            if name == "-":
                streams = _walk_input(name)
            else:
                streams = _read_indexes(local_path(name) if handle is None else handle)
            for stream in streams:
                result["streams"].append(stream)
                result["objects"] += 1
                result["payloads"] += stream["payloads"]
                result["raw_size"] += stream["raw_size"]
                result["stored_size"] += stream["stored_size"]
            result["size"] = (
                result["stored_size"] if name == "-"
                else handle.size if handle is not None else file_size(name)
            )
    except (OSError, CodecPickleError) as exc:
        # A file that is not ours, or cannot be read, is not "damaged".
        damaged = isinstance(exc, FileFormatError) and not isinstance(
            exc, NotCodecPickleFileError | EmptyInputError
        )
        result.update(ok=False, error=str(exc), problem="DAMAGED" if damaged else "error")
    result["ratio"] = ratio(result["raw_size"], result["stored_size"])
    return result


def _header_fields(offset: int, version: int, meta: dict[str, Any]) -> dict[str, Any]:
    return {
        "offset": offset,
        "version": version,
        "codec": meta["codec"],
        "params": meta.get("params", {}),
        "provider": meta.get("provider"),
        "chunk_size": meta["chunk_size"],
    }


def _read_indexes(path: Any) -> Iterator[dict[str, Any]]:
    """Streams of a file through the index API: from version-2 trailers
    (three reads per stream), or by seeking from record header to record
    header for version 1."""
    for index in iter_indexes(path):
        stream = _header_fields(index.offset, index.version, index.meta)
        stream.update(
            payloads=len(index.payloads),
            chunks=len(index.opcode_chunks) + sum(len(p.chunks) for p in index.payloads),
            opcode_bytes=index.opcode_bytes,
            payload_bytes=index.raw_size - index.opcode_bytes,
            raw_size=index.raw_size,
            stored_size=index.size,
            ratio=ratio(index.raw_size, index.size),
            index=index.method,
            manifest=index.manifest,
        )
        yield stream


def _walk_input(name: str) -> Iterator[dict[str, Any]]:
    """Streams of standard input, walked record by record (pipes cannot seek)."""
    with open_source(name) as source:
        for header in iter_streams(source):
            totals = StreamTotals()
            for _ in walk_stream(source, header, totals, read_raw_payloads=False):
                pass
            stream = _header_fields(header.offset, header.version, header.meta)
            stored = totals.end_offset - header.offset
            stream.update(
                payloads=totals.payloads, chunks=totals.chunks,
                opcode_bytes=totals.opcode_bytes, payload_bytes=totals.payload_bytes,
                raw_size=totals.raw_size, stored_size=stored,
                ratio=ratio(totals.raw_size, stored), index="scan",
                manifest=None if totals.trailer is None else totals.trailer.manifest,
            )
            yield stream


def _print_text(result: dict[str, Any]) -> None:
    name = result["file"]
    if not result["ok"]:
        print(f"{name}: {result['problem']}: {result['error']}")
    else:
        print(
            f"{name}: {count(result['objects'], 'object')}, "
            f"{count(result['payloads'], 'payload')}, "
            f"{human_size(result['raw_size'])} raw in {human_size(result['size'])} "
            f"(ratio {result['ratio']})"
        )
    for index, stream in enumerate(result["streams"], 1):
        params = json.dumps(stream["params"], sort_keys=True)
        line = (
            f"  object {index} at offset {stream['offset']}: format {stream['version']}, "
            f"codec {stream['codec']} {params}, chunk size {human_size(stream['chunk_size'])}"
        )
        written = _written_with(stream.get("manifest"))
        if written:
            line += f", written with {written}"
        if stream["provider"]:
            provider = stream["provider"]
            line += f", from {provider.get('distribution')} {provider.get('version', '')}".rstrip()
        print(line)
        if "raw_size" in stream:
            print(
                f"    {count(stream['payloads'], 'payload')}, {count(stream['chunks'], 'chunk')}, "
                f"{human_size(stream['raw_size'])} raw "
                f"({human_size(stream['opcode_bytes'])} of pickle opcodes), "
                f"{human_size(stream['stored_size'])} stored, ratio {stream['ratio']}"
            )


def _written_with(manifest: dict[str, Any] | None) -> str:
    """``Python 3.11.7, codecpickle 0.1.0, numpy 2.4.6`` from a manifest."""
    if not manifest:
        return ""
    names = (("python", "Python"), ("codecpickle", "codecpickle"), ("numpy", "numpy"))
    return ", ".join(
        f"{label} {manifest[key]}" for key, label in names if isinstance(manifest.get(key), str)
    )


def run(args: argparse.Namespace) -> int:
    options = storage_options(args, args.files)
    results = [describe(name, options) for name in args.files]
    if args.json:
        print_json(results)
        for result in results:
            if not result["ok"]:
                error(f"{result['file']}: {result['error']}")
    else:
        for result in results:
            _print_text(result)
    return EXIT_OK if all(result["ok"] for result in results) else EXIT_FAILED
