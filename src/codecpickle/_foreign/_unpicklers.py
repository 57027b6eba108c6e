"""The unpicklers that read foreign pickle streams.

* :class:`FastUnpickler`: the C unpickler, for plain pickles.  It cannot
  replace an object on its stack (joblib's array wrappers), so the first
  wrapper global it meets raises :class:`JoblibStreamFound` and the caller
  starts again with a pure-Python one.
* :class:`JoblibUnpickler`: the standard library's pure-Python unpickler
  (as joblib itself uses), reading opcodes through a buffered reader,
  replacing each wrapper by its array at the wrapper's BUILD.
* :class:`SafeJoblibUnpickler`: the same on top of codecpickle's
  restricted unpickler, for ``safe=True``: globals from the allowlist, every
  BUILD checked, and joblib's wrappers handled by ``_joblib.py`` (so a
  joblib file of admitted types loads without running its code).
"""

from __future__ import annotations

import dataclasses
import io
import pickle
import sys
from struct import unpack
from typing import Any

from .._array_hooks import ArrayHook
from .._restricted import RestrictedUnpickler
from ..errors import CorruptDataError, ForbiddenGlobalError
from . import _joblib
from ._stream import ForeignStream

__all__ = ["FastUnpickler", "JoblibStreamFound", "JoblibUnpickler", "SafeJoblibUnpickler"]

_READ_AHEAD = 64 << 10  # the size of the frames picklers write
_OPCODE_BLOCK = range(256)  # opcodes run between checks of the work budget


class JoblibStreamFound(Exception):
    """The C unpickler met a joblib array wrapper: restart with one that
    can read the array data between the opcodes."""


class FastUnpickler(pickle.Unpickler):
    """The C unpickler over a :class:`ForeignStream` (which has no ``peek``,
    so nothing is read ahead)."""

    def find_class(self, module: str, name: str) -> Any:
        dotted = f"{module}.{name}"
        if dotted in _joblib.WRAPPER_NAMES:
            raise JoblibStreamFound(dotted)
        if dotted in _joblib.LEGACY_WRAPPER_NAMES:
            raise _joblib.refuse_legacy_wrapper(dotted)
        return super().find_class(module, name)


class _JoblibArrays:
    """What both pure-Python unpicklers share: resolving the wrapper
    global, and replacing each wrapper by its array at BUILD."""

    _stream: ForeignStream
    _target: _joblib.MapTarget | None
    _array_hook: ArrayHook | None = None
    #: Set when a restricted load is refused inside the inner pickle of an
    #: array of objects.
    refused_in_inner_pickle = False
    stack: list[Any]
    dispatch: dict[int, Any]

    def _joblib_global(self, module: str, name: str) -> Any:
        """The stand-in for a joblib (or memmap) global; None for others."""
        dotted = f"{module}.{name}"
        if dotted in _joblib.WRAPPER_NAMES:
            return _joblib.WrapperStub
        if dotted in _joblib.LEGACY_WRAPPER_NAMES:
            raise _joblib.refuse_legacy_wrapper(dotted)
        if dotted in _joblib.MEMMAP_NAMES:
            return _joblib.MEMMAP_MARKER
        return None

    def _build_wrapper(self) -> bool:
        """At a BUILD: if its object is a wrapper, replace it by its array."""
        if type(self.stack[-2]) is not _joblib.WrapperStub:
            return False
        array = self._wrapped_array(_joblib.array_spec(self.stack.pop()))
        self.stack[-1] = array if self._array_hook is None else self._array_hook.adopt(array)
        return True

    def _wrapped_array(self, spec: _joblib.ArraySpec) -> Any:
        return _joblib.build_array(spec, self._array_io(), self._target)

    def _array_io(self) -> _joblib.ArrayIO:
        buffered = self.read.__self__  # type: ignore[attr-defined]
        if not isinstance(buffered, io.BufferedReader):
            raise TypeError("joblib arrays are read through the unpickler's buffered reader")
        stream = self._stream

        def tell() -> int:
            # The stream's position, less what the buffer holds unread.
            return stream.position - (buffered.raw.tell() - buffered.tell())

        def skip(count: int) -> None:
            stream.array_bytes += count
            held = buffered.raw.tell() - buffered.tell()
            buffered.read(min(held, count))
            if count > held:
                stream.skip(count - held)

        def readinto(view: memoryview) -> int:
            filled = 0
            while filled < view.nbytes:
                got = buffered.readinto(view[filled:])
                if not got:
                    break
                filled += got
            stream.array_bytes += filled
            return filled

        return _joblib.ArrayIO(
            read=buffered.read,
            readinto=readinto,
            tell=tell,
            skip=skip,
            check_size=lambda nbytes, what: stream.check_declared_size(nbytes, what, tell()),
            load_inline_pickle=self._load_inline_pickle,
        )

    def _load_inline_pickle(self) -> Any:
        """Unpickle the inner pickle joblib writes for an array of objects,
        from the same stream, with the same rules, on a fresh stack and memo."""
        saved = self.stack, self.metastack, self.memo, self.append, self.proto  # type: ignore[attr-defined]
        self.stack, self.metastack, self.memo = [], [], {}
        self.append = self.stack.append
        read, dispatch = self.read, self.dispatch  # type: ignore[attr-defined]
        # A restricted load's work budget counts these opcodes too.
        spend = getattr(self, "spend", None)
        try:
            while True:
                for _ in _OPCODE_BLOCK:
                    key = read(1)
                    if not key:
                        raise EOFError
                    dispatch[key[0]](self)
                if spend is not None:
                    spend(len(_OPCODE_BLOCK))
        except pickle._Stop as stop:  # type: ignore[attr-defined]
            return stop.value
        except ForbiddenGlobalError:
            # The outer stack is restored below: a scan of what follows
            # cannot continue from this point (see _foreign.load_foreign).
            self.refused_in_inner_pickle = True
            raise
        finally:
            self.stack, self.metastack, self.memo, self.append, self.proto = saved


class _RawOpcodes(io.RawIOBase):
    """A :class:`ForeignStream` as a raw stream, for ``io.BufferedReader``."""

    def __init__(self, stream: ForeignStream) -> None:
        super().__init__()
        self._stream = stream
        self._delivered = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = self._stream.readinto1(buffer)
        self._delivered += count
        return count

    def tell(self) -> int:
        return self._delivered


class JoblibUnpickler(_JoblibArrays, pickle._Unpickler):  # type: ignore[name-defined,misc]
    """Unrestricted: any global, as ``pickle.load`` would; joblib's wrappers
    resolved without importing joblib."""

    dispatch = pickle._Unpickler.dispatch.copy()  # type: ignore[attr-defined]

    def __init__(self, stream: ForeignStream, target: _joblib.MapTarget | None) -> None:
        super().__init__(stream)
        self._stream = stream
        self._target = target

    def load(self) -> Any:
        raw = _RawOpcodes(self._stream)
        buffered = io.BufferedReader(raw, _READ_AHEAD)
        self.read = read = buffered.read
        self.readinto = buffered.readinto
        self.readline = buffered.readline
        self.metastack = []
        self.stack = []
        self.append = self.stack.append
        self.proto = 0
        dispatch = self.dispatch
        try:
            while True:
                key = read(1)
                if not key:
                    raise EOFError
                dispatch[key[0]](self)
        except pickle._Stop as stop:  # type: ignore[attr-defined]
            self._stream.unread(raw.tell() - buffered.tell())
            return stop.value

    def find_class(self, module: str, name: str) -> Any:
        found = self._joblib_global(module, name)
        return super().find_class(module, name) if found is None else found

    def load_build(self) -> None:
        if not self._build_wrapper():
            super().load_build()

    dispatch[pickle.BUILD[0]] = load_build

    def load_frame(self) -> None:
        # Frames only say how much a reader may fetch at once.
        (size,) = unpack("<Q", self.read(8))
        if size > sys.maxsize:
            raise pickle.UnpicklingError(f"frame size > sys.maxsize: {size}")

    dispatch[pickle.FRAME[0]] = load_frame


class SafeJoblibUnpickler(_JoblibArrays, RestrictedUnpickler):
    """Restricted: the allowlist and BUILD checks of ``safe=True`` loads,
    and joblib's wrappers through ``_joblib.py``'s checks."""

    dispatch = RestrictedUnpickler.dispatch.copy()

    def __init__(
        self, stream: ForeignStream, allowed: frozenset[str], target: _joblib.MapTarget | None
    ) -> None:
        super().__init__(stream, allowed)  # type: ignore[arg-type]
        self._stream = stream
        self._target = target

    def find_class(self, module: str, name: str) -> Any:
        dotted = f"{module}.{name}"
        found = self._joblib_global(module, name)
        if found is None and dotted == "_codecs.encode":
            # How protocol 2 writes bytes under Python 3 (joblib 0.10-era
            # files, numpy's own array reductions at protocol 2).
            found = _latin1_bytes
        if found is None:
            return super().find_class(module, name)
        return self.admit_foreign(found)  # called as it is: it checks its arguments

    def _wrapped_array(self, spec: _joblib.ArraySpec) -> Any:
        # The dtype through the safe profile's table, the array through its
        # checked constructor.
        spec = dataclasses.replace(spec, dtype=self.translator.known(spec.dtype))
        return _joblib.build_array(spec, self._array_io(), self._target, self.translator.array)

    def admits(self, module: str, name: str) -> bool:
        dotted = f"{module}.{name}"
        if dotted in _joblib.WRAPPER_NAMES or dotted in _joblib.MEMMAP_NAMES:
            return True
        return dotted == "_codecs.encode" or super().admits(module, name)

    def load_build(self) -> None:
        if not self._build_wrapper():
            RestrictedUnpickler.load_build(self)

    dispatch[pickle.BUILD[0]] = load_build


def _latin1_bytes(text: Any, encoding: Any = "utf-8") -> bytes:
    """``_codecs.encode`` as protocol 2 calls it for ``bytes`` objects:
    ``encode(text, "latin1")``; any other use is refused (other encodings
    import codec modules)."""
    if type(text) is not str or encoding not in ("latin1", "latin-1"):
        raise CorruptDataError(
            "the stream calls _codecs.encode other than to rebuild bytes "
            f"(encode(str, 'latin1')): got encode({type(text).__name__}, {encoding!r}); refused"
        )
    return text.encode("latin-1")
