"""Post-processing the arrays a stream's constructors build.

A load can hand every array the stream builds to an :class:`ArrayHook`
(``_memmap.MappedFile`` turns mapped ones into ``np.memmap``; ``convert``
spools them to disk).  Arrays are built by whatever constructors the stream
names, so the hook wraps the unpickler's ``find_class``: every *array
constructor* it resolves -- numpy's ``ndarray`` and reconstruction
functions, and any function of codecpickle's own constructor modules,
whatever its name -- is wrapped so that its result goes through
:meth:`ArrayHook.adopt`; everything else is left alone.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["ArrayHook"]

# Modules whose functions build arrays from codecpickle streams (the
# declarative constructors, the legacy reconstructors, the checked forms
# restricted loads resolve numpy's names to).
_CONSTRUCTOR_MODULES = frozenset(
    (
        "codecpickle._construct",
        "codecpickle._construct_pandas",
        "codecpickle._reconstruct",
        "codecpickle._numpy_guards",
    )
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


class ArrayHook:
    """Wraps array constructors so their results pass through :meth:`adopt`."""

    def adopt(self, obj: Any) -> Any:
        """What the load returns in place of ``obj``, an array just built."""
        return obj

    def attach(self, unpickler: Any) -> None:
        """Make ``unpickler`` hand the arrays it builds to :meth:`adopt`.

        Restricted unpicklers call only the globals they admitted, by
        identity, through their ``_call``: there every call's result goes
        through :meth:`adopt` (which leaves anything but its arrays alone).
        Other unpicklers get a wrapped ``find_class``.
        """
        restricted_call = getattr(unpickler, "_call", None)
        if restricted_call is not None:
            adopt = self.adopt

            def adopting_call(func: Any, args: Any, *rest: Any, **kwargs: Any) -> Any:
                if type(args) is tuple:
                    args = tuple(_plain(arg) for arg in args)
                return adopt(restricted_call(func, args, *rest, **kwargs))

            unpickler._call = adopting_call
        else:
            unpickler.find_class = self.wrap_find_class(unpickler.find_class)

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
        adopt = self.adopt

        @functools.wraps(constructor, updated=())
        def mapped_constructor(*args: Any, **kwargs: Any) -> Any:
            # Constructors also arrive as arguments (numpy's _reconstruct
            # takes the ndarray class): hand over the originals.
            args = tuple(_plain(_unwrapped(arg)) for arg in args)
            return adopt(constructor(*args, **kwargs))

        mapped_constructor.__wrapped_constructor__ = constructor  # type: ignore[attr-defined]
        return mapped_constructor


def _is_constructor(found: Any, dotted: str) -> bool:
    if dotted in _NUMPY_CONSTRUCTORS:
        return True
    return isinstance(found, types.FunctionType) and found.__module__ in _CONSTRUCTOR_MODULES


def _plain(arg: Any, depth: int = 2) -> Any:
    """A memmap handed to another constructor (directly, or in the lists,
    tuples and dicts of its arguments) as a plain ndarray view of it:
    constructors check for exact ndarrays, and the view's base is still the
    memmap (which is all ``joblib.Parallel`` looks for).  Containers are
    copied only when they hold a memmap."""
    kind = type(arg)
    if kind is np.memmap:
        return arg.view(np.ndarray)
    if depth and kind in (list, tuple):
        items = [_plain(item, depth - 1) for item in arg]
        if any(new is not old for new, old in zip(items, arg, strict=True)):
            return kind(items)
    elif depth and kind is dict:
        values = {key: _plain(value, depth - 1) for key, value in arg.items()}
        if any(values[key] is not value for key, value in arg.items()):
            return values
    return arg


def _unwrapped(arg: Any) -> Any:
    return getattr(arg, "__wrapped_constructor__", arg) if callable(arg) else arg
