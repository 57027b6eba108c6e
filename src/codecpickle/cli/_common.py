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


class UsageError(Exception):
    """A command-line argument is wrong: reported with exit status 2."""


@contextlib.contextmanager
def open_source(name: str) -> Iterator[Source]:
    """A source over ``name``: standard input for ``-``; a URL (``s3://``,
    ``http://``, any fsspec protocol) streamed in blocks; a local file
    memory-mapped, so records are views read only when used."""
    if name == "-":
        yield StreamSource(sys.stdin.buffer)
        return
    with open_input(name) as handle:
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


@contextlib.contextmanager
def open_input(name: str) -> Iterator[Any]:
    """A readable file for a remote URL (with a ``size``), or None for
    local paths and ``file://`` URLs."""
    target = _remote.route(name, None)[1] if _remote.is_url(name) else None
    if target is None:
        yield None
        return
    with _remote.open_for_reading(target) as handle:
        yield handle


@contextlib.contextmanager
def open_output(name: str, fsync: bool) -> Iterator[Any]:
    """Where a command writes ``name``: standard output for ``-``, an
    object store for a URL (complete only when the block succeeds), else a
    local file replaced atomically."""
    if name == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    target = _remote.route(name, None)[1] if _remote.is_url(name) else None
    if target is not None:
        with _remote.atomic_upload(target) as out:
            yield out
        return
    with atomic_write(local_path(name), fsync=fsync) as out:
        yield out


def file_size(name: str) -> int | None:
    """The size of file ``name``; None for standard input and URLs."""
    if name == "-" or (_remote.is_url(name) and not name.lower().startswith("file://")):
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
