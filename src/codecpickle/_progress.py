"""Progress reports for long dumps and loads (``progress=`` on dump/load).

``progress`` is one of:

- ``None`` or ``False``: no reports (the default);
- ``True``: a progress bar on standard error with bytes done and
  throughput, drawn by ``tqdm`` when it is installed, else by ``rich``,
  else as a plain text line; it appears only once an operation has run for
  half a second, so quick calls print nothing;
- a callable ``progress(done_bytes, total_bytes)``: called from the calling
  thread as bytes reach or leave the file, once per MiB or tenth of a
  second, whichever comes first (writes and reads are split into pieces of
  at most 16 MiB, so at least that often),
  with ``done_bytes`` never decreasing and ``total_bytes`` ``None`` while
  the total is unknown (dumps: the size is known only at the end; loads
  from pipes).  After a successful operation it is called once more with
  ``done_bytes == total_bytes``.

Counting happens on the file object (bytes written or read) or, for inputs
in memory and memory maps, on the source the reader takes its bytes from,
not inside the container writer or reader; reports are throttled so that a
stream of many small records costs a callback per MiB, not one per read.
"""

from __future__ import annotations

import contextlib
import io
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from ._sources import MemorySource
from ._writer import write_all
from .errors import InvalidOptionError

#: ``progress(done_bytes, total_bytes)``; ``total_bytes`` may be None.
ProgressCallback = Callable[[int, int | None], Any]

# Writes and reads are split into pieces of at most this size so reports
# (and Ctrl-C between them) come at least this often.
_PIECE = 16 << 20

# The callback runs once this many bytes have passed since the last report,
# or this many seconds (output that compresses to little still moves), and
# at the end: not on every read, as the reader takes a record's kind, header
# and checksum in separate small reads.
_STEP = 1 << 20
_INTERVAL = 0.1
# Bytes between two looks at the clock and the thresholds above.
_CHECK = 64 << 10

# Bars appear only for operations that last longer than this (seconds).
_DELAY = 0.5


class Reporter:
    """Counts bytes and passes the count to a callback, once per
    :data:`_STEP` bytes or :data:`_INTERVAL` seconds, never with a smaller
    count than before."""

    def __init__(self, callback: ProgressCallback, total: int | None) -> None:
        self._callback = callback
        self.total = total
        self.done = 0
        #: Counting code calls :meth:`check` once ``done`` reaches this: the
        #: common case (a small read) costs an addition and a comparison.
        self.next_check = _CHECK
        self._reported = 0
        self._reported_at = time.monotonic()

    def advance(self, nbytes: int) -> None:
        self.done += nbytes
        if self.done >= self.next_check:
            self.check()

    def check(self) -> None:
        """Report ``done`` if a MiB or a tenth of a second has passed since
        the last report (at most every :data:`_CHECK` bytes: no clock read
        on every small read)."""
        self.next_check = self.done + _CHECK
        # ``done`` may step back (a reader seeking back over bytes it read
        # to look at them): reports stay where they were until it passes.
        now = time.monotonic()
        if self.done > self._reported and (
            self.done - self._reported >= _STEP or now - self._reported_at >= _INTERVAL
        ):
            self._reported = self.done
            self._reported_at = now
            self._callback(self.done, self.total)

    def finish(self) -> None:
        """Report completion: ``done == total`` (the total is now known)."""
        self.done = max(self.done, self._reported)
        if self._reported == self.done == self.total:
            return  # the last report already said so
        self.total = self._reported = self.done
        self._callback(self.done, self.total)

    def wrap_writer(self, file: Any) -> _CountingWriter:
        """``file``, counting the bytes written to it."""
        return _CountingWriter(file, self)

    def wrap_reader(self, file: Any) -> _CountingReader:
        """``file``, counting the bytes read from it."""
        return _CountingReader(file, self)

    def bytes_file(self, data: Any) -> io.BytesIO:
        """An ``io.BytesIO`` holding ``data``, counting the bytes read."""
        return _CountingBytesIO(data, self)

    def memory_source(self, data: Any, *, zero_copy: bool = False) -> MemorySource:
        """A :class:`MemorySource` over ``data`` counting the bytes taken."""
        return _CountingMemorySource(data, self, zero_copy=zero_copy)


class _CountingWriter:
    """Forwards writes to a file, in pieces, counting the bytes."""

    def __init__(self, file: Any, reporter: Reporter) -> None:
        self._file = file
        self._reporter = reporter

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        for start in range(0, view.nbytes, _PIECE):
            piece = view[start : start + _PIECE]
            write_all(self._file.write, piece)
            self._reporter.advance(piece.nbytes)
        return view.nbytes

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)


class _CountingReader:
    """Forwards reads from a file, counting the bytes."""

    def __init__(self, file: Any, reporter: Reporter) -> None:
        self._file = file
        self._read = file.read
        self._reporter = reporter
        if not callable(getattr(file, "readinto", None)):
            self.readinto = None  # the source then falls back on read()

    def read(self, size: int = -1) -> bytes:
        # Called for every record's kind, header and checksum: kept lean.
        data = self._read(size)
        if data:
            reporter = self._reporter
            reporter.done += len(data)
            if reporter.done >= reporter.next_check:
                reporter.check()
        return data

    def readinto(self, buffer: Any) -> int:  # type: ignore[no-redef]
        if type(buffer) is not memoryview or buffer.nbytes > _PIECE:
            buffer = memoryview(buffer).cast("B")[:_PIECE]
        count = self._file.readinto(buffer)
        if count:
            reporter = self._reporter
            reporter.done += count
            if reporter.done >= reporter.next_check:
                reporter.check()
        return count

    def readline(self, size: int = -1) -> bytes:
        # Pickle streams of protocols 0 and 1 (foreign loads) read lines.
        line = self._file.readline(size)
        if line:
            self._reporter.advance(len(line))
        return line

    def seek(self, offset: int, whence: int = 0) -> int:
        # Bytes looked at and sought back over (format detection) are not
        # progress: the count follows the position.
        before = self._file.tell()
        after = int(self._file.seek(offset, whence))
        self._reporter.done += after - before
        return after

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)


class _CountingMemorySource(MemorySource):
    """A :class:`MemorySource` counting what is taken from it (every read
    goes through :meth:`view`; mapped bytes count once handed out)."""

    def __init__(self, data: Any, reporter: Reporter, *, zero_copy: bool = False) -> None:
        super().__init__(data, zero_copy=zero_copy)
        self._reporter = reporter

    def view(self, nbytes: int, what: str) -> memoryview:
        taken = super().view(nbytes, what)
        self._reporter.advance(nbytes)
        return taken


class _CountingBytesIO(io.BytesIO):
    """A ``BytesIO`` (still one for code that asks, to learn its size)
    counting what is read from it, by its position."""

    def __init__(self, data: Any, reporter: Reporter) -> None:
        super().__init__(memoryview(data).cast("B"))
        self._reporter = reporter

    def _count(self, before: int) -> None:
        self._reporter.advance(self.tell() - before)

    def read(self, size: int | None = -1) -> bytes:
        before = self.tell()
        data = super().read(size)
        self._count(before)
        return data

    def readinto(self, buffer: Any) -> int:
        before = self.tell()
        count = super().readinto(buffer)
        self._count(before)
        return count

    def readline(self, size: int | None = -1) -> bytes:
        before = self.tell()
        line = super().readline(size)
        self._count(before)
        return line

    def seek(self, offset: int, whence: int = 0) -> int:
        before = self.tell()
        after = super().seek(offset, whence)
        self._count(before)
        return after


def check_progress(progress: object) -> None:
    """Refuse a ``progress`` that is neither a bool, None nor a callable."""
    if progress is None or isinstance(progress, bool) or callable(progress):
        return
    raise InvalidOptionError(
        "Expected progress to be True, False, None or a callable(done_bytes, total_bytes). "
        f"Got {progress!r} instead."
    )


@contextlib.contextmanager
def reporting(progress: object, total: int | None, description: str) -> Iterator[Reporter | None]:
    """A :class:`Reporter` for ``progress`` (None when it is off); on a
    normal exit it reports completion and closes any bar it drew."""
    check_progress(progress)
    if not progress:
        yield None
        return
    if callable(progress) and not isinstance(progress, bool):
        reporter = Reporter(progress, total)
        yield reporter
        reporter.finish()
        return
    bar = terminal_bar(description, total)
    try:
        reporter = Reporter(bar.update, total)
        yield reporter
        reporter.finish()
    finally:
        bar.close()


class _Bar:
    """What a terminal bar offers: ``update(done, total)`` and ``close()``."""

    def update(self, done: int, total: int | None) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


def terminal_bar(description: str, total: int | None) -> _Bar:
    """A byte-counting bar on standard error: tqdm, rich, or plain text."""
    try:
        return _TqdmBar(description, total)
    except ImportError:
        pass
    try:
        return _RichBar(description, total)
    except ImportError:
        return _TextBar(description, total)


class _TqdmBar(_Bar):
    def __init__(self, description: str, total: int | None) -> None:
        from tqdm import tqdm

        self._bar = tqdm(
            desc=description, total=total, unit="B", unit_scale=True, unit_divisor=1024,
            delay=_DELAY, file=sys.stderr, leave=False,
        )

    def update(self, done: int, total: int | None) -> None:
        if total != self._bar.total:
            self._bar.total = total
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        self._bar.close()


class _RichBar(_Bar):
    def __init__(self, description: str, total: int | None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(), DownloadColumn(binary_units=True),
            TransferSpeedColumn(), TimeRemainingColumn(),
            console=Console(stderr=True), transient=True,
        )
        self._task = self._progress.add_task(description, total=total)
        self._started = time.monotonic()
        self._shown = False

    def update(self, done: int, total: int | None) -> None:
        if not self._shown and time.monotonic() - self._started >= _DELAY:
            self._progress.start()
            self._shown = True
        self._progress.update(self._task, completed=done, total=total)

    def close(self) -> None:
        if self._shown:
            self._progress.stop()


class _TextBar(_Bar):
    """One line on standard error, redrawn at most twice a second."""

    def __init__(self, description: str, total: int | None) -> None:
        self._description = description
        self._started = self._drawn = time.monotonic()
        self._width = 0

    def update(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        if now - self._drawn < _DELAY:
            return
        self._drawn = now
        speed = done / max(now - self._started, 1e-9)
        share = f" ({100 * done / total:.0f}%)" if total else ""
        line = f"{self._description}: {_mib(done)}{share} at {_mib(speed)}/s"
        sys.stderr.write("\r" + line.ljust(self._width))
        sys.stderr.flush()
        self._width = len(line)

    def close(self) -> None:
        if self._width:
            sys.stderr.write("\r" + " " * self._width + "\r")
            sys.stderr.flush()


def _mib(nbytes: float) -> str:
    return f"{nbytes / (1 << 20):.1f} MiB"
