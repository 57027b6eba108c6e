"""URLs for dump and load: object stores and other filesystems through fsspec.

A ``str`` that starts with ``protocol://`` (or a chained ``proto::proto://``
URL) names a location on an fsspec filesystem; ``storage_options`` go to
that filesystem's constructor (credentials, endpoint, ...).  ``file://`` URLs
are local paths and take the local route (atomic replace, ``mmap_mode``)
without needing fsspec.  fsspec and the protocol's implementation (``s3fs``,
``gcsfs``, ``adlfs``, ``aiohttp``) are optional: a missing one is named in a
:class:`~codecpickle.errors.MissingDependencyError`.

Writes are all-or-nothing:

- ``s3://``: s3fs files opened with ``autocommit=False`` upload every part of
  a multipart upload but complete it only in ``commit()``; ``discard()``
  aborts it.  Nothing is visible under the key until the stream is complete,
  and a failed dump aborts the upload.  (With the default ``autocommit=True``
  s3fs completes the upload when the file is closed, even when a ``with``
  block is left by an exception: a partial object would appear.)
- every other filesystem: the stream goes to a hidden temporary name beside
  the target, which is moved onto the target once complete and removed on
  failure.  On object stores that cannot rename (GCS, Azure) the move is a
  server-side copy.

Reads stream: the object is read through a seekable fsspec file in bounded
blocks (HTTP range requests), never downloaded whole first.  Errors from the
storage layer become :class:`~codecpickle.errors.StorageError` subclasses
that name the URL.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import (
    CodecPickleError,
    InvalidOptionError,
    MissingDependencyError,
    StorageError,
    StorageNotFoundError,
    StoragePermissionError,
)

__all__ = [
    "RemoteTarget",
    "StoreFile",
    "atomic_upload",
    "is_url",
    "open_for_reading",
    "open_input",
    "route",
]

# ``scheme://`` (two letters at least, so ``C://x`` stays a Windows path) or
# fsspec's chaining ``cache::scheme://``.
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]+(://|::)")

# Protocols whose fsspec implementation lives in another package, for the
# "install X" message (fsspec's own message is kept for the others).
_PACKAGES = {
    "s3": "s3fs",
    "s3a": "s3fs",
    "gs": "gcsfs",
    "gcs": "gcsfs",
    "az": "adlfs",
    "abfs": "adlfs",
    "abfss": "adlfs",
    "adl": "adlfs",
    "http": "aiohttp",
    "https": "aiohttp",
}

_READ_ONLY = frozenset({"http", "https"})

# Protocols whose files, opened with autocommit=False, keep everything
# invisible until commit() and can discard() it (verified for s3fs; see the
# module docstring).  Other filesystems write a temporary name, then move.
_DEFERRED_COMMIT = frozenset({"s3", "s3a"})

# Block sizes when the caller's storage_options set none: reads fetch one
# block per request (s3fs's default block of 50 MiB would hold that much per
# cached block); writes upload parts of this size (S3's minimum part
# is 5 MiB, its maximum part count 10,000: 16 MiB parts allow 160 GB).
READ_BLOCK_SIZE = 8 << 20
WRITE_BLOCK_SIZE = 16 << 20

_BLOCK_SIZE_OPTIONS = ("block_size", "default_block_size")

# Protocols whose files cache reads through fsspec's block caches.  A load
# reads the stream's head, then its trailer at the end, then the stream
# from the start: a cache of a few whole blocks (LRU) keeps the head while
# the tail is read, where the default read-ahead cache would fetch it twice.
# Memory: at most READ_CACHE_BLOCKS blocks.
_BLOCK_CACHED = frozenset({"s3", "s3a", "http", "https", "gs", "gcs", "az", "abfs", "abfss"})
READ_CACHE_BLOCKS = 3

#: Temporary objects are named ``.<target name>.<random>.cpkl-tmp`` beside
#: the target, as for local files.
TEMP_SUFFIX = ".cpkl-tmp"


def is_url(file: object) -> bool:
    """Whether ``file`` is a URL string (``s3://...``, ``memory://...``,
    ``simplecache::s3://...``) rather than a local path or a file object."""
    return isinstance(file, str) and _URL.match(file) is not None


@dataclass(frozen=True)
class RemoteTarget:
    """A URL on an fsspec filesystem and the options for that filesystem."""

    url: str
    storage_options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def protocol(self) -> str:
        # The innermost protocol of a chained URL is where the data lives.
        return self.url.rpartition("::")[2].partition("://")[0].lower()


def route(file: Any, storage_options: object) -> tuple[Any, RemoteTarget | None]:
    """Split ``file`` into what the local code handles and a remote target.

    Returns ``(file, None)`` for local paths and file objects (a ``file://``
    URL becomes its local path) and ``(file, target)`` for other URLs.
    ``storage_options`` are only accepted with remote URLs.
    """
    options = _check_storage_options(storage_options)
    if not is_url(file):
        if options:
            raise InvalidOptionError(
                "storage_options only apply to URLs of a remote filesystem (such as "
                f"'s3://bucket/key'). Got them with {type(file).__name__} {file!r}."
            )
        return file, None
    if file[:7].lower() == "file://":
        if options:
            raise InvalidOptionError(
                f"storage_options do not apply to {file!r}: file:// URLs are written and "
                "read as local paths."
            )
        return _local_path(file), None
    return file, RemoteTarget(file, options)


def _check_storage_options(storage_options: object) -> dict[str, Any]:
    if storage_options is None:
        return {}
    if not isinstance(storage_options, Mapping):
        raise InvalidOptionError(
            "Expected storage_options to be a mapping of filesystem options (such as "
            f"{{'anon': True}}) or None. Got {type(storage_options).__name__} instead."
        )
    return dict(storage_options)


def _local_path(url: str) -> str:
    # As fsspec's LocalFileSystem reads them: file:///abs/path, and
    # file://localhost/abs/path; no percent-decoding.
    path = url[7:]
    if path.lower().startswith("localhost/"):
        path = path[9:]
    return path


# -- the filesystem ----------------------------------------------------------


def _filesystem(target: RemoteTarget) -> tuple[Any, str]:
    """The fsspec filesystem and path for ``target``."""
    try:
        import fsspec
    except ImportError as exc:
        raise MissingDependencyError(
            f"{target.url!r} is a URL, which needs fsspec: "
            f"pip install 'codecpickle[fsspec]'{_package_hint(target)}"
        ) from exc
    try:
        return fsspec.core.url_to_fs(target.url, **target.storage_options)
    except ImportError as exc:
        package = _PACKAGES.get(target.protocol)
        what = f"pip install {package}" if package else str(exc)
        raise MissingDependencyError(
            f"{target.url!r} needs the fsspec implementation of {target.protocol}://, "
            f"which is not installed: {what}"
        ) from exc
    except ValueError as exc:
        if "not known" in str(exc).lower():
            raise InvalidOptionError(
                f"fsspec knows no filesystem for {target.protocol}:// (in {target.url!r}): {exc}"
            ) from exc
        translated = _translate(exc, target.url)
        if translated is None:
            raise
        raise translated from exc
    except TypeError as exc:
        raise InvalidOptionError(
            f"the {target.protocol}:// filesystem does not accept these storage_options "
            f"{sorted(target.storage_options)}: {exc}"
        ) from exc


def _package_hint(target: RemoteTarget) -> str:
    package = _PACKAGES.get(target.protocol)
    return f" {package}" if package else ""


def _block_size(target: RemoteTarget, default: int) -> dict[str, int]:
    if any(name in target.storage_options for name in _BLOCK_SIZE_OPTIONS):
        return {}  # the filesystem's own setting wins
    return {"block_size": default}


def _protocols(fs: Any) -> set[str]:
    protocol = fs.protocol
    return {protocol} if isinstance(protocol, str) else set(protocol)


# -- errors ------------------------------------------------------------------

# Modules whose exceptions come from the storage layer (not from the object
# being pickled): they are reported as StorageError naming the URL.
_STORAGE_MODULES = (
    "botocore",
    "aiobotocore",
    "aiohttp",
    "s3fs",
    "gcsfs",
    "adlfs",
    "azure",
    "google",
    "fsspec",
    "requests",
    "urllib3",
)


def _translate(exc: BaseException, url: str) -> CodecPickleError | None:
    """The codecpickle error for ``exc`` raised by the storage layer while
    working on ``url``; None when ``exc`` is not a storage error."""
    if isinstance(exc, CodecPickleError):
        return None
    name = type(exc).__name__
    status = getattr(exc, "status", None) or getattr(exc, "code", None)
    detail = f"{name}: {str(exc).rstrip('.')}" if str(exc) else name
    if isinstance(exc, FileNotFoundError) or status == 404 or name in {"NoSuchBucket", "NoSuchKey"}:
        return StorageNotFoundError(
            f"{url!r} does not exist (or the bucket or container that should hold it does "
            f"not): {detail}"
        )
    if (
        isinstance(exc, PermissionError)
        or status in (401, 403)
        or (_from_storage(exc) and "Credential" in name)
    ):
        return StoragePermissionError(
            f"access to {url!r} was refused: {detail}. Check the credentials (no "
            "credentials found, wrong or expired keys, or no permission for this "
            "operation): pass them in storage_options (for s3://, "
            "storage_options={'key': ..., 'secret': ...}, or {'anon': True} for public "
            "buckets) or configure the store's usual credential chain."
        )
    if isinstance(exc, OSError) or _from_storage(exc):
        return StorageError(f"the storage layer failed on {url!r}: {detail}")
    return None


def _from_storage(exc: BaseException) -> bool:
    module = type(exc).__module__ or ""
    return module.split(".")[0] in _STORAGE_MODULES


@contextlib.contextmanager
def _storage_errors(url: str) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        translated = _translate(exc, url)
        if translated is None:
            raise
        raise translated from exc


# -- reading -----------------------------------------------------------------


class StoreFile(io.RawIOBase):
    """A file on an fsspec filesystem whose storage errors are reported as
    :class:`~codecpickle.errors.StorageError` naming the URL.

    Reads are seekable when the underlying file is (range requests on
    object stores and HTTP servers that support them); ``size`` is the
    object's length when known.  Reads and writes are cut into pieces of at
    most ``block_size`` bytes, so that the underlying file's read-ahead cache
    or upload buffer never holds much more than that (a read of one large
    array would otherwise fetch it whole into one ``bytes``, then copy it).
    """

    def __init__(
        self, file: Any, url: str, *, size: int | None = None, block_size: int | None = None
    ) -> None:
        super().__init__()
        self.file = file
        self.url = url
        self.size = size
        self._block_size = block_size

    def readable(self) -> bool:
        return bool(self.file.readable())

    def writable(self) -> bool:
        return bool(self.file.writable())

    def seekable(self) -> bool:
        with _storage_errors(self.url):
            return bool(self.file.seekable())

    def tell(self) -> int:
        with _storage_errors(self.url):
            return int(self.file.tell())

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        with _storage_errors(self.url):
            return int(self.file.seek(offset, whence))

    def read(self, size: int | None = -1) -> bytes:
        with _storage_errors(self.url):
            return bytes(self.file.read(-1 if size is None else size))

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._block_size:
            view = view[: self._block_size]
        with _storage_errors(self.url):
            readinto = getattr(self.file, "readinto", None)
            if readinto is not None:
                return int(readinto(view))
            data = self.file.read(view.nbytes)
        view[: len(data)] = data
        return len(data)

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        step = self._block_size or view.nbytes or 1
        with _storage_errors(self.url):
            for start in range(0, view.nbytes, step):
                piece = view[start : start + step]
                written = 0
                while written < piece.nbytes:
                    count = self.file.write(piece[written:])
                    written += piece.nbytes - written if count is None else count
        return view.nbytes

    def close(self) -> None:
        if not self.closed:
            try:
                with _storage_errors(self.url):
                    self.file.close()
            finally:
                super().close()


@contextlib.contextmanager
def open_for_reading(target: RemoteTarget) -> Iterator[StoreFile]:
    """Open ``target`` for streaming reads: a seekable file (when the store
    allows range requests) that fetches bounded blocks on demand."""
    fs, path = _filesystem(target)
    options: dict[str, Any] = dict(_block_size(target, READ_BLOCK_SIZE))
    if target.protocol in _BLOCK_CACHED and "cache_type" not in target.storage_options:
        options.update(cache_type="blockcache", cache_options={"maxblocks": READ_CACHE_BLOCKS})
    with _storage_errors(target.url):
        file = fs.open(path, "rb", **options)
    size = getattr(file, "size", None)
    store_file = StoreFile(
        file,
        target.url,
        size=size if isinstance(size, int) else None,
        block_size=getattr(file, "blocksize", None) or READ_BLOCK_SIZE,
    )
    try:
        yield store_file
    finally:
        store_file.close()


@contextlib.contextmanager
def open_input(file: Any, storage_options: object = None) -> Iterator[Any]:
    """A readable binary file for ``file``, for code that reads parts of a
    stream by position: a URL opens as a seekable :class:`StoreFile` (range
    requests), a local path (``file://`` included) as a local file; a file
    object is yielded as it is and left open."""
    file, target = route(file, storage_options)
    if target is not None:
        with open_for_reading(target) as handle:
            yield handle
    elif isinstance(file, str | bytes | os.PathLike):
        with open(file, "rb") as handle:
            yield handle
    else:
        yield file


# -- writing -----------------------------------------------------------------


def check_writable(target: RemoteTarget) -> None:
    """Refuse, before anything is created, a URL that can only be read."""
    if target.protocol in _READ_ONLY:
        raise InvalidOptionError(
            f"{target.url!r}: {target.protocol}:// URLs can only be read; dump to an object "
            "store (s3://, gs://, az://), memory:// or a local path."
        )


@contextlib.contextmanager
def atomic_upload(target: RemoteTarget) -> Iterator[StoreFile]:
    """Yield a file whose contents appear at ``target`` only when the block
    exits normally; on an exception nothing is left at ``target`` (a
    previous object there stays as it was) and partial uploads are
    aborted or removed."""
    check_writable(target)
    fs, path = _filesystem(target)
    if _protocols(fs) & _DEFERRED_COMMIT:
        with _deferred_commit(fs, path, target) as file:
            yield file
    else:
        with _write_then_move(fs, path, target) as file:
            yield file


@contextlib.contextmanager
def _deferred_commit(fs: Any, path: str, target: RemoteTarget) -> Iterator[StoreFile]:
    blocks = _block_size(target, WRITE_BLOCK_SIZE)
    with _storage_errors(target.url):
        file = fs.open(path, "wb", autocommit=False, **blocks)
    # fsspec queues files opened with autocommit=False on the filesystem's
    # (shared, cached) transaction; this one is committed or discarded
    # here, never by someone else's transaction.
    _leave_transaction(fs, file)
    store_file = StoreFile(file, target.url, block_size=getattr(file, "blocksize", None))
    try:
        yield store_file
        store_file.close()  # uploads the last part; does not complete the upload
        with _storage_errors(target.url):
            file.commit()
    except BaseException as exc:
        _discard(file, exc)
        raise


def _leave_transaction(fs: Any, file: Any) -> None:
    transaction = getattr(fs, "_transaction", None)
    files = getattr(transaction, "files", None)
    if files is not None:
        with contextlib.suppress(ValueError):
            files.remove(file)


def _discard(file: Any, error: BaseException) -> None:
    try:
        file.discard()
    except Exception as exc:
        error.add_note(
            f"codecpickle could not abort the incomplete upload ({type(exc).__name__}: "
            f"{exc}); its parts stay in the store (invisible, but billed) until the "
            "bucket's lifecycle rules remove them"
        )
    # A discarded file must not try to upload again when it is collected.
    with contextlib.suppress(Exception):
        file.closed = True


@contextlib.contextmanager
def _write_then_move(fs: Any, path: str, target: RemoteTarget) -> Iterator[StoreFile]:
    # A hidden sibling, shortened so it fits where the target's name just fits.
    parent, slash, name = path.rpartition("/")
    temp = f"{parent}{slash}.{name[:200]}.{secrets.token_hex(6)}{TEMP_SUFFIX}"
    with _storage_errors(target.url):
        file = fs.open(temp, "wb", **_block_size(target, WRITE_BLOCK_SIZE))
    store_file = StoreFile(file, target.url, block_size=getattr(file, "blocksize", None))
    try:
        yield store_file
        store_file.close()
        with _storage_errors(target.url):
            fs.mv(temp, path)
    except BaseException:
        with contextlib.suppress(Exception):
            store_file.close()
        with contextlib.suppress(Exception):
            fs.rm(temp)
        raise
