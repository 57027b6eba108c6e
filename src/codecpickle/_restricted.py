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
  a bound on how deeply the dtypes they return nest,
  no creating an ndarray subclass through ``ndarray.__new__`` (which
  builds arrays over raw bytes), and no copying the memory of Python
  objects as bytes (``bytes(object_array)``);
* READONLY_BUFFER: not on memory that holds Python objects;
* BINBYTES, BINBYTES8, BYTEARRAY8, BINUNICODE, BINUNICODE8, BINSTRING,
  LONG4: the declared size is checked against ``max_buffer_size`` before
  anything is allocated; FRAME is skipped (see :meth:`load`);
* the memo opcodes: they note where dtypes are stored, so that a rebuilt
  dtype replaces the old one there too.

The price is speed on object-heavy streams: four to six times a normal
load's time (``benchmarks/safe_load.py``).  Array data does not pass
through the unpickler, so array-heavy files load as fast as in a normal
load.
"""

from __future__ import annotations

import io
import pickle
import sys
from struct import Struct, unpack
from typing import Any

import numpy as np

from ._numpy_guards import DtypeDepths, build_array, exposes_object_memory, rebuilt_dtype
from ._reader import ContainerReader
from ._safe import check_extension_registry, forbidden_globals, resolve
from ._scan import OPAQUE, OpcodeScanner, as_scan_value, global_value, iter_chunks
from ._skim import skim_payloads
from .errors import CodecPickleError, CorruptDataError, ForbiddenGlobalError

__all__ = ["RestrictedUnpickler"]


class RestrictedUnpickler(pickle._Unpickler):  # type: ignore[name-defined,misc]
    """Unpickles from a container, resolving globals only from ``allowed``
    and checking every BUILD (see the module docstring)."""

    dispatch = pickle._Unpickler.dispatch.copy()  # type: ignore[attr-defined]

    def __init__(self, reader: ContainerReader, allowed: frozenset[str]) -> None:
        super().__init__(reader, buffers=reader.buffers())
        self._reader = reader
        self._allowed = allowed
        # id -> object for every global the stream obtained; holding them
        # keeps the ids from being reused during the load.
        self._globals: dict[int, Any] = {}
        # id(dtype) -> memo keys it was stored under.
        self._dtype_keys: dict[int, list[int]] = {}
        self._dtype_depths = DtypeDepths()
        # The global find_class is resolving: still set if it was refused.
        self._refused_name: tuple[str, str] | None = None

    def load(self) -> Any:
        """The stdlib's ``load``, reading opcodes through a buffered reader.

        The stdlib's own read path is a Python-level call per opcode
        (through its frame reader), the largest single cost of a
        pure-Python load; a buffered reader's ``read`` is C.  Frames only
        tell a reader how much it may fetch at once, so FRAME is skipped
        (see :meth:`load_frame`), and the opcodes whose size the stream
        declares check it against the buffer bound before reading.
        """
        check_extension_registry(self._allowed)
        raw = _OpcodeStream(self._reader)
        stream = io.BufferedReader(raw, _READ_AHEAD)
        self.read = read = stream.read
        self.readinto = stream.readinto
        self.readline = stream.readline
        self.metastack = []
        self.stack = []
        self.append = self.stack.append
        self.proto = 0
        dispatch = self.dispatch
        key = b""
        try:
            while True:
                key = read(1)
                if not key:
                    raise EOFError
                dispatch[key[0]](self)
        except pickle._Stop as stop:  # type: ignore[attr-defined]
            # Bytes the buffered reader holds past STOP are still the
            # reader's to account for (ContainerReader.finish refuses them).
            self._reader.unread(raw.tell() - stream.tell())
            return stop.value
        except ForbiddenGlobalError as refused:
            if not refused.names:
                raise
            raise self._every_forbidden(refused, key, stream) from None

    def admits(self, module: str, name: str) -> bool:
        """Whether :meth:`find_class` would accept ``module.name``, decided
        without resolving it (to list refused globals found by a scan)."""
        return f"{module}.{name}" in self._allowed

    def find_class(self, module: str, name: str) -> Any:
        self._refused_name = (module, name)
        found = resolve(self._allowed, module, name, super().find_class, self._track_global)
        self._refused_name = None
        return found

    # -- listing every forbidden global ----------------------------------------------

    def _every_forbidden(
        self, refused: ForbiddenGlobalError, key: bytes, stream: io.BufferedReader
    ) -> ForbiddenGlobalError:
        """The error for the first refused global, completed with every
        other one the rest of the stream names: the rest is walked by the
        opcode scanner (nothing in it runs), starting from this
        unpickler's stack and memo, with payload data stepped over."""
        scanner = OpcodeScanner(iter_chunks(stream.read1))
        marks, flat = [], []
        for segment in self.metastack:
            flat.extend(segment)
            marks.append(len(flat))
        flat.extend(self.stack)
        memo = {index: as_scan_value(value) for index, value in self.memo.items()}
        scanner.seed([as_scan_value(value) for value in flat], marks, memo, self.proto)
        _finish_refused_opcode(scanner, key, self._refused_name)

        if isinstance(self._reader, ContainerReader):
            skim_payloads(self._reader)
        buffers = self._reader.buffers()
        scanner._on_next_buffer = lambda _: next(buffers)
        note = ""
        try:
            found = scanner.run().globals
        except CodecPickleError as exc:
            found = scanner.result.globals
            note = f" (the rest of the stream could not be scanned: {exc})"
        rest = [ref.dotted for ref in found if not self.admits(ref.module, ref.name)]
        return forbidden_globals([*refused.names, *rest], note)

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
            self._dtype_depths.check(rebuilt)
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
    # The dtype test is inlined: MEMOIZE runs once per object in the stream.

    def _note_dtype_key(self, dtype: np.dtype, key: int) -> None:
        self._dtype_keys.setdefault(id(dtype), []).append(key)

    def load_put(self) -> None:
        key = int(self.readline()[:-1])
        if key < 0:
            raise ValueError("negative PUT argument")
        value = self.memo[key] = self.stack[-1]
        if isinstance(value, np.dtype):
            self._note_dtype_key(value, key)

    dispatch[pickle.PUT[0]] = load_put

    def load_binput(self) -> None:
        key = self.read(1)[0]
        value = self.memo[key] = self.stack[-1]
        if isinstance(value, np.dtype):
            self._note_dtype_key(value, key)

    dispatch[pickle.BINPUT[0]] = load_binput

    def load_long_binput(self) -> None:
        (key,) = unpack("<I", self.read(4))
        value = self.memo[key] = self.stack[-1]
        if isinstance(value, np.dtype):
            self._note_dtype_key(value, key)

    dispatch[pickle.LONG_BINPUT[0]] = load_long_binput

    def load_memoize(self) -> None:
        memo = self.memo
        key = len(memo)
        value = memo[key] = self.stack[-1]
        if isinstance(value, np.dtype):
            self._note_dtype_key(value, key)

    dispatch[pickle.MEMOIZE[0]] = load_memoize

    # -- object creation --------------------------------------------------------------

    def load_reduce(self) -> None:
        stack = self.stack
        args = stack.pop()
        func = stack[-1]
        if type(args) is not tuple:
            raise pickle.UnpicklingError("REDUCE arguments are not a tuple")
        _check_call(func, args)
        stack[-1] = self._checked_result(func(*args))

    dispatch[pickle.REDUCE[0]] = load_reduce

    def _instantiate(self, klass: Any, args: Any) -> None:  # INST and OBJ
        _check_call(klass, args)
        super()._instantiate(klass, args)
        self._checked_result(self.stack[-1])

    def _checked_result(self, obj: Any) -> Any:
        # dtypes are the only objects calls return that numpy later walks
        # by unguarded C recursion (see DtypeDepths).
        if isinstance(obj, np.dtype):
            self._dtype_depths.check(obj)
        return obj

    def load_readonly_buffer(self) -> None:
        # Genuine streams mark out-of-band buffers read-only; a memoryview
        # of an object array would lend its pointers as plain bytes.
        if exposes_object_memory(self.stack[-1]):
            raise CorruptDataError(
                "the stream views the memory of Python objects as plain data, which no "
                "genuine stream does; refused"
            )
        super().load_readonly_buffer()

    dispatch[pickle.READONLY_BUFFER[0]] = load_readonly_buffer

    def load_newobj(self) -> None:
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self._checked_result(_new_instance(cls, args, {})))

    dispatch[pickle.NEWOBJ[0]] = load_newobj

    def load_newobj_ex(self) -> None:
        kwargs = self.stack.pop()
        args = self.stack.pop()
        cls = self.stack.pop()
        if type(kwargs) is not dict:
            raise pickle.UnpicklingError("NEWOBJ_EX keyword arguments are not a dict")
        self.append(self._checked_result(_new_instance(cls, args, kwargs)))

    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex

    # -- opcodes that declare a size ------------------------------------------------
    # Checked against the buffer bound before reading (the buffered reader
    # would allocate the declared size first).

    def _read_counted(self, count: Struct, what: str) -> bytes:
        """The bytes of an opcode whose argument is their count, then them."""
        (size,) = count.unpack(self.read(count.size))
        if size < 0:
            raise pickle.UnpicklingError(f"{what} has a negative byte count")
        self._reader.check_declared_size(size, what)
        return self.read(size)

    def load_binbytes(self) -> None:
        self.append(self._read_counted(_U32, "a BINBYTES object"))

    dispatch[pickle.BINBYTES[0]] = load_binbytes

    def load_binbytes8(self) -> None:
        self.append(self._read_counted(_U64, "a BINBYTES8 object"))

    dispatch[pickle.BINBYTES8[0]] = load_binbytes8

    def load_bytearray8(self) -> None:
        self.append(bytearray(self._read_counted(_U64, "a BYTEARRAY8 object")))

    dispatch[pickle.BYTEARRAY8[0]] = load_bytearray8

    def load_binunicode(self) -> None:
        data = self._read_counted(_U32, "a BINUNICODE string")
        self.append(str(data, "utf-8", "surrogatepass"))

    dispatch[pickle.BINUNICODE[0]] = load_binunicode

    def load_binunicode8(self) -> None:
        data = self._read_counted(_U64, "a BINUNICODE8 string")
        self.append(str(data, "utf-8", "surrogatepass"))

    dispatch[pickle.BINUNICODE8[0]] = load_binunicode8

    def load_binstring(self) -> None:
        self.append(self._decode_string(self._read_counted(_I32, "a BINSTRING string")))

    dispatch[pickle.BINSTRING[0]] = load_binstring

    def load_long4(self) -> None:
        self.append(pickle.decode_long(self._read_counted(_I32, "a LONG4 integer")))

    dispatch[pickle.LONG4[0]] = load_long4

    def load_frame(self) -> None:
        # A frame only says how many bytes a reader may fetch at once.
        (size,) = unpack("<Q", self.read(8))
        if size > sys.maxsize:
            raise pickle.UnpicklingError(f"frame size > sys.maxsize: {size}")

    dispatch[pickle.FRAME[0]] = load_frame

    # The stdlib's loop looks opcodes up in this dict: an unknown one would
    # surface as a bare KeyError.  Say what the C unpickler says.
    for _code in set(range(256)) - dispatch.keys():
        dispatch[_code] = lambda self, _code=_code: _invalid_opcode(_code)
    del _code


def _finish_refused_opcode(
    scanner: OpcodeScanner, key: bytes, refused_name: tuple[str, str] | None
) -> None:
    """Leave the scanner's stack as the opcode that was refused would have
    left it, had it run: the stdlib unpickler stopped inside it."""
    if refused_name is not None:  # find_class refused a GLOBAL, STACK_GLOBAL or INST
        if key == pickle.INST and scanner.marks:
            scanner.pop_mark()
            scanner.stack.append(OPAQUE)
        else:
            scanner.stack.append(global_value(*refused_name))
    elif key == pickle.REDUCE:  # getattr refused an attribute: its result
        scanner.stack[-1:] = [OPAQUE]
    else:  # INST or OBJ calling getattr, its MARK already popped
        scanner.stack.append(OPAQUE)


class _OpcodeStream(io.RawIOBase):
    """A container's opcode bytes as a raw stream, for ``io.BufferedReader``."""

    def __init__(self, reader: ContainerReader) -> None:
        super().__init__()
        self._reader = reader
        self._delivered = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = self._reader.readinto1(buffer)
        self._delivered += count
        return count

    def tell(self) -> int:
        return self._delivered


_READ_AHEAD = 64 << 10  # the size of the frames picklers write
# Byte counts of the opcodes that declare one.
_U32, _U64, _I32 = Struct("<I"), Struct("<Q"), Struct("<i")


def _invalid_opcode(code: int) -> None:
    raise pickle.UnpicklingError(f"invalid load key, {bytes([code])!r}")


def _new_instance(cls: Any, args: Any, kwargs: dict[str, Any]) -> Any:
    # The C unpickler's checks, which the Python one leaves out, and one more.
    if not isinstance(cls, type):
        raise pickle.UnpicklingError("NEWOBJ class argument isn't a type object")
    if type(args) is not tuple:
        raise pickle.UnpicklingError("NEWOBJ arguments are not a tuple")
    _check_call(cls, args)
    return cls.__new__(cls, *args, **kwargs)


# Admitted callables that copy their argument's raw memory.
_BUFFER_COPIERS = (bytes, bytearray, np.bytes_, np.void)


def _check_call(func: Any, args: Any) -> None:
    """Refuse calls no genuine stream makes and that only a hostile one
    would want: creating an ndarray subclass through ``ndarray.__new__``,
    and copying the memory of Python objects as plain bytes."""
    _refuse_raw_array_class(func)
    copies_memory = isinstance(func, type) and func in _BUFFER_COPIERS
    if copies_memory and args and exposes_object_memory(args[0]):
        raise CorruptDataError(
            "the stream copies the memory of Python objects as plain bytes, which no genuine "
            "stream does; refused"
        )


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
