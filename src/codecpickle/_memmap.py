"""``np.memmap`` results for ``mmap_mode`` loads of codecpickle files.

A mapped load hands the unpickler views of one memory map of the whole
file; the array constructors a stream names build arrays over them.  Those
arrays are plain ndarrays, but ``joblib.Parallel`` (and users) recognise
file-backed arrays by their type: ``np.memmap`` with ``filename``,
``offset`` and ``mode``, from which a worker process maps the same bytes
instead of receiving a pickled copy.

So the unpickler's ``find_class`` is wrapped (:meth:`MappedFile.wrap_find_class`):
every *array constructor* it resolves -- numpy's ``ndarray`` and its
reconstruction functions, and any function of codecpickle's own
constructor modules, whatever its name -- is wrapped so that a result whose
memory lies inside the map comes back as an ``np.memmap`` view of the same
bytes (:meth:`MappedFile.as_memmap`); everything else is left alone.
"""

from __future__ import annotations

import functools
import mmap
import os
import types
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["MappedFile"]

# Modules whose functions build arrays from codecpickle streams (the
# declarative constructors, the legacy reconstructors, the checked forms
# restricted loads resolve numpy's names to).
_CONSTRUCTOR_MODULES = frozenset(
    ("codecpickle._construct", "codecpickle._reconstruct", "codecpickle._numpy_guards")
)
# numpy's own reconstruction functions, under numpy 1.x and 2.x names.
_NUMPY_CONSTRUCTORS = frozenset(
    (
        "numpy.core.multiarray._reconstruct",
        "numpy._core.multiarray._reconstruct",
        "numpy.core.numeric._frombuffer",
        "numpy._core.numeric._frombuffer",
        "numpy.ma.core._mareconstruct",
        "numpy.ndarray",
    )
)


class MappedFile:
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

    # -- constructors --------------------------------------------------------

    def wrap_find_class(self, find_class: Callable[[str, str], Any]) -> Callable[[str, str], Any]:
        """``find_class`` with array constructors wrapped (see the module
        docstring)."""

        def mapped_find_class(module: str, name: str) -> Any:
            found = find_class(module, name)
            if _is_constructor(found, f"{module}.{name}"):
                return self._wrap(found)
            return found

        return mapped_find_class

    def _wrap(self, constructor: Any) -> Callable[..., Any]:
        as_memmap = self.as_memmap

        @functools.wraps(constructor)
        def mapped_constructor(*args: Any, **kwargs: Any) -> Any:
            # Constructors also arrive as arguments (numpy's _reconstruct
            # takes the ndarray class): hand over the originals.
            args = tuple(_unwrapped(arg) for arg in args)
            return as_memmap(constructor(*args, **kwargs))

        mapped_constructor.__wrapped_constructor__ = constructor  # type: ignore[attr-defined]
        return mapped_constructor


def _is_constructor(found: Any, dotted: str) -> bool:
    if dotted in _NUMPY_CONSTRUCTORS:
        return True
    return isinstance(found, types.FunctionType) and found.__module__ in _CONSTRUCTOR_MODULES


def _unwrapped(arg: Any) -> Any:
    return getattr(arg, "__wrapped_constructor__", arg) if callable(arg) else arg


def _byte_bounds(array: np.ndarray) -> tuple[int, int]:
    """First and one-past-last byte addresses an array's elements use."""
    low = high = array.__array_interface__["data"][0]
    for extent, stride in zip(array.shape, array.strides, strict=True):
        if stride < 0:
            low += stride * (extent - 1)
        else:
            high += stride * (extent - 1)
    return low, high + array.itemsize
