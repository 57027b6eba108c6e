"""What every command shares: opening inputs (paths or ``-``), printing
data as text or JSON, sizes for humans, exit statuses, progress bars."""

from __future__ import annotations

import argparse
import contextlib
import json
import mmap
import os
import sys
from collections.abc import Iterator
from typing import Any

from .. import _remote
from .._atomic import atomic_write
from .._sources import MemorySource, StreamSource

#: Exit statuses: success, a damaged file or failed check, bad usage.
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

Source = StreamSource | MemorySource

#: fsspec filesystem options for URLs (``--storage-option``), or None.
StorageOptions = dict[str, Any] | None


class UsageError(Exception):
    """A command-line argument is wrong: reported with exit status 2."""


@contextlib.contextmanager
def open_source(name: str, storage_options: StorageOptions = None) -> Iterator[Source]:
    """A source over ``name``: standard input for ``-``; a URL (``s3://``,
    ``http://``, any fsspec protocol, with ``storage_options``) streamed in
    blocks; a local file memory-mapped, so records are views read only
    when used."""
    if name == "-":
        yield StreamSource(sys.stdin.buffer)
        return
    with open_input(name, storage_options) as handle:
        if handle is not None:
            yield StreamSource(handle, handle.size)
            return
    with open(local_path(name), "rb") as file:
        size = os.fstat(file.fileno()).st_size
        if size == 0:
            # mmap refuses empty files; the walker reports them as empty input.
            yield MemorySource(b"")
            return
        mapped = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        yield MemorySource(mapped)
    finally:
        # Views of the map may outlive the walk (in a traceback, a pending
        # record): the map is then unmapped when the last one goes.
        with contextlib.suppress(BufferError):
            mapped.close()


def local_path(name: str) -> str:
    """``name`` as a local path (``file://`` URLs become paths)."""
    return str(_remote.route(name, None)[0]) if _remote.is_url(name) else name


def is_remote(name: str) -> bool:
    """Whether ``name`` is the URL of a remote filesystem (not ``-``, a
    local path or a ``file://`` URL)."""
    return _remote.is_url(name) and not name.lower().startswith("file://")


def remote_target(name: str, storage_options: StorageOptions) -> _remote.RemoteTarget | None:
    """The remote target ``name`` stands for, with ``storage_options``;
    None for local paths, ``file://`` URLs and ``-``."""
    return _remote.route(name, storage_options)[1] if is_remote(name) else None


@contextlib.contextmanager
def open_input(name: str, storage_options: StorageOptions = None) -> Iterator[Any]:
    """A readable file for a remote URL (with a ``size``), or None for
    local paths and ``file://`` URLs."""
    target = remote_target(name, storage_options)
    if target is None:
        yield None
        return
    with _remote.open_for_reading(target) as handle:
        yield handle


@contextlib.contextmanager
def open_output(name: str, fsync: bool, storage_options: StorageOptions = None) -> Iterator[Any]:
    """Where a command writes ``name``: standard output for ``-``, an
    object store for a URL (complete only when the block succeeds), else a
    local file replaced atomically."""
    if name == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    target = remote_target(name, storage_options)
    if target is not None:
        with _remote.atomic_upload(target) as out:
            yield out
        return
    with atomic_write(local_path(name), fsync=fsync) as out:
        yield out


def file_size(name: str) -> int | None:
    """The size of file ``name``; None for standard input and URLs."""
    if name == "-" or is_remote(name):
        return None
    return os.stat(local_path(name)).st_size


def print_json(data: Any, file: Any = None) -> None:
    """Print ``data`` as indented JSON (on standard output by default)."""
    out = sys.stdout if file is None else file
    json.dump(data, out, indent=2)
    out.write("\n")


def error(message: str) -> None:
    """Print ``message`` on standard error, prefixed with the program name."""
    print(f"codecpickle: {message}", file=sys.stderr)


def human_size(nbytes: float) -> str:
    """``nbytes`` with a binary unit: 512 B, 3.0 KiB, 1.5 GiB."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(nbytes) < 1024 or unit == "TiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    raise AssertionError("unreachable")


def ratio(raw: int, stored: int) -> float | None:
    """raw / stored, rounded; None when nothing is stored."""
    return round(raw / stored, 3) if stored else None


def show_progress(requested: bool | None) -> bool:
    """Progress bars go to standard error: by default only when it is a
    terminal (``--progress``/``--no-progress`` decide otherwise)."""
    if requested is not None:
        return requested
    return sys.stderr.isatty()


def add_progress_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar on standard error (--no-progress: never; default: "
        "only when standard error is a terminal)",
    )


def positive_int(text: str) -> int:
    """argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def add_threads_flag(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--threads", type=positive_int, default=None, metavar="N",
        help=f"threads {what} (default: CODECPICKLE_THREADS, else the number of CPUs)",
    )


def chunk_size(text: str) -> int:
    """argparse type: a chunk size in bytes within the format's bounds."""
    from .._format import MAX_CHUNK_SIZE, MIN_CHUNK_SIZE

    try:
        value = int(text)
    except ValueError:
        value = 0
    if not MIN_CHUNK_SIZE <= value <= MAX_CHUNK_SIZE:
        raise argparse.ArgumentTypeError(
            f"expected a number of bytes from {MIN_CHUNK_SIZE} to {MAX_CHUNK_SIZE}, got {text!r}"
        )
    return value


def count(number: int, noun: str) -> str:
    """``1 object``, ``2 objects``."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


# -- fsspec storage options ----------------------------------------------------


def add_storage_flags(parser: argparse.ArgumentParser) -> None:
    """``--storage-option KEY=VALUE`` (repeatable) and ``--storage-options
    JSON``: options for the filesystem of URL arguments (credentials,
    endpoint...), as ``storage_options=`` in the Python API."""
    group = parser.add_argument_group(
        "options for URLs (s3://, gs://, http://, any fsspec protocol)"
    )
    group.add_argument(
        "--storage-option", dest="storage_pairs", action="append", default=[],
        type=_storage_pair, metavar="KEY=VALUE",
        help="an option for the URL's filesystem, such as endpoint_url=http://host:9000 or "
        "anon=true; VALUE is read as JSON when it parses as JSON (true, 3, {\"a\": 1}), else "
        "as a string (repeatable)",
    )
    group.add_argument(
        "--storage-options", dest="storage_json", type=_storage_json, default=None,
        metavar="JSON",
        help="all the options as one JSON object, such as '{\"anon\": true}'; "
        "--storage-option pairs are added to it",
    )


def storage_options(args: argparse.Namespace, names: list[str]) -> StorageOptions:
    """The storage options given on the command line (None when none were),
    checked to apply to at least one of the URLs in ``names``."""
    options: dict[str, Any] = dict(args.storage_json or {})
    options.update(args.storage_pairs)
    if not options and args.storage_json is None:
        return None
    if not any(is_remote(name) for name in names):
        raise UsageError(
            "--storage-option and --storage-options apply to URLs of a remote filesystem "
            f"(such as s3://bucket/key), and no such URL was given (got {', '.join(names)})"
        )
    return options


def _storage_pair(text: str) -> tuple[str, Any]:
    """argparse type: ``KEY=VALUE``, VALUE decoded as JSON when it parses."""
    key, equals, value = text.partition("=")
    if not equals or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        decoded: Any = json.loads(value)
    except ValueError:
        decoded = value
    return key.strip(), decoded


def _storage_json(text: str) -> dict[str, Any]:
    """argparse type: a JSON object."""
    try:
        decoded = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r} ({exc})") from None
    if not isinstance(decoded, dict):
        raise argparse.ArgumentTypeError(
            f"expected a JSON object such as '{{\"anon\": true}}', got {text!r}"
        )
    return decoded
