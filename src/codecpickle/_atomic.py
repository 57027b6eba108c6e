"""Atomic replacement of a file: write a temporary sibling, then rename.

``os.replace`` is atomic on POSIX and Windows within one filesystem, so the
target name always refers to either the complete old file or the complete
new one, whatever happens to the writing process.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Iterator
from typing import BinaryIO

#: Temporary files are named ``.<target name>.<random>.cpkl-tmp`` next to
#: the target (hidden on POSIX, easy to recognise and clean up).
TEMP_SUFFIX = ".cpkl-tmp"


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], *, fsync: bool = True) -> Iterator[BinaryIO]:
    """Yield a binary file whose contents replace ``path`` when the block
    exits normally; on an exception the temporary file is removed and
    ``path`` is left as it was.

    With ``fsync`` the data (and then the directory entry) reach the disk
    before and after the rename, so a power loss cannot leave an empty or
    partial file under the target name.
    """
    # Through symlinks, as a plain open() writes: the link stays a link and
    # the file it points to is replaced (in its own directory, so that the
    # rename stays on one filesystem).
    target = os.path.realpath(os.fspath(path))
    directory, name = os.path.split(target)
    # Shortened so the temporary name fits where the target's name just fits.
    temp = os.path.join(directory, f".{name[:200]}.{secrets.token_hex(6)}{TEMP_SUFFIX}")
    # O_EXCL: never follow or clobber anything already there; 0o666 lets the
    # umask decide the final permissions, as with a plain open().
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
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
        os.replace(temp, target)
    except BaseException:
        _remove(temp)
        raise
    if fsync:
        _fsync_directory(directory)


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
