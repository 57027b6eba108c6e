"""``joblib.Memory`` caches stored with codecpickle.

Importing this module registers a store backend named ``"codecpickle"``
through joblib's public ``register_store_backend``::

    import joblib
    import codecpickle.joblib  # registers the backend

    memory = joblib.Memory("cache", backend="codecpickle", verbose=0)

Results are written with :func:`codecpickle.dump` (atomically, checksummed,
compressed on every core when asked) and read with :func:`codecpickle.load`.
Cache hits of uncompressed results are memory-mapped (read-only) unless
told otherwise, so large arrays load in constant time and reach
``joblib.Parallel`` workers by reference.

``Memory(compress=...)`` takes any ``compress`` form of
:func:`codecpickle.dump` (``"zstd:3"``, ``("lz4", 0)``, ``True``; an int
is a zstd level here, not zlib's).  ``backend_options``:

* ``threads``: threads compressing and decompressing chunks;
* ``memory_map``: ``False`` to load uncompressed hits into memory instead
  (``Memory(mmap_mode=...)`` picks the mode; the default is ``"r"``).

codecpickle itself never imports joblib; only this module does.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from joblib import register_store_backend
from joblib._store_backends import FileSystemStoreBackend

from ._api import dump, load
from .codecs import resolve_compress

__all__ = ["BACKEND_NAME", "CodecPickleStoreBackend"]

#: The name to pass as ``joblib.Memory(..., backend=...)``.
BACKEND_NAME = "codecpickle"

_OUTPUT = "output.pkl"  # the name joblib's cache bookkeeping looks for


class CodecPickleStoreBackend(FileSystemStoreBackend):  # type: ignore[misc]
    """joblib's local file-system store, persisting items with codecpickle."""

    def configure(
        self, location: str, verbose: int = 1, backend_options: Mapping[str, Any] | None = None
    ) -> None:
        options = dict(backend_options or {})
        codec = resolve_compress(options.pop("compress", None) or None)
        threads = options.pop("threads", None)
        memory_map = options.pop("memory_map", True)
        mmap_mode = options.pop("mmap_mode", None)
        if options:
            raise ValueError(
                f"unknown backend_options for the codecpickle store: {sorted(options)}; "
                "expected threads and memory_map (compress and mmap_mode are Memory's own "
                "arguments)"
            )
        # joblib's own setup (location, .gitignore), uncompressed as far as
        # it knows: compression is codecpickle's business here.
        super().configure(location, verbose, {"compress": False, "mmap_mode": None})
        self.codec = codec
        self.compress = False
        self.threads = threads
        self.mmap_mode = (mmap_mode or "r") if codec is None and memory_map else None

    def dump_item(self, call_id: list[str], item: Any, verbose: int = 1) -> None:
        """Persist ``item`` under ``call_id`` with codecpickle."""
        item_path = os.path.join(self.location, *call_id)
        if not self._item_exists(item_path):
            self.create_location(item_path)
        filename = os.path.join(item_path, _OUTPUT)
        if verbose > 10:
            print(f"Persisting in {item_path}")
        # dump writes a temporary file and renames it into place: a
        # concurrent reader sees the old item or the new, never a part.
        dump(item, filename, compress=self.codec, threads=self.threads, fsync=False)

    def load_item(
        self,
        call_id: list[str],
        verbose: int = 1,
        timestamp: float | None = None,
        metadata: Any = None,
    ) -> Any:
        """Load the item stored under ``call_id``; memory-mapped when it is
        uncompressed and the store maps."""
        filename = os.path.join(self.location, *call_id, _OUTPUT)
        if not self._item_exists(filename):
            raise KeyError(
                f"Non-existing item (may have been cleared).\nFile {filename} does not exist"
            )
        if verbose > 1:
            print(f"[Memory] Loading {os.path.basename(call_id[0])} from {filename}")
        return load(filename, mmap_mode=self.mmap_mode, threads=self.threads)


register_store_backend(BACKEND_NAME, CodecPickleStoreBackend)
