"""``np.memmap`` results for ``mmap_mode`` loads of codecpickle files.

A mapped load hands the unpickler views of one memory map of the whole
file; the array constructors a stream names build arrays over them.  Those
arrays are plain ndarrays, but ``joblib.Parallel`` (and users) recognise
file-backed arrays by their type: ``np.memmap`` with ``filename``,
``offset`` and ``mode``, from which a worker process maps the same bytes
instead of receiving a pickled copy.

So :class:`MappedFile`, an :class:`~codecpickle._array_hooks.ArrayHook`,
turns every array a constructor builds whose memory lies inside the map
into an ``np.memmap`` view of the same bytes (:meth:`MappedFile.as_memmap`).
"""

from __future__ import annotations

import mmap
import os
from typing import Any

import numpy as np

from ._array_hooks import ArrayHook

__all__ = ["MappedFile"]


class MappedFile(ArrayHook):
    """The memory map a load reads from, and the file it maps."""

    def __init__(self, mapped: mmap.mmap, filename: str, mode: str) -> None:
        self._mmap = mapped
        self._filename = os.path.abspath(filename)
        self._mode = mode
        self._start = np.frombuffer(mapped, dtype=np.uint8).ctypes.data if len(mapped) else 0
        self._end = self._start + len(mapped)

    @classmethod
    def of(cls, mapped: mmap.mmap, file: Any, mode: str) -> MappedFile | None:
        """For a map of ``file``; None when the file has no name (a worker
        process could not map it again, so plain arrays are as good)."""
        name = getattr(file, "name", None)
        if isinstance(name, os.PathLike):
            name = os.fspath(name)
        if not isinstance(name, str) or not os.path.isfile(name):
            return None
        return cls(mapped, name, mode)

    # -- results -------------------------------------------------------------

    def as_memmap(self, obj: Any) -> Any:
        """``obj`` as an ``np.memmap`` view of the same bytes when it is a
        plain ndarray lying inside the map; otherwise ``obj`` itself."""
        if type(obj) is not np.ndarray or obj.size == 0 or obj.dtype.hasobject:
            return obj
        low, high = _byte_bounds(obj)
        if not (self._start <= low and high <= self._end):
            return obj
        data = obj.__array_interface__["data"][0]
        offset = data - self._start
        view: np.memmap = np.ndarray.__new__(
            np.memmap, obj.shape, obj.dtype, buffer=self._mmap, offset=offset, strides=obj.strides
        )
        if not obj.flags.writeable:
            view.flags.writeable = False
        # What numpy.memmap itself records, and joblib reads.
        view._mmap = self._mmap  # type: ignore[attr-defined]
        view.filename = self._filename
        view.offset = offset
        view.mode = self._mode
        return view

    adopt = as_memmap


def _byte_bounds(array: np.ndarray) -> tuple[int, int]:
    """First and one-past-last byte addresses an array's elements use."""
    low = high = array.__array_interface__["data"][0]
    for extent, stride in zip(array.shape, array.strides, strict=True):
        if stride < 0:
            low += stride * (extent - 1)
        else:
            high += stride * (extent - 1)
    return low, high + array.itemsize
