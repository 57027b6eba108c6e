"""The unpickler behind restricted loads (``load(..., safe=True)``).

Safety follows from what the unpickler can be made to do, not from a list
of known attacks:

* **Names**: every global is resolved through the allowlist (``_safe.py``)
  before its module is imported; EXT codes are looked up afresh in
  ``copyreg``'s registry and go through the same check (the C unpickler's
  process-wide extension cache is never consulted).
* **Calls** (REDUCE, NEWOBJ, NEWOBJ_EX, INST, OBJ): only admitted globals
  can be called, each through its policy in ``_admitted.py``, which checks
  argument types and ranges and builds through public constructors.
  numpy's own reductions are translated (``_native.py``): numpy's
  ``_reconstruct``, ``scalar``, ``_frombuffer``, ``dtype.__setstate__`` and
  ``ndarray.__setstate__`` never run on stream data.  Globals the caller
  adds with ``allow=`` are called as they are.
* **Changes** (BUILD, SETITEM(S), APPEND(S), ADDITEMS): only on objects the
  stream itself made, of the kinds whose pickles need them (dicts, lists,
  sets, deques; a ChainMap's maps; the pending numpy objects of numpy's own
  pickles, which are translated; instances of classes given with
  ``allow=``).  Nothing that existed before the load is changed.
* **Budgets**: one work budget (``_budget.py``: opcodes dispatched, bytes
  read, and what constructors and hashing charge), integer size, dtype tree
  size and depth, MARK depth, keys checked before they are hashed
  (``_keys.py``), and every size an opcode declares (against
  ``max_buffer_size``).
* **Shapes numpy cannot take**: when the stream ends, reference cycles
  through object arrays and object arrays nested too deeply are refused
  (``_cycles.py``): numpy recurses through them in C without a bound.

The C unpickler has no hooks for these opcodes, so restricted loads run the
standard library's pure-Python unpickler, ``pickle._Unpickler`` (the
reference the C one mirrors), with them replaced.  Array data does not
pass through the unpickler, so array-heavy files load about as fast as in
a normal load; object-heavy streams take several times as long.
"""

from __future__ import annotations

import collections
import copyreg
import io
import math
import pickle
import sys
from struct import Struct, unpack
from typing import Any

import numpy as np

from . import _construct as construct
from ._admitted import BUILDERS, POLICIES, PendingArray, PendingDtype
from ._budget import BYTES_PER_UNIT, CALL_COST, MAX_MARK_DEPTH, WorkMeter, text_int_cost
from ._cycles import check_object_arrays
from ._keys import PLAIN_KEYS as _PLAIN_KEYS
from ._keys import KeyGuard
from ._native import Translator
from ._reader import ContainerReader, bounded_readline
from ._safe import PANDAS_GLOBALS, SAFE_GLOBALS, forbidden_globals, resolve
from ._scan import (
    OPAQUE,
    OpcodeScanner,
    as_scan_value,
    global_value,
    iter_chunks,
    python3_name,
)
from ._skim import skim_payloads
from ._sources import default_buffer_limit
from .errors import CodecPickleError, CorruptDataError, ForbiddenGlobalError, SizeLimitError

__all__ = ["RestrictedUnpickler", "int_digit_limit"]


def int_digit_limit() -> int:
    """The most decimal digits an integer in a restricted load may have:
    CPython's own limit on int/str conversion (4300 unless changed), or
    4300 if that limit is switched off."""
    limit = sys.get_int_max_str_digits() if hasattr(sys, "get_int_max_str_digits") else 0
    return limit or 4300


class RestrictedUnpickler(pickle._Unpickler):  # type: ignore[name-defined,misc]
    """Unpickles from a container, resolving globals only from ``allowed``
    and calling and changing objects only as the module docstring says."""

    dispatch = pickle._Unpickler.dispatch.copy()  # type: ignore[attr-defined]

    def __init__(self, reader: ContainerReader, allowed: frozenset[str]) -> None:
        super().__init__(reader, buffers=reader.buffers())
        self._reader = reader
        self._allowed = allowed
        self._profile = allowed & (SAFE_GLOBALS | PANDAS_GLOBALS)
        # Readers of other formats (``_foreign``) may lack the container
        # reader's attributes: their own bound, then the default.
        self.max_bytes = getattr(reader, "max_buffer_size", None) or getattr(
            reader, "_max_buffer", default_buffer_limit()
        )
        #: The work budget (``_budget.py``): opcodes, bytes, and what
        #: constructors and hashing charge through ``spend``.
        self.meter = WorkMeter(reader, getattr(reader, "requested_max_buffer_size", None))
        self.spend = self.meter.spend
        self.keys = KeyGuard(self.spend)
        self.translator = Translator(max_bytes=self.max_bytes, spend=self.spend)
        self._max_int_bytes = math.ceil(int_digit_limit() * math.log2(10) / 8) + 1
        # id -> object for every global the stream obtained (held, so the
        # ids stay their own); id -> (callable, policy or None) for calls.
        self._globals: dict[int, Any] = {}
        self._calls: dict[int, tuple[Any, Any]] = {}
        # Classes named through allow= (their instances take BUILD and items).
        self._user_classes: dict[int, type] = {}
        # Object arrays made empty by construct.array, awaiting construct.fill.
        self.unfilled: dict[int, np.ndarray] = {}
        # Pending numpy objects made and not yet given their state.
        self.pending = 0
        # id(pending object) -> memo keys it was stored under.
        self._pending_keys: dict[int, list[int]] = {}
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
        raw = _OpcodeStream(self._reader, self.spend)
        stream = io.BufferedReader(raw, _READ_AHEAD)
        self.read = read = stream.read
        self.readinto = stream.readinto
        self.readline = bounded_readline(stream.readline, self._reader.check_declared_size)
        self.metastack = []
        self.stack = []
        self.append = self.stack.append
        self.proto = 0
        dispatch = self.dispatch
        spend = self.spend
        key = b""
        try:
            while True:
                # Opcodes are counted in blocks (a counter per opcode would
                # cost a tenth of the loop): the budget is checked every
                # _OPCODE_BLOCK opcodes.
                for _ in _OPCODE_BLOCK:
                    key = read(1)
                    if not key:
                        raise EOFError
                    dispatch[key[0]](self)
                spend(_OPCODE_BLOCK_SIZE)
                if len(self.metastack) > MAX_MARK_DEPTH:
                    _too_many_marks()
        except pickle._Stop as stop:  # type: ignore[attr-defined]
            # Bytes the buffered reader holds past STOP are still the
            # reader's to account for (ContainerReader.finish refuses them).
            self._reader.unread(raw.tell() - stream.tell())
            if self.pending:
                raise CorruptDataError(
                    f"the stream starts {self.pending} numpy object(s) in numpy's own way "
                    "but never gives their state, which no genuine stream does; refused"
                ) from None
            result = stop.value
        except ForbiddenGlobalError as refused:
            if not refused.names:
                raise
            raise self._every_forbidden(refused, key, stream) from None
        # Only now: a stream can close a cycle after an array is built.
        check_object_arrays(self.translator.object_arrays)
        return result

    def admits(self, module: str, name: str) -> bool:
        """Whether :meth:`find_class` would accept ``module.name``, decided
        without resolving it (to list refused globals found by a scan)."""
        return f"{module}.{name}" in self._allowed

    # -- names -------------------------------------------------------------------

    def find_class(self, module: str, name: str) -> Any:
        if self.proto < 3 and self.fix_imports:
            # Protocol 0-2 pickles spell Python 2's names (__builtin__.set):
            # checked under the name they resolve to, as the stdlib maps them.
            module, name = python3_name(module, name)
        self._refused_name = (module, name)
        found = resolve(self._allowed, module, name, super().find_class)
        self._refused_name = None
        return self._admit(f"{module}.{name}", found)

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

    def _admit(self, dotted: str, found: Any) -> Any:
        """Note a global the stream obtained: how it may be called, and
        that it must not be changed."""
        self._globals[id(found)] = found
        if dotted in self._profile:
            policy = POLICIES.get(dotted)
            if policy is not None:
                self._calls[id(found)] = (found, policy)
        else:
            # Named by the caller with allow=: called and changed as it is.
            self._calls[id(found)] = (found, None)
            if isinstance(found, type):
                self._user_classes[id(found)] = found
        return found

    def admit_foreign(self, found: Any) -> Any:
        """For subclasses that read other formats: admit ``found``, a
        stand-in the subclass itself provides for one of that format's
        globals, to be called as it is (it checks its own arguments)."""
        self._globals[id(found)] = found
        self._calls[id(found)] = (found, None)
        return found

    def max_items(self) -> int:
        """The most elements an array whose data the input does not hold may
        have: the work budget, as filling or using it costs about as much
        work per element as an opcode."""
        return self.meter.budget()

    def is_user_class(self, cls: Any) -> bool:
        """Whether ``cls`` was admitted by the caller with ``allow=``."""
        return self._user_classes.get(id(cls)) is cls

    def restricted_getattr(self, owner: Any, name: Any) -> Any:
        """``getattr`` for restricted loads.  Pickles name class methods
        (such as ``ZoneInfo._unpickle``) as ``getattr(cls, name)``; this
        serves only attributes of admitted classes whose full dotted name
        is itself allowed, and treats each as a global."""
        if not (isinstance(owner, type) and self._globals.get(id(owner)) is owner):
            raise ForbiddenGlobalError(
                f"the stream asks for attribute {name!r} of {owner!r}, which a restricted "
                "load does not allow"
            )
        if type(name) is not str:
            raise CorruptDataError("the stream asks getattr for a name that is not a str")
        dotted = f"{owner.__module__}.{owner.__qualname__}.{name}"
        resolve(self._allowed, owner.__module__, f"{owner.__qualname__}.{name}", _no_import)
        return self._admit(dotted, getattr(owner, name))

    def _ext(self, code: int) -> None:
        # Looked up afresh in the registry, then checked like any global;
        # copyreg._extension_cache is never consulted.
        key = copyreg._inverted_registry.get(code)  # type: ignore[attr-defined]
        if key is None:
            raise pickle.UnpicklingError(f"unregistered extension code {code}")
        self.append(self.find_class(*key))

    def load_ext1(self) -> None:
        self._ext(self.read(1)[0])

    dispatch[pickle.EXT1[0]] = load_ext1

    def load_ext2(self) -> None:
        self._ext(unpack("<H", self.read(2))[0])

    dispatch[pickle.EXT2[0]] = load_ext2

    def load_ext4(self) -> None:
        self._ext(unpack("<i", self.read(4))[0])

    dispatch[pickle.EXT4[0]] = load_ext4

    # -- calls -------------------------------------------------------------------

    def _call(self, func: Any, args: Any, kwargs: Any = None, new: bool = False) -> Any:
        self.spend(CALL_COST)
        if type(args) is not tuple:
            raise pickle.UnpicklingError("the arguments of a call are not a tuple")
        entry = self._calls.get(id(func))
        if entry is None or entry[0] is not func:
            raise CorruptDataError(
                f"the stream calls {_describe(func)}, which a restricted load does not call; "
                "refused"
            )
        policy = entry[1]
        if policy is not None:
            if kwargs:
                raise CorruptDataError("the stream passes keyword arguments to a constructor")
            return policy(self, args)
        # The caller's own global (allow=): called as it is, except that no
        # ndarray subclass is built over raw bytes through ndarray.__new__.
        _refuse_raw_array_class(func)
        if new:
            if not isinstance(func, type):
                raise pickle.UnpicklingError("NEWOBJ class argument isn't a type object")
            return func.__new__(func, *args, **(kwargs or {}))
        return func(*args, **(kwargs or {}))

    def load_reduce(self) -> None:
        stack = self.stack
        args = stack.pop()
        stack[-1] = self._call(stack[-1], args)

    dispatch[pickle.REDUCE[0]] = load_reduce

    def _instantiate(self, klass: Any, args: Any) -> None:  # INST and OBJ
        self.append(self._call(klass, tuple(args)))

    def load_newobj(self) -> None:
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self._call(cls, args, new=True))

    dispatch[pickle.NEWOBJ[0]] = load_newobj

    def load_newobj_ex(self) -> None:
        kwargs = self.stack.pop()
        args = self.stack.pop()
        cls = self.stack.pop()
        if type(kwargs) is not dict:
            raise pickle.UnpicklingError("NEWOBJ_EX keyword arguments are not a dict")
        self.append(self._call(cls, args, kwargs, new=True))

    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex

    # -- changes -----------------------------------------------------------------

    def _check_changeable(self, target: Any, kinds: tuple[type, ...], what: str) -> None:
        if type(target) in kinds or (
            self.is_user_class(type(target)) and id(target) not in self._globals
        ):
            return
        if id(target) in self._globals:
            raise ForbiddenGlobalError(
                f"the stream changes {_describe(target)}, a global shared by the whole "
                "process, which a restricted load does not allow"
            )
        raise CorruptDataError(
            f"the stream {what} {_describe(target)}, which no genuine stream does; refused"
        )

    def load_build(self) -> None:
        stack = self.stack
        state = stack.pop()
        inst = stack[-1]
        kind = type(inst)
        if kind is PendingDtype:
            built: Any = self.translator.dtype_from_state(inst.type_name, inst.align, state)
        elif kind is PendingArray:
            built = self._build_array(inst, state)
        elif kind in BUILDERS and id(inst) not in self._globals:
            self.spend(_state_size(state))
            BUILDERS[kind](inst, state)
            return
        else:
            self._check_changeable(inst, (), "sets the state of")
            # The stdlib sets each item of a dict state (a stream can give
            # one it built once many times).
            self.spend(_state_size(state))
            if isinstance(inst, np.ndarray) and type(inst).__setstate__ in _NUMPY_SETSTATES:
                raise CorruptDataError(
                    "the stream sets the state of an array through numpy's own __setstate__; "
                    "refused"
                )
            stack.append(state)
            pickle._Unpickler.load_build(self)  # type: ignore[attr-defined]
            return
        del state
        self._replace_pending(inst, built)
        self.pending -= 1

    dispatch[pickle.BUILD[0]] = load_build

    def _build_array(self, pending: PendingArray, state: Any) -> Any:
        if pending.masked:
            return self._build_masked(state)
        array = self.translator.array_from_state(np.ndarray, state)
        items = state[-1] if type(state) is tuple and state else None
        if type(items) is list and array.dtype == _OBJECT:
            # numpy's pickle of an object array that contains itself: the
            # list names the pending object, which becomes the array.
            for index, item in enumerate(items):
                if item is pending:
                    items[index] = array
                    array[np.unravel_index(index, array.shape)] = array
        cls = pending.cls
        if cls is np.matrix:
            return construct.matrix(array)
        return array if cls is np.ndarray else array.view(cls)

    def _build_masked(self, state: Any) -> Any:
        if not (type(state) is tuple and len(state) == 7):
            raise CorruptDataError("the stream gives a masked array a malformed state; refused")
        version, shape, dtype, fortran, data, mask_data, fill_value = state
        translator = self.translator
        array = translator.array_from_state(np.ndarray, (version, shape, dtype, fortran, data))
        mask_state = (shape, translator.mask_dtype(dtype), fortran, mask_data)
        return construct.masked(
            array, translator.array_from_state(np.ndarray, mask_state), fill_value, False
        )

    def _replace_pending(self, pending: Any, built: Any) -> None:
        """Put ``built`` where ``pending`` was (stack top, memo), and refuse
        if anything else still refers to it: that object would keep a
        placeholder instead of the numpy object."""
        self.stack[-1] = built
        memo = self.memo
        for key in self._pending_keys.pop(id(pending), ()):
            if memo.get(key) is pending:
                memo[key] = built
        # Left: this frame's variable and getrefcount's own argument.
        if sys.getrefcount(pending) > _PENDING_REFS:
            raise CorruptDataError(
                f"the stream uses a numpy {type(built).__name__} before its state is set, "
                "which no genuine stream does; refused"
            )

    def load_setitem(self) -> None:
        stack = self.stack
        value = stack.pop()
        key = stack.pop()
        target = stack[-1]
        self._check_changeable(target, _MAPPINGS, "sets items of")
        if type(key) not in _PLAIN_KEYS:
            self.keys.check([key], target)
        target[key] = value

    dispatch[pickle.SETITEM[0]] = load_setitem

    def load_setitems(self) -> None:
        items = self.pop_mark()
        target = self.stack[-1]
        self._check_changeable(target, _MAPPINGS, "sets items of")
        keys = items[::2]
        if not _PLAIN_KEYS.issuperset(map(type, keys)):
            self.keys.check(keys, target)
        for i in range(0, len(items), 2):
            target[items[i]] = items[i + 1]

    dispatch[pickle.SETITEMS[0]] = load_setitems

    def load_append(self) -> None:
        stack = self.stack
        value = stack.pop()
        target = stack[-1]
        self._check_changeable(target, _SEQUENCES, "appends to")
        target.append(value)

    dispatch[pickle.APPEND[0]] = load_append

    def load_appends(self) -> None:
        items = self.pop_mark()
        target = self.stack[-1]
        self._check_changeable(target, _SEQUENCES, "appends to")
        if type(target) is list:
            target.extend(items)
        else:
            for item in items:
                target.append(item)

    dispatch[pickle.APPENDS[0]] = load_appends

    def load_additems(self) -> None:
        items = self.pop_mark()
        target = self.stack[-1]
        self._check_changeable(target, (set,), "adds items to")
        self.keys.check(items, target)
        target.update(items)

    dispatch[pickle.ADDITEMS[0]] = load_additems

    def load_dict(self) -> None:
        items = self.pop_mark()
        self.keys.check(items[::2])
        self.append({items[i]: items[i + 1] for i in range(0, len(items), 2)})

    dispatch[pickle.DICT[0]] = load_dict

    def load_frozenset(self) -> None:
        items = self.pop_mark()
        self.keys.check(items)
        self.append(frozenset(items))

    dispatch[pickle.FROZENSET[0]] = load_frozenset

    # -- tuples ------------------------------------------------------------------------
    # Tuples nested in tuples are noted (and refused past a depth): CPython
    # hashes them by recursing in C, without a check.

    def load_tuple(self) -> None:
        value = tuple(self.pop_mark())
        if _TUPLE in map(type, value):
            self.keys.note_tuple(value)
        self.append(value)

    dispatch[pickle.TUPLE[0]] = load_tuple

    def load_tuple1(self) -> None:
        stack = self.stack
        value = stack[-1] = (stack[-1],)
        if type(value[0]) is tuple:
            self.keys.note_tuple(value)

    dispatch[pickle.TUPLE1[0]] = load_tuple1

    def load_tuple2(self) -> None:
        stack = self.stack
        second = stack.pop()
        value = stack[-1] = (stack[-1], second)
        if type(second) is tuple or type(value[0]) is tuple:
            self.keys.note_tuple(value)

    dispatch[pickle.TUPLE2[0]] = load_tuple2

    def load_tuple3(self) -> None:
        stack = self.stack
        third = stack.pop()
        second = stack.pop()
        value = stack[-1] = (stack[-1], second, third)
        if _TUPLE in map(type, value):
            self.keys.note_tuple(value)

    dispatch[pickle.TUPLE3[0]] = load_tuple3

    # -- text opcodes ------------------------------------------------------------------
    # Protocol 0 spells integers (and memo keys) as decimal text, which
    # CPython parses in time quadratic in its length: charged as such.

    def load_int(self) -> None:
        data = self.readline()
        self.spend(text_int_cost(len(data)))
        if data == pickle.FALSE[1:]:
            value: Any = False
        elif data == pickle.TRUE[1:]:
            value = True
        else:
            value = int(data, 0)
        self.append(value)

    dispatch[pickle.INT[0]] = load_int

    def load_long(self) -> None:
        value = self.readline()[:-1]
        self.spend(text_int_cost(len(value)))
        if value and value[-1] == ord("L"):
            value = value[:-1]
        self.append(int(value, 0))

    dispatch[pickle.LONG[0]] = load_long

    def _memo_key(self) -> int:
        """A PUT or GET key: at most 10 digits, as the binary forms allow."""
        line = self.readline()[:-1]
        if not (0 < len(line) <= 10 and line.isdigit()):
            raise pickle.UnpicklingError(f"malformed memo key {line[:20]!r}")
        return int(line)

    def load_get(self) -> None:
        key = self._memo_key()
        try:
            self.append(self.memo[key])
        except KeyError:
            raise pickle.UnpicklingError(f"Memo value not found at index {key}") from None

    dispatch[pickle.GET[0]] = load_get

    # -- memo ----------------------------------------------------------------------
    # The stdlib's memo opcodes, plus a note of where each pending numpy
    # object is stored, so that its translation replaces it there too.

    def _note(self, value: Any, key: int) -> None:
        if type(value) in _PENDING:
            self._pending_keys.setdefault(id(value), []).append(key)

    def load_put(self) -> None:
        key = self._memo_key()
        value = self.memo[key] = self.stack[-1]
        self._note(value, key)

    dispatch[pickle.PUT[0]] = load_put

    def load_binput(self) -> None:
        key = self.read(1)[0]
        value = self.memo[key] = self.stack[-1]
        self._note(value, key)

    dispatch[pickle.BINPUT[0]] = load_binput

    def load_long_binput(self) -> None:
        (key,) = unpack("<I", self.read(4))
        value = self.memo[key] = self.stack[-1]
        self._note(value, key)

    dispatch[pickle.LONG_BINPUT[0]] = load_long_binput

    def load_memoize(self) -> None:
        # The most frequent memo opcode: _note inlined.
        memo = self.memo
        key = len(memo)
        value = memo[key] = self.stack[-1]
        if type(value) in _PENDING:
            self._pending_keys.setdefault(id(value), []).append(key)

    dispatch[pickle.MEMOIZE[0]] = load_memoize

    # -- buffers ------------------------------------------------------------------

    def load_readonly_buffer(self) -> None:
        # Genuine streams mark out-of-band buffers read-only; a memoryview
        # of an object array would lend its pointers as plain bytes.
        if _exposes_object_memory(self.stack[-1]):
            raise CorruptDataError(
                "the stream views the memory of Python objects as plain data, which no "
                "genuine stream does; refused"
            )
        super().load_readonly_buffer()

    dispatch[pickle.READONLY_BUFFER[0]] = load_readonly_buffer

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

    def check_int(self, value: int) -> None:
        """Refuse an integer over the digit budget (:func:`int_digit_limit`):
        converting one to text or Decimal takes time quadratic in its size."""
        if value.bit_length() > 8 * self._max_int_bytes:
            raise SizeLimitError(
                f"the stream holds an integer of {value.bit_length()} bits, over the limit of "
                f"{int_digit_limit()} decimal digits for restricted loads "
                "(sys.set_int_max_str_digits raises it)"
            )

    def load_long4(self) -> None:
        (size,) = _I32.unpack(self.read(4))
        if size < 0:
            raise pickle.UnpicklingError("LONG4 has a negative byte count")
        if size > self._max_int_bytes:
            raise SizeLimitError(
                f"the stream holds an integer of {size} bytes, over the limit of "
                f"{int_digit_limit()} decimal digits for restricted loads "
                "(sys.set_int_max_str_digits raises it)"
            )
        self.append(pickle.decode_long(self.read(size)))

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
    """A container's opcode bytes as a raw stream, for ``io.BufferedReader``,
    charging the work budget one unit per ``BYTES_PER_UNIT`` bytes."""

    def __init__(self, reader: ContainerReader, spend: Any) -> None:
        super().__init__()
        self._reader = reader
        self._spend = spend
        self._delivered = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = self._reader.readinto1(buffer)
        before = self._delivered
        self._delivered += count
        self._spend(self._delivered // BYTES_PER_UNIT - before // BYTES_PER_UNIT)
        return count

    def tell(self) -> int:
        return self._delivered


_OBJECT = np.dtype("O")
_TUPLE = tuple
_READ_AHEAD = 64 << 10  # the size of the frames picklers write
_OPCODE_BLOCK_SIZE = 256
_OPCODE_BLOCK = range(_OPCODE_BLOCK_SIZE)
# Byte counts of the opcodes that declare one.
_U32, _U64, _I32 = Struct("<I"), Struct("<Q"), Struct("<i")
# The objects a stream may set items of, or append to (besides instances of
# classes given with allow=).
_MAPPINGS = (dict, collections.OrderedDict, collections.Counter, collections.defaultdict)
_SEQUENCES = (list, collections.deque)
_PENDING = (PendingDtype, PendingArray)
# References to a pending object while it is replaced: load_build's and
# _replace_pending's variables, and sys.getrefcount's argument.
_PENDING_REFS = 3
_NUMPY_SETSTATES = (np.ndarray.__setstate__, np.ma.MaskedArray.__setstate__)


def _too_many_marks() -> None:
    raise SizeLimitError(
        f"the pickle stream opens more than {MAX_MARK_DEPTH:,} MARKs without closing them, "
        "the limit for a restricted load (genuine streams nest them as deeply as their "
        "data, which Python's recursion limit bounds)"
    )


def _state_size(state: Any) -> int:
    """The items a BUILD sets from ``state``: a dict, a (dict, slots dict)
    pair, or a ChainMap's maps."""
    if type(state) is tuple and len(state) == 2:
        return 1 + sum(len(part) for part in state if isinstance(part, dict))
    if isinstance(state, dict):
        maps = state.get("maps") if len(state) == 1 else None
        return 1 + len(state) + (len(maps) if type(maps) is list else 0)
    return 1


def _invalid_opcode(code: int) -> None:
    raise pickle.UnpicklingError(f"invalid load key, {bytes([code])!r}")


def _no_import(module: str, name: str) -> None:
    return None


def _describe(obj: Any) -> str:
    name = getattr(obj, "__qualname__", None)
    module = getattr(obj, "__module__", None)
    if isinstance(name, str) and isinstance(module, str):
        return f"{module}.{name}"
    return f"a {type(obj).__qualname__} object"


def _exposes_object_memory(obj: Any) -> bool:
    """Whether ``obj`` lends memory that holds object pointers: an array or
    numpy scalar whose dtype holds objects, or a memoryview of one."""
    if isinstance(obj, memoryview):
        obj = obj.obj
    return isinstance(obj, np.ndarray | np.generic) and obj.dtype.hasobject


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
