"""Defaults for code that cannot pass arguments: ``codecpickle.config`` and
the ``CODECPICKLE_THREADS`` environment variable.

An argument given to ``dump``/``dumps``/``load``/``loads`` always wins; when
it is not given, the innermost active ``config(...)`` block that sets it
decides; for ``threads``, then ``CODECPICKLE_THREADS``; then the built-in
default.  Settings live in a :class:`contextvars.ContextVar`, so a block
affects only the thread or asyncio task that entered it (new threads start
from the defaults), and blocks nest.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any, Final

from . import _format as fmt
from .errors import InvalidOptionError

#: The environment variable giving the default number of threads.
THREADS_ENV: Final = "CODECPICKLE_THREADS"


class _NotSet:
    def __repr__(self) -> str:
        return "<not set>"

    def __bool__(self) -> bool:
        return False


NOT_SET: Final = _NotSet()


@dataclasses.dataclass(frozen=True)
class Settings:
    """The defaults in effect; :data:`NOT_SET` where nothing was set."""

    threads: Any = NOT_SET
    compress: Any = NOT_SET
    chunk_size: Any = NOT_SET
    progress: Any = NOT_SET
    filters: Any = NOT_SET


# Settings is a frozen dataclass: sharing the default instance is safe.
_settings: ContextVar[Settings] = ContextVar(
    "codecpickle_settings", default=Settings()  # noqa: B039
)


@contextlib.contextmanager
def config(
    *,
    threads: int | _NotSet | None = NOT_SET,
    compress: Any = NOT_SET,
    chunk_size: int | _NotSet | None = NOT_SET,
    progress: Any = NOT_SET,
    filters: Any = NOT_SET,
) -> Iterator[Settings]:
    """Set defaults for ``dump``, ``dumps``, ``load`` and ``loads`` inside a
    ``with`` block, for code that cannot pass arguments::

        import codecpickle

        with codecpickle.config(threads=1, compress=("zstd", 9)):
            data = codecpickle.dumps(list(range(10)))   # zstd 9, one thread
        assert codecpickle.loads(data) == list(range(10))

    ``threads``, ``compress``, ``chunk_size``, ``progress`` and ``filters``
    take the same values as the arguments of the same names; ``None`` (for
    ``threads`` and ``chunk_size``) restores the built-in default inside the
    block.  A ``compress`` set here applies when a call gives none, ahead of
    a path's extension.  A forced filter set here (``"shuffle"``,
    ``"delta"``) applies to compressed dumps and leaves uncompressed ones
    as they are (given to an uncompressed dump as an argument, it is an
    error).  Arguments passed to a call win over the block; the block
    wins over ``CODECPICKLE_THREADS``.  Blocks nest (inner settings win,
    outer ones show through) and apply only to the thread or asyncio task
    that entered them.  Invalid values raise
    :class:`~codecpickle.errors.InvalidOptionError` when the block is entered.
    The block yields the settings now in effect.
    """
    given = {
        name: value
        for name, value in (
            ("threads", threads),
            ("compress", compress),
            ("chunk_size", chunk_size),
            ("progress", progress),
            ("filters", filters),
        )
        if value is not NOT_SET
    }
    _validate(given)
    token = _settings.set(dataclasses.replace(_settings.get(), **given))
    try:
        yield _settings.get()
    finally:
        _settings.reset(token)


def current() -> Settings:
    """The settings in effect in this thread or task."""
    return _settings.get()


def _validate(given: dict[str, Any]) -> None:
    # Imported here: the codec resolver and the progress module import
    # modules that import this one.
    from ._filters import parse_filters
    from ._progress import check_progress
    from .codecs import resolve_compress

    if "threads" in given and given["threads"] is not None:
        check_positive_int(given["threads"], "threads")
    if "chunk_size" in given and given["chunk_size"] is not None:
        check_chunk_size(given["chunk_size"])
    if "compress" in given:
        resolve_compress(given["compress"])
    if "progress" in given:
        check_progress(given["progress"])
    if "filters" in given:
        parse_filters(given["filters"])


def check_positive_int(value: object, name: str) -> int:
    """``value`` if it is a positive int, else :class:`InvalidOptionError`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidOptionError(
            f"Expected {name} to be a positive int or None. Got {value!r} instead."
        )
    return value


def check_chunk_size(size: object) -> int:
    """``size`` if it is a valid chunk size in bytes, else
    :class:`InvalidOptionError`."""
    if (
        isinstance(size, bool)
        or not isinstance(size, int)
        or not fmt.MIN_CHUNK_SIZE <= size <= fmt.MAX_CHUNK_SIZE
    ):
        raise InvalidOptionError(
            f"Expected chunk_size to be an int from {fmt.MIN_CHUNK_SIZE} to "
            f"{fmt.MAX_CHUNK_SIZE} bytes. Got {size!r} instead."
        )
    return size


def default_threads() -> int:
    """Threads to use when a call gives none: the active ``config`` block's,
    else ``CODECPICKLE_THREADS``, else the CPUs this process may use."""
    threads = _settings.get().threads
    if threads is not NOT_SET and threads is not None:
        return int(threads)
    text = os.environ.get(THREADS_ENV)
    if text is not None and text.strip():
        try:
            value = int(text.strip())
        except ValueError:
            value = 0
        if value < 1:
            raise InvalidOptionError(
                f"Expected the environment variable {THREADS_ENV} to be a positive integer "
                f"(a number of threads). Got {text!r} instead."
            )
        return value
    return usable_cpus()


def usable_cpus() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def pick(name: str, given: Any, unset: Any) -> Any:
    """``given`` unless it is ``unset``; then the active block's setting
    ``name``, or ``unset`` when no block sets it."""
    if given is not unset:
        return given
    value = getattr(_settings.get(), name)
    return unset if value is NOT_SET else value
