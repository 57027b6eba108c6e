"""The unpickler behind restricted loads (``load(..., safe=True)``).

An allowlist of globals (``_safe.py``) decides which callables a stream may
call.  That is not enough on its own: the BUILD opcode hands any object on
the stack a state of the stream's choosing, and numpy's ``__setstate__``
methods trust that state (see ``_numpy_guards.py``), while BUILD on a
global (a class, a function) would change it for the whole process.  The C
unpickler offers no hook for BUILD, so restricted loads run the standard
library's pure-Python unpickler, ``pickle._Unpickler`` (the reference
implementation the C one mirrors), with these opcodes replaced:

* BUILD: refused on globals and numpy scalars; checked, and applied without
  changing the old object, on dtypes; checked on arrays;
* REDUCE, NEWOBJ, NEWOBJ_EX, INST, OBJ: the C unpickler's argument checks,
  and no creating an ndarray subclass through ``ndarray.__new__`` (which
  builds arrays over raw bytes);
* BYTEARRAY8: the declared size is not allocated before the bytes exist;
* the memo opcodes: they note where dtypes are stored, so that a rebuilt
  dtype replaces the old one there too.

The price is speed on object-heavy streams: about four times the C
unpickler's time for a list of small dicts.  Array data does not pass
through the unpickler, so array-heavy files load as fast as in a normal
load.
"""

from __future__ import annotations

import pickle
from struct import unpack
from typing import Any

import numpy as np

from ._numpy_guards import build_array, rebuilt_dtype
from ._reader import ContainerReader
from ._safe import check_extension_registry, resolve
from .errors import CorruptDataError, ForbiddenGlobalError

__all__ = ["RestrictedUnpickler"]


class RestrictedUnpickler(pickle._Unpickler):  # type: ignore[name-defined,misc]
    """Unpickles from a container, resolving globals only from ``allowed``
    and checking every BUILD (see the module docstring)."""

    dispatch = pickle._Unpickler.dispatch.copy()  # type: ignore[attr-defined]

    def __init__(self, reader: ContainerReader, allowed: frozenset[str]) -> None:
        super().__init__(reader, buffers=reader.buffers())
        self._allowed = allowed
        # id -> object for every global the stream obtained; holding them
        # keeps the ids from being reused during the load.
        self._globals: dict[int, Any] = {}
        # id(dtype) -> memo keys it was stored under.
        self._dtype_keys: dict[int, list[int]] = {}

    def load(self) -> Any:
        check_extension_registry(self._allowed)
        return super().load()

    def find_class(self, module: str, name: str) -> Any:
        return resolve(self._allowed, module, name, super().find_class, self._track_global)

    def _track_global(self, obj: Any) -> None:
        self._globals[id(obj)] = obj

    # -- BUILD ------------------------------------------------------------------

    def load_build(self) -> None:
        stack = self.stack
        state = stack.pop()
        inst = stack[-1]
        if id(inst) in self._globals:
            raise ForbiddenGlobalError(
                f"the stream changes the state of {inst!r}, a global shared by the whole "
                "process, which a restricted load does not allow"
            )
        if isinstance(inst, np.dtype):
            rebuilt = rebuilt_dtype(inst, state)
            stack[-1] = rebuilt
            self._replace_dtype_in_memo(inst, rebuilt)
            return
        if isinstance(inst, np.generic):
            raise CorruptDataError(
                "the stream sets the state of a numpy scalar, which no genuine stream does; refused"
            )
        if isinstance(inst, np.ndarray) and build_array(inst, state):
            return
        stack.append(state)
        pickle._Unpickler.load_build(self)  # type: ignore[attr-defined]

    dispatch[pickle.BUILD[0]] = load_build

    def _replace_dtype_in_memo(self, old: np.dtype, new: np.dtype) -> None:
        memo = self.memo
        keys = [key for key in self._dtype_keys.pop(id(old), ()) if memo.get(key) is old]
        for key in keys:
            memo[key] = new
        if keys:
            self._dtype_keys.setdefault(id(new), []).extend(keys)

    # -- memo ----------------------------------------------------------------------
    # The stdlib's memo opcodes, plus a note of where each dtype is stored.
    # Inlined: MEMOIZE runs once per object in the stream.

    def load_put(self) -> None:
        key = int(self.readline()[:-1])
        if key < 0:
            raise ValueError("negative PUT argument")
        value = self.memo[key] = self.stack[-1]
        if isinstance(value, np.dtype):
            self._dtype_keys.setdefault(id(value), []).append(key)

    dispatch[pickle.PUT[0]] = load_put

    def load_binput(self) -> None:
        key = self.read(1)[0]
        value = self.memo[key] = self.stack[-1]
        if isinstance(value, np.dtype):
            self._dtype_keys.setdefault(id(value), []).append(key)

    dispatch[pickle.BINPUT[0]] = load_binput

    def load_long_binput(self) -> None:
        (key,) = unpack("<I", self.read(4))
        value = self.memo[key] = self.stack[-1]
        if isinstance(value, np.dtype):
            self._dtype_keys.setdefault(id(value), []).append(key)

    dispatch[pickle.LONG_BINPUT[0]] = load_long_binput

    def load_memoize(self) -> None:
        memo = self.memo
        key = len(memo)
        value = memo[key] = self.stack[-1]
        if isinstance(value, np.dtype):
            self._dtype_keys.setdefault(id(value), []).append(key)

    dispatch[pickle.MEMOIZE[0]] = load_memoize

    # -- object creation --------------------------------------------------------------

    def load_reduce(self) -> None:
        stack = self.stack
        args = stack.pop()
        func = stack[-1]
        if type(args) is not tuple:
            raise pickle.UnpicklingError("REDUCE arguments are not a tuple")
        _refuse_raw_array_class(func)
        stack[-1] = func(*args)

    dispatch[pickle.REDUCE[0]] = load_reduce

    def _instantiate(self, klass: Any, args: Any) -> None:  # INST and OBJ
        _refuse_raw_array_class(klass)
        super()._instantiate(klass, args)

    def load_newobj(self) -> None:
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(_new_instance(cls, args, {}))

    dispatch[pickle.NEWOBJ[0]] = load_newobj

    def load_newobj_ex(self) -> None:
        kwargs = self.stack.pop()
        args = self.stack.pop()
        cls = self.stack.pop()
        if type(kwargs) is not dict:
            raise pickle.UnpicklingError("NEWOBJ_EX keyword arguments are not a dict")
        self.append(_new_instance(cls, args, kwargs))

    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex

    def load_bytearray8(self) -> None:
        (size,) = unpack("<Q", self.read(8))
        # read() refuses sizes beyond the data and the buffer bound before
        # allocating; the stdlib version allocates (and zeroes) `size` first.
        self.append(bytearray(self.read(size)))

    dispatch[pickle.BYTEARRAY8[0]] = load_bytearray8

    # The stdlib's loop looks opcodes up in this dict: an unknown one would
    # surface as a bare KeyError.  Say what the C unpickler says.
    for _code in set(range(256)) - dispatch.keys():
        dispatch[_code] = lambda self, _code=_code: _invalid_opcode(_code)
    del _code


def _invalid_opcode(code: int) -> None:
    raise pickle.UnpicklingError(f"invalid load key, {bytes([code])!r}")


def _new_instance(cls: Any, args: Any, kwargs: dict[str, Any]) -> Any:
    # The C unpickler's checks, which the Python one leaves out, and one more.
    if not isinstance(cls, type):
        raise pickle.UnpicklingError("NEWOBJ class argument isn't a type object")
    if type(args) is not tuple:
        raise pickle.UnpicklingError("NEWOBJ arguments are not a tuple")
    _refuse_raw_array_class(cls)
    return cls.__new__(cls, *args, **kwargs)


def _refuse_raw_array_class(cls: Any) -> None:
    """Refuse to create instances of an ndarray subclass (admitted with
    ``allow=``) that keeps ``ndarray.__new__``, which builds arrays over raw
    bytes, object dtypes too.  Genuine streams rebuild such arrays through
    ``view_as`` or numpy's ``_reconstruct``, which pass the class on as a
    value instead."""
    if isinstance(cls, type) and issubclass(cls, np.ndarray) and cls.__new__ is np.ndarray.__new__:
        raise CorruptDataError(
            f"the stream creates a {cls.__qualname__} through ndarray.__new__, which no genuine "
            "stream does; refused"
        )
