"""Atomic replacement of a file: write a temporary sibling, then rename.

``os.replace`` is atomic on POSIX and Windows within one filesystem, so the
target name always refers to either the complete old file or the complete
new one, whatever happens to the writing process.

The target is checked before anything is written (a directory, a file its
permissions protect from writing), and every error names the caller's path,
never the hidden temporary file.  Targets that are not regular files
(``/dev/null``, a FIFO) cannot be replaced by a rename and are written
directly, as ``open(path, "wb")`` would.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from typing import BinaryIO

#: Temporary files are named ``.<target name>.<random>.cpkl-tmp`` next to
#: the target (hidden on POSIX, easy to recognise and clean up).
TEMP_SUFFIX = ".cpkl-tmp"


@contextlib.contextmanager
def atomic_write(path: str, *, fsync: bool = True) -> Iterator[BinaryIO]:
    """Yield a binary file whose contents replace ``path`` when the block
    exits normally; on an exception the temporary file is removed and
    ``path`` is left as it was.

    With ``fsync`` the data (and then the directory entry) reach the disk
    before and after the rename, so a power loss cannot leave an empty or
    partial file under the target name.

    Before anything is written: a directory raises :class:`IsADirectoryError`,
    and an existing file that may not be written raises
    :class:`PermissionError` (see :func:`check_writable`).
    """
    # Through symlinks, as a plain open() writes: the link stays a link and
    # the file it points to is replaced (in its own directory, so that the
    # rename stays on one filesystem).
    target = os.path.realpath(path)
    status = _existing(target)
    if status is not None and not stat.S_ISREG(status.st_mode):
        if stat.S_ISDIR(status.st_mode):
            raise _error(errno.EISDIR, "", path)
        # A device or a FIFO: a rename would replace the node itself.
        with _naming(path):
            direct = open(target, "wb")  # noqa: SIM115 (closed just below)
        with direct:
            yield direct
        return
    if status is not None:
        check_writable(target, status, path)
    directory, name = os.path.split(target)
    # Shortened so the temporary name fits where the target's name just fits.
    temp = os.path.join(directory, f".{name[:200]}.{secrets.token_hex(6)}{TEMP_SUFFIX}")
    # O_EXCL: never follow or clobber anything already there; 0o666 lets the
    # umask decide the final permissions, as with a plain open().
    with _naming(path, "cannot create a temporary file next to it for an atomic write"):
        fd = os.open(
            temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666
        )
    try:
        _copy_mode(target, fd)
        file = os.fdopen(fd, "wb")
    except BaseException:
        os.close(fd)
        _remove(temp)
        raise
    try:
        with file:
            yield file
            file.flush()
            if fsync:
                os.fsync(file.fileno())
        with _naming(path, "cannot rename the complete temporary file over it"):
            os.replace(temp, target)
    except BaseException:
        _remove(temp)
        raise
    if fsync:
        _fsync_directory(directory)


def check_writable(target: str, status: os.stat_result, path: str) -> None:
    """Refuse, with :class:`PermissionError`, to replace an existing file
    that this process could not open for writing, or whose permission bits
    let nobody write it (``chmod 444``): the rename would otherwise replace
    it silently where ``open(path, "wb")``, ``pickle`` and ``joblib`` fail.
    The permission bits are checked even for root, which ``open()`` lets
    through: a file made read-only on purpose is not replaced by a dump.
    """
    effective = os.access in os.supports_effective_ids
    if not status.st_mode & 0o222 or not os.access(target, os.W_OK, effective_ids=effective):
        raise _error(
            errno.EACCES,
            f"the existing file is read-only (mode {stat.filemode(status.st_mode)}); "
            "make it writable or remove it first",
            path,
        )


def _existing(target: str) -> os.stat_result | None:
    try:
        return os.stat(target)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _error(code: int, detail: str, path: str) -> OSError:
    # OSError(errno, ...) picks the subclass (PermissionError, ...) itself.
    message = os.strerror(code)
    return OSError(code, f"{message} ({detail})" if detail else message, path)


@contextlib.contextmanager
def _naming(path: str, detail: str = "") -> Iterator[None]:
    """Re-raise an OSError about the temporary file (or the resolved
    target) as the same error about the caller's ``path``."""
    try:
        yield
    except OSError as exc:
        if exc.errno is None or (exc.filename == path and exc.filename2 is None):
            raise
        raise _error(exc.errno, detail, path) from None


def _remove(temp: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temp)


def _copy_mode(target: str, fd: int) -> None:
    # A plain open() keeps an existing file's permissions; a fresh temporary
    # file would get the umask's, and could widen access to a private file.
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        return
    if hasattr(os, "fchmod"):
        os.fchmod(fd, stat.S_IMODE(mode))


def _fsync_directory(directory: str) -> None:
    # Makes the rename itself durable; not possible on every platform.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
