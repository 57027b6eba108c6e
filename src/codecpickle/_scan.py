"""Walk a pickle opcode stream without executing it.

:class:`OpcodeScanner` reads opcodes the way an unpickler does, but keeps a
*simulated* stack and memo of plain values instead of building objects:
strings, small ints, ``None``, booleans and tuples are followed (they are
what global names, shapes, dtype descriptions and orders are made of);
everything else is an opaque placeholder.  Nothing is imported, nothing is
called, no class is looked up, and extension codes are reported as codes
without consulting ``copyreg``.

What it reports (:class:`ScanResult`):

* every global the stream would import: ``GLOBAL`` and ``INST`` names,
  ``STACK_GLOBAL`` names resolved through the simulated stack and memo
  (strings pushed, memoized, fetched back), and ``getattr(Global, "name")``
  calls, which restricted loads treat as the global ``module.Global.name``;
* extension codes (``EXT1``/``EXT2``/``EXT4``);
* the array constructor calls whose arguments are literal: shape, dtype
  description and order, tied to the out-of-band buffer (``NEXT_BUFFER``,
  counted from 0 in stream order, the same order as the container's
  payload records) or to the in-band bytes they consume.  Which callables
  count as array constructors is the table :data:`ARRAY_CONSTRUCTORS`.

Hostile streams are bounded: every opcode consumes at least one byte and is
handled in constant time (plus the size of its argument), so a walk takes
time linear in the stream; nothing is allocated for a size the stream only
declares (long strings and byte strings are skipped, not read); and the
bookkeeping is a pointer or two per opcode (the stack and memo hold shared
placeholders, marks are an array of integers, the memo grows densely only
as far as twice its number of entries).  Malformed streams raise
:class:`~codecpickle.errors.CorruptDataError`.
"""

from __future__ import annotations

import _compat_pickle
import codecs
import struct
import sys
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .errors import CodecPickleError, CorruptDataError

__all__ = [
    "ARRAY_CONSTRUCTORS",
    "JOBLIB_WRAPPERS",
    "ArrayCall",
    "GlobalRef",
    "OpcodeScanner",
    "ScanResult",
    "scan_opcodes",
]

# Strings longer than this are not followed: no module, name, dtype code or
# order is that long, and skipping them keeps hostile declared sizes from
# costing memory.
STRING_LIMIT = 1 << 16
# Integers given as text are converted only up to this many digits (Python
# itself refuses longer ones by default).
_INT_DIGITS_LIMIT = 4300
# numpy's limit on dimensions; longer "shapes" are not shapes.
_MAX_NDIM = 64
# In-band bytes up to this size are kept (datetime units in dtype states).
_SHORT_BYTES = 64
# How deep nested dtype descriptions (subarrays of subarrays) are followed.
_DESCR_DEPTH = 16
HIGHEST_PROTOCOL = 5
# Items of a dict followed in joblib streams (a wrapper state has six).
_DICT_ITEMS = 16
# How deeply joblib's inner pickles (of object arrays) may nest.
_INNER_DEPTH = 8

#: joblib's array wrapper, whose BUILD is followed by the array's data
#: (``_foreign/_joblib.py`` reads them; the two lists are the same).
JOBLIB_WRAPPERS = frozenset(
    f"{module}.numpy_pickle.NumpyArrayWrapper" for module in ("joblib", "sklearn.externals.joblib")
)
# numpy's own pickle of an array before protocol 5: _reconstruct, then a
# BUILD state (version, shape, dtype, is_fortran, data).
_NATIVE_RECONSTRUCT = frozenset(
    f"numpy.{core}.multiarray._reconstruct" for core in ("core", "_core")
)


# -- what the scan reports ---------------------------------------------------


def python3_name(module: str, name: str) -> tuple[str, str]:
    """``(module, name)`` as the stdlib's unpickler maps a Python 2 name
    (``fix_imports``), unchanged when it has no mapping."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


@dataclass(frozen=True)
class GlobalRef:
    """A global the stream would import: ``module.name`` (``name`` may be
    dotted, a qualified name), the opcode that names it (``GLOBAL``,
    ``STACK_GLOBAL``, ``INST`` or ``getattr``) and its offset in the opcode
    stream."""

    module: str
    name: str
    opcode: str
    offset: int

    @property
    def dotted(self) -> str:
        """``"module.qualname"``, the form allowlists use."""
        return f"{self.module}.{self.name}"


@dataclass(frozen=True)
class ArrayCall:
    """An array constructor call read from the stream.

    ``buffer`` is the index of the out-of-band buffer it consumes (the
    n-th ``NEXT_BUFFER``, which is the n-th payload record), or None when
    its data travels in-band, inside the opcode stream; ``inband_bytes`` is
    then the size of that data.
    """

    constructor: str
    shape: tuple[int, ...]
    dtype: str
    order: str
    buffer: int | None
    inband_bytes: int | None
    offset: int


@dataclass
class ScanResult:
    """Everything one walk found (see the module docstring)."""

    globals: list[GlobalRef] = field(default_factory=list)
    #: (code, offset) of every EXT1/EXT2/EXT4 opcode.
    extensions: list[tuple[int, int]] = field(default_factory=list)
    #: (opcode, offset) of every STACK_GLOBAL whose operands were not
    #: literal strings (the scan cannot tell which global it names).
    unresolved: list[tuple[str, int]] = field(default_factory=list)
    arrays: list[ArrayCall] = field(default_factory=list)
    #: NEXT_BUFFER opcodes met, i.e. out-of-band buffers consumed.
    buffers: int = 0
    protocol: int | None = None
    #: Opcode bytes walked, up to and including STOP (for joblib streams,
    #: the array data between the opcodes included: see ``inline_bytes``).
    opcode_bytes: int = 0
    #: Whether the stream names joblib's array wrapper (a joblib file).
    joblib: bool = False
    #: Bytes of array data stepped over between the opcodes (joblib's
    #: arrays, padding included), not opcodes.
    inline_bytes: int = 0


# -- values on the simulated stack --------------------------------------------


class _Opaque:
    """A value the scan does not follow."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<opaque>"


OPAQUE = _Opaque()


class _Global:
    __slots__ = ("module", "name")

    def __init__(self, module: str, name: str) -> None:
        self.module = module
        self.name = name

    @property
    def dotted(self) -> str:
        return f"{self.module}.{self.name}"


class _Call:
    """The result of calling a global; BUILD may attach a state."""

    __slots__ = ("args", "func", "state")

    def __init__(self, func: _Global, args: Any) -> None:
        self.func = func
        self.args = args
        self.state: Any = None


class _Buffer:
    """An out-of-band buffer (NEXT_BUFFER), by index."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index


class _InBand:
    """Bytes carried in the opcode stream (BINBYTES*, BYTEARRAY8); the
    bytes themselves are kept only when short (a datetime unit such as
    ``b"ms"`` in a dtype's state)."""

    __slots__ = ("data", "size")

    def __init__(self, size: int, data: bytes | None = None) -> None:
        self.size = size
        self.data = data


class _Dict:
    """A dict the stream builds, with its literal str-keyed items (the
    first :data:`_DICT_ITEMS`), followed only in joblib streams: a joblib
    array wrapper's state is one."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: dict[str, Any] = {}

    def set(self, key: Any, value: Any) -> None:
        if type(key) is str and (key in self.items or len(self.items) < _DICT_ITEMS):
            self.items[key] = value


_UNSET = object()  # an undefined slot of the dense memo


# -- array constructors --------------------------------------------------------

# (shape, dtype value, order, buffer value) pulled from a call's arguments.
_ArrayArgs = tuple[Any, Any, Any, Any]


def _ndarray_args(args: tuple[Any, ...]) -> _ArrayArgs | None:
    # codecpickle's writer: numpy.ndarray(shape, dtype, buffer, 0, None, order)
    if len(args) != 6 or args[3] != 0 or args[4] is not None:
        return None
    return args[0], args[1], args[5], args[2]


def _frombuffer_args(args: tuple[Any, ...]) -> _ArrayArgs | None:
    # numpy's own protocol-5 reduction: _frombuffer(buffer, dtype, shape, order)
    if len(args) != 4:
        return None
    return args[2], args[1], args[3], args[0]


def _construct_args(args: tuple[Any, ...]) -> _ArrayArgs | None:
    # codecpickle._construct.array(shape, descr, order, data): the writer's
    # declarative form, with the dtype as a plain description.
    if len(args) != 4:
        return None
    return args[0], _Description(args[1]), args[2], args[3]


class _Description:
    """A dtype given as a plain description (strings and tuples) rather
    than as a pickled ``numpy.dtype``."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


#: Callables recognised as array constructors, by ``"module.qualname"``:
#: each maps a call's argument tuple to (shape, dtype, order, buffer), or
#: None when the call does not have that form.  A new writer form is one
#: more entry here.
ARRAY_CONSTRUCTORS: dict[str, Callable[[tuple[Any, ...]], _ArrayArgs | None]] = {
    "numpy.ndarray": _ndarray_args,
    "numpy.core.numeric._frombuffer": _frombuffer_args,
    "numpy._core.numeric._frombuffer": _frombuffer_args,
    "codecpickle._construct.array": _construct_args,
}


def describe_dtype(value: Any, depth: int = 0) -> str | None:
    """A description of a dtype pickled as ``numpy.dtype(code, ...)`` plus
    its BUILD state, in numpy's ``dtype.str`` spelling (``'<f8'``,
    ``'<M8[ms]'``, ``'|V16'``); subarrays as ``"('<f4', (2, 3))"`` and
    structured dtypes with their field names.  None if it is not one."""
    if isinstance(value, _Description):
        return _describe_plain(value.value, depth)
    if depth > _DESCR_DEPTH or not isinstance(value, _Call):
        return None
    if value.func.dotted != "numpy.dtype":
        return None
    args = value.args
    if not (isinstance(args, tuple) and args and isinstance(args[0], str)):
        return None
    code, state = args[0], value.state
    byteorder = "|"
    if isinstance(state, tuple) and len(state) >= 8 and state[1] in ("<", ">", "|", "="):
        byteorder = state[1]
    text = f"{byteorder}{code}"
    if not isinstance(state, tuple) or len(state) < 8:
        return text
    if code in ("M8", "m8") and len(state) >= 9:
        unit = _datetime_unit(state[8])
        if unit:
            text += f"[{unit}]"
    subarray, names = state[2], state[3]
    if isinstance(subarray, tuple) and len(subarray) == 2:
        base = describe_dtype(subarray[0], depth + 1)
        shape = _shape(subarray[1])
        if base is not None and shape is not None:
            return f"({base!r}, {shape!r})"
    if isinstance(names, tuple) and all(isinstance(name, str) for name in names):
        return f"{text} with fields {', '.join(names)}"
    return text


def _describe_plain(descr: Any, depth: int) -> str | None:
    """A plain dtype description (``"<f8"``, ``("struct", fields, itemsize,
    aligned)``, ``("subarray", descr, shape)``, ``("string", coerce, na)``,
    ``("meta", descr, items)``) in the same spelling as
    :func:`describe_dtype`."""
    if depth > _DESCR_DEPTH:
        return None
    if isinstance(descr, str):
        return descr
    if not (isinstance(descr, tuple) and descr and isinstance(descr[0], str)):
        return None
    kind = descr[0]
    if kind == "meta" and len(descr) == 3:
        return _describe_plain(descr[1], depth + 1)
    if kind == "string":
        return "StringDType"
    if kind == "subarray" and len(descr) == 3:
        base, shape = _describe_plain(descr[1], depth + 1), _shape(descr[2])
        return None if base is None or shape is None else f"({base!r}, {shape!r})"
    if kind == "struct" and len(descr) == 4 and isinstance(descr[2], int):
        fields = descr[1] if isinstance(descr[1], tuple) else ()
        names = [f[0] for f in fields if isinstance(f, tuple) and f and isinstance(f[0], str)]
        return f"|V{descr[2]} with fields {', '.join(names)}"
    return None


def _datetime_unit(metadata: Any) -> str | None:
    # numpy 2 writes (metadata dict or None, (unit, count, ...)); older
    # numpy wrote the (unit, count, ...) tuple directly.
    for candidate in (metadata, *(metadata if isinstance(metadata, tuple) else ())):
        if isinstance(candidate, tuple) and len(candidate) >= 2:
            unit, count = candidate[0], candidate[1]
            if isinstance(unit, _InBand) and unit.data is not None:
                unit = unit.data.decode("ascii", "replace")
            elif (
                isinstance(unit, _Call)
                and unit.func.dotted == "_codecs.encode"
                and isinstance(unit.args, tuple)
                and unit.args
            ):
                unit = unit.args[0]  # protocols 0-2 pickle bytes as encode(str, "latin1")
            if isinstance(unit, str) and isinstance(count, int):
                return unit if count == 1 else f"{count}{unit}"
    return None


def dtype_layout(value: Any) -> tuple[int, bool] | None:
    """(itemsize, holds objects) of a dtype pickled as ``numpy.dtype(code,
    ...)`` plus its BUILD state, or None if it is not one.  The state gives
    the item size of flexible and structured dtypes (``elsize``) and the
    flags (bit 0: holds references); fixed ones spell it in their code
    (``'f8'``, ``'c16'``, ``'M8'``)."""
    if not (isinstance(value, _Call) and value.func.dotted == "numpy.dtype"):
        return None
    args = value.args
    if not (isinstance(args, tuple) and args and isinstance(args[0], str)):
        return None
    code, state = args[0], value.state
    kind = code.rstrip("0123456789")
    digits = code[len(kind) :]
    flags, elsize = 0, -1
    if isinstance(state, tuple) and len(state) >= 8:
        if isinstance(state[7], int):
            flags = state[7]
        if isinstance(state[5], int):
            elsize = state[5]
    has_objects = kind == "O" or bool(flags & 1)
    if elsize > 0:
        return elsize, has_objects
    if not digits or len(digits) > 4 or kind not in _FIXED_KINDS:
        return None
    return int(digits) * (4 if kind == "U" else 1), has_objects


def _nbytes(shape: tuple[int, ...], itemsize: int) -> int | None:
    """``itemsize`` times the product of ``shape``; None past 2**63 (no
    array is that large, and the product of a hostile shape's huge ints
    would cost time)."""
    total = itemsize
    for length in shape:
        if length >= _TOO_LARGE:
            return 0 if 0 in shape else None
        total *= length
        if total >= _TOO_LARGE:
            return 0 if 0 in shape else None
    return total


_TOO_LARGE = 1 << 63


def _is_joblib_wrapper(value: Any) -> bool:
    if isinstance(value, _Call):
        value = value.func
    return isinstance(value, _Global) and value.dotted in JOBLIB_WRAPPERS


# numpy type codes whose size is spelled in the code itself.
_FIXED_KINDS = frozenset(("b", "i", "u", "f", "c", "M", "m", "O", "S", "U", "V"))


def _shape(value: Any) -> tuple[int, ...] | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return (value,)
    if (
        isinstance(value, tuple)
        and len(value) <= _MAX_NDIM
        and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in value)
    ):
        return value
    return None


# -- reading opcode bytes --------------------------------------------------------


class _End(Exception):
    """The chunks ran out."""


class _Cursor:
    """Opcode bytes from an iterator of chunks, read without ever holding
    more than one chunk plus the argument being read."""

    def __init__(self, chunks: Iterable[Any], start: int = 0) -> None:
        self._chunks = iter(chunks)
        self.buf = b""
        self.pos = 0
        self.base = start  # stream offset of buf[0]

    @property
    def offset(self) -> int:
        return self.base + self.pos

    def _next_chunk(self) -> None:
        self.base += len(self.buf)
        self.pos = 0
        for chunk in self._chunks:
            self.buf = bytes(chunk)
            if self.buf:
                return
        self.buf = b""
        raise _End

    def byte(self) -> int:
        if self.pos >= len(self.buf):
            self._next_chunk()
        value = self.buf[self.pos]
        self.pos += 1
        return value

    def take(self, size: int) -> bytes:
        end = self.pos + size
        if end <= len(self.buf):
            self.pos = end
            return self.buf[end - size : end]
        parts = [self.buf[self.pos :]]
        missing = size - len(parts[0])
        while missing:
            self._next_chunk()
            piece = self.buf[:missing]
            self.pos = len(piece)
            parts.append(piece)
            missing -= len(piece)
        return b"".join(parts)

    def skip(self, size: int) -> None:
        while size > len(self.buf) - self.pos:
            size -= len(self.buf) - self.pos
            self._next_chunk()
        self.pos += size

    def line(self, limit: int) -> bytes | None:
        """The bytes up to the next newline (excluded); None when longer
        than ``limit`` (read through, not kept)."""
        parts: list[bytes] = []
        kept = 0
        while True:
            end = self.buf.find(b"\n", self.pos)
            stop = len(self.buf) if end < 0 else end
            if kept <= limit:
                piece = self.buf[self.pos : stop]
                kept += len(piece)
                parts.append(piece)
            if end >= 0:
                self.pos = end + 1
                return b"".join(parts) if kept <= limit else None
            self._next_chunk()

    def unused(self) -> int:
        """Bytes of the current chunk not read yet."""
        return len(self.buf) - self.pos


# -- the walk ----------------------------------------------------------------------

_U2, _U4, _I4, _U8, _F8 = (struct.Struct(f) for f in ("<H", "<I", "<i", "<Q", ">d"))


class OpcodeScanner:
    """Walk one pickle from its first opcode to STOP (see the module
    docstring).  ``chunks`` yields the opcode bytes in pieces of any size;
    ``start`` is the stream offset of the first byte (for messages)."""

    def __init__(
        self,
        chunks: Iterable[Any],
        *,
        start: int = 0,
        on_next_buffer: Callable[[int], Any] | None = None,
        _within: OpcodeScanner | None = None,
    ) -> None:
        # An inner pickle (joblib's, for an array of objects) is walked by
        # a scanner of its own over the same bytes, reporting to the same
        # result.
        self._cursor = _Cursor(chunks, start) if _within is None else _within._cursor
        self._depth = 0 if _within is None else _within._depth + 1
        # Told of every NEXT_BUFFER (its index) as it is met, so that a
        # container walk can check a payload record came before it.
        self._on_next_buffer = on_next_buffer
        self.result = ScanResult() if _within is None else _within.result
        # Dicts are followed once the stream names joblib's array wrapper.
        self._track_dicts = _within is not None and _within._track_dicts
        # The stack is one list for the scanner's life (handlers bind its
        # append); marks are stack heights, the fence the innermost one.
        self.stack: list[Any] = []
        self.marks = array("q")
        self._fence = 0
        self._memo: list[Any] = []
        self._sparse_memo: dict[int, Any] = {}
        self._memo_count = 0
        self._opcode_offset = start
        self._handlers = self._dispatch_table()

    # -- state ------------------------------------------------------------------

    def seed(
        self, stack: list[Any], marks: Iterable[int], memo: dict[int, Any], protocol: int
    ) -> None:
        """Start from an unpickler's state (values already converted with
        :func:`as_scan_value`), to scan the rest of a stream it stopped in."""
        self.stack[:] = stack
        self.marks = array("q", marks)
        self._fence = self.marks[-1] if self.marks else 0
        for key, value in memo.items():
            self._memo_put(key, value)
        self.result.protocol = protocol
        # A joblib stream (its wrapper named before): follow dicts, to step
        # over the array data after each wrapper's BUILD.
        self._track_dicts = any(
            _is_joblib_wrapper(value) for value in (*stack, *memo.values())
        )

    @property
    def opcode_offset(self) -> int:
        """Offset of the opcode being handled, in the opcode stream."""
        return self._opcode_offset

    def unused(self) -> int:
        """Bytes of the last chunk that follow STOP."""
        return self._cursor.unused()

    def leftover(self) -> bytes:
        """The bytes of the last chunk that follow STOP."""
        cursor = self._cursor
        return cursor.buf[cursor.pos :]

    # -- driver -------------------------------------------------------------------

    def run(self) -> ScanResult:
        """Walk to STOP; :class:`CorruptDataError` for a malformed stream."""
        cursor = self._cursor
        handlers = self._handlers
        start = cursor.offset
        try:
            while True:
                # The cursor's byte(), inlined: this loop runs per opcode.
                pos = cursor.pos
                if pos < len(cursor.buf):
                    code = cursor.buf[pos]
                    cursor.pos = pos + 1
                else:
                    code = cursor.byte()
                    pos = 0
                self._opcode_offset = cursor.base + pos
                if handlers[code]():
                    break
        except _End:
            raise CorruptDataError(
                f"the pickle stream ends at opcode offset {cursor.offset} before its STOP opcode"
            ) from None
        except (ValueError, UnicodeDecodeError, struct.error) as exc:
            if isinstance(exc, CodecPickleError):
                raise
            raise self._error(f"malformed argument: {exc}") from exc
        self.result.opcode_bytes = cursor.offset - start
        return self.result

    def _error(self, what: str) -> CorruptDataError:
        return CorruptDataError(
            f"the pickle stream is damaged at opcode offset {self._opcode_offset}: {what}"
        )

    # -- stack --------------------------------------------------------------------

    def _pop(self) -> Any:
        stack = self.stack
        if len(stack) <= self._fence:
            raise self._error("stack underflow")
        return stack.pop()

    def _top(self) -> Any:
        stack = self.stack
        if len(stack) <= self._fence:
            raise self._error("stack underflow")
        return stack[-1]

    def _mark(self) -> None:
        self._fence = len(self.stack)
        self.marks.append(self._fence)

    def pop_mark(self) -> list[Any]:
        """Pop the items above the innermost MARK, and the MARK."""
        marks = self.marks
        if not marks:
            raise self._error("no MARK to pop to")
        start = marks.pop()
        self._fence = marks[-1] if marks else 0
        items = self.stack[start:]
        del self.stack[start:]
        return items

    # -- memo -----------------------------------------------------------------------

    def _memo_put(self, key: int, value: Any) -> None:
        if key < 0:
            raise self._error(f"negative memo key {key}")
        memo = self._memo
        if key < len(memo):
            if memo[key] is _UNSET:
                self._memo_count += 1
            memo[key] = value
            return
        if key in self._sparse_memo:
            self._sparse_memo[key] = value
            return
        self._memo_count += 1
        # Dense up to twice the number of entries: a hostile key cannot
        # make the list grow beyond the stream's own size.
        if key < 2 * self._memo_count + 1024:
            memo.extend([_UNSET] * (key - len(memo)))
            memo.append(value)
        else:
            self._sparse_memo[key] = value

    def _memo_get(self, key: int) -> Any:
        memo = self._memo
        if key < 0:
            raise self._error(f"negative memo key {key}")
        value = memo[key] if key < len(memo) else self._sparse_memo.get(key, _UNSET)
        if value is _UNSET:
            raise self._error(f"memo key {key} is not defined")
        return value

    # -- calls ------------------------------------------------------------------------

    def _record_global(self, module: str, name: str, opcode: str) -> _Global:
        if opcode != "getattr" and (self.result.protocol or 0) < 3:
            # Protocol 0-2 pickles spell Python 2's names (__builtin__.set);
            # loads resolve and check them under the Python 3 name, as the
            # stdlib maps them, so they are reported under that name too.
            module, name = python3_name(module, name)
        self.result.globals.append(GlobalRef(module, name, opcode, self._opcode_offset))
        if f"{module}.{name}" in JOBLIB_WRAPPERS:
            self.result.joblib = self._track_dicts = True
        return _Global(module, name)

    def _call(self, func: Any, args: Any) -> Any:
        """What calling ``func(*args)`` leaves on the stack, recording
        getattr-named globals and array constructors on the way."""
        if not isinstance(func, _Global):
            return OPAQUE
        if not isinstance(args, tuple):
            return _Call(func, OPAQUE)
        dotted = func.dotted
        if dotted == "builtins.getattr":
            if len(args) == 2 and isinstance(args[0], _Global) and isinstance(args[1], str):
                owner, attribute = args
                return self._record_global(owner.module, f"{owner.name}.{attribute}", "getattr")
            return OPAQUE
        recognise = ARRAY_CONSTRUCTORS.get(dotted)
        if recognise is not None:
            self._record_array(dotted, recognise(args))
        return _Call(func, args)

    def _record_array(self, constructor: str, found: _ArrayArgs | None) -> None:
        if found is None:
            return
        shape_value, dtype_value, order, data = found
        shape = _shape(shape_value)
        dtype = describe_dtype(dtype_value)
        if shape is None or dtype is None or order not in ("C", "F"):
            return
        if isinstance(data, _Buffer):
            buffer, inband = data.index, None
        elif isinstance(data, _InBand):
            buffer, inband = None, data.size
        else:
            return
        self.result.arrays.append(
            ArrayCall(constructor, shape, dtype, order, buffer, inband, self._opcode_offset)
        )

    def _native_array(self, constructor: str, state: Any) -> None:
        """numpy's own pickle of an array (protocols 0-4): the BUILD state
        of ``_reconstruct`` is (version, shape, dtype, is_fortran, data)."""
        if not (isinstance(state, tuple) and len(state) == 5):
            return
        _, shape_value, dtype_value, fortran, data = state
        shape, dtype = _shape(shape_value), describe_dtype(dtype_value)
        if shape is None or dtype is None or not isinstance(fortran, bool | int):
            return
        # The data is bytes (protocol 3-4), a latin-1 str through
        # _codecs.encode (0-2) or, for objects, a list: its size from the
        # dtype, as the unpickler checks it.
        layout = dtype_layout(dtype_value)
        inband = None
        if isinstance(data, _InBand):
            inband = data.size
        elif layout is not None and not layout[1]:
            inband = _nbytes(shape, layout[0])
        self.result.arrays.append(
            ArrayCall(constructor, shape, dtype, "F" if fortran else "C", None, inband,
                      self._opcode_offset)
        )

    def _joblib_array(self, constructor: str, state: Any) -> None:
        """A joblib array wrapper's BUILD: its array's data follows in the
        stream (raw elements after optional padding, or for arrays of
        objects an inner pickle), which is stepped over here."""
        items = state.items if isinstance(state, _Dict) else {}
        shape = _shape(items.get("shape"))
        order = items.get("order")
        layout = dtype_layout(items.get("dtype"))
        if not isinstance(items.get("shape"), tuple) or shape is None or order not in (
            "C", "F"
        ) or layout is None:
            raise self._error(
                "a joblib array wrapper whose shape, order or dtype the scan cannot read, so "
                "the array data after it cannot be stepped over"
            )
        itemsize, has_objects = layout
        dtype = describe_dtype(items.get("dtype")) or "?"
        cursor = self._cursor
        if has_objects:
            # An inner pickle of the array follows: walked here, it reports
            # the array (numpy's own reduction) and the globals of its items.
            if self._depth >= _INNER_DEPTH:
                raise self._error("joblib inner pickles nested too deeply")
            protocol = self.result.protocol
            OpcodeScanner((), _within=self).run()
            self.result.protocol = protocol
            return
        start = cursor.offset
        if items.get("numpy_array_alignment_bytes") is not None:
            cursor.skip(cursor.byte())  # a padding length, then the padding
        nbytes = _nbytes(shape, itemsize)
        if nbytes is None:
            raise self._error("a joblib array wrapper declares more array data than can exist")
        cursor.skip(nbytes)
        self.result.inline_bytes += cursor.offset - start
        self.result.arrays.append(ArrayCall(constructor, shape, dtype, order, None, nbytes,
                                            self._opcode_offset))

    # -- opcodes ------------------------------------------------------------------------
    # Each handler reads its argument and applies its stack effect; STOP
    # returns True.

    def _dispatch_table(self) -> list[Callable[[], bool | None]]:
        c = self._cursor
        table: dict[int, Callable[[], bool | None]] = {}

        def op(code: bytes) -> Callable[[Callable[[], bool | None]], Callable[[], bool | None]]:
            def register(handler: Callable[[], bool | None]) -> Callable[[], bool | None]:
                table[code[0]] = handler
                return handler

            return register

        push = self.stack.append

        def string(raw: bytes | None, encoding: str) -> Any:
            if raw is None:
                return OPAQUE
            return raw.decode(encoding, "surrogatepass" if encoding == "utf-8" else "strict")

        def counted(size: int, encoding: str | None) -> None:
            """An argument of ``size`` bytes: a string, or in-band bytes."""
            if size < 0:
                raise self._error(f"negative byte count {size}")
            if encoding is None:
                if size <= _SHORT_BYTES:
                    push(_InBand(size, c.take(size)))
                else:
                    c.skip(size)
                    push(_InBand(size))
            elif size > STRING_LIMIT:
                c.skip(size)
                push(OPAQUE)
            else:
                push(string(c.take(size), encoding))

        def text_int(line: bytes | None) -> Any:
            if line is None or len(line) > _INT_DIGITS_LIMIT:
                return OPAQUE
            return int(line)

        @op(b"\x80")  # PROTO
        def _() -> None:
            protocol = c.byte()
            if protocol > HIGHEST_PROTOCOL:
                raise self._error(f"unsupported pickle protocol {protocol}")
            self.result.protocol = protocol

        @op(b"\x95")  # FRAME: only tells a reader how much it may fetch
        def _() -> None:
            c.take(8)

        @op(b".")  # STOP
        def _() -> bool:
            self._pop()
            return True

        table[b"("[0]] = self._mark  # MARK

        @op(b"0")  # POP
        def _() -> None:
            if len(self.stack) > self._fence:
                self.stack.pop()
            else:
                self.pop_mark()

        @op(b"1")  # POP_MARK
        def _() -> None:
            self.pop_mark()

        @op(b"2")  # DUP
        def _() -> None:
            push(self._top())

        # -- constants
        def constant(value: Any) -> Callable[[], None]:
            return lambda: push(value)

        for code, value in ((b"N", None), (b"\x88", True), (b"\x89", False)):
            table[code[0]] = constant(value)

        @op(b"I")  # INT (text; "00"/"01" are the protocol-0 booleans)
        def _() -> None:
            line = c.line(_INT_DIGITS_LIMIT)
            push({b"00": False, b"01": True}[line] if line in (b"00", b"01") else text_int(line))

        @op(b"L")  # LONG (text)
        def _() -> None:
            line = c.line(_INT_DIGITS_LIMIT)
            push(text_int(line[:-1] if line and line.endswith(b"L") else line))

        @op(b"J")  # BININT
        def _() -> None:
            push(_I4.unpack(c.take(4))[0])

        @op(b"K")  # BININT1
        def _() -> None:
            push(c.byte())

        @op(b"M")  # BININT2
        def _() -> None:
            push(_U2.unpack(c.take(2))[0])

        @op(b"\x8a")  # LONG1
        def _() -> None:
            push(int.from_bytes(c.take(c.byte()), "little", signed=True))

        @op(b"\x8b")  # LONG4
        def _() -> None:
            size = _I4.unpack(c.take(4))[0]
            if size < 0:
                raise self._error("LONG4 with a negative byte count")
            if size > STRING_LIMIT:
                c.skip(size)
                push(OPAQUE)
            else:
                push(int.from_bytes(c.take(size), "little", signed=True))

        @op(b"F")  # FLOAT (text)
        def _() -> None:
            line = c.line(STRING_LIMIT)
            if line is not None:
                float(line)
            push(OPAQUE)

        @op(b"G")  # BINFLOAT
        def _() -> None:
            c.take(8)
            push(OPAQUE)

        # -- strings and bytes
        @op(b"S")  # STRING: a quoted, escaped line
        def _() -> None:
            line = c.line(STRING_LIMIT)
            if line is None:
                push(OPAQUE)
                return
            if len(line) < 2 or line[0] != line[-1] or line[:1] not in (b"'", b'"'):
                raise self._error("the STRING opcode argument must be quoted")
            push(string(codecs.escape_decode(line[1:-1])[0], "ascii"))

        @op(b"T")  # BINSTRING
        def _() -> None:
            counted(_I4.unpack(c.take(4))[0], "ascii")

        @op(b"U")  # SHORT_BINSTRING
        def _() -> None:
            counted(c.byte(), "ascii")

        @op(b"V")  # UNICODE (text)
        def _() -> None:
            push(string(c.line(STRING_LIMIT), "raw-unicode-escape"))

        @op(b"X")  # BINUNICODE
        def _() -> None:
            counted(_U4.unpack(c.take(4))[0], "utf-8")

        @op(b"\x8c")  # SHORT_BINUNICODE
        def _() -> None:
            counted(c.byte(), "utf-8")

        @op(b"\x8d")  # BINUNICODE8
        def _() -> None:
            counted(_U8.unpack(c.take(8))[0], "utf-8")

        @op(b"B")  # BINBYTES
        def _() -> None:
            counted(_U4.unpack(c.take(4))[0], None)

        @op(b"C")  # SHORT_BINBYTES
        def _() -> None:
            counted(c.byte(), None)

        @op(b"\x8e")  # BINBYTES8
        def _() -> None:
            counted(_U8.unpack(c.take(8))[0], None)

        @op(b"\x96")  # BYTEARRAY8
        def _() -> None:
            counted(_U8.unpack(c.take(8))[0], None)

        @op(b"\x97")  # NEXT_BUFFER
        def _() -> None:
            if self._on_next_buffer is not None:
                self._on_next_buffer(self.result.buffers)
            push(_Buffer(self.result.buffers))
            self.result.buffers += 1

        @op(b"\x98")  # READONLY_BUFFER
        def _() -> None:
            self._top()

        # -- containers
        for code in (b")", b"]", b"\x8f"):  # EMPTY_TUPLE/LIST/SET
            table[code[0]] = (lambda: push(())) if code == b")" else (lambda: push(OPAQUE))

        @op(b"}")  # EMPTY_DICT
        def _() -> None:
            push(_Dict() if self._track_dicts else OPAQUE)

        @op(b"t")  # TUPLE
        def _() -> None:
            push(tuple(self.pop_mark()))

        for size, code in ((1, b"\x85"), (2, b"\x86"), (3, b"\x87")):  # TUPLE1..3

            def tuple_n(size: int = size) -> None:
                items = [self._pop() for _ in range(size)]
                push(tuple(reversed(items)))

            table[code[0]] = tuple_n

        @op(b"l")  # LIST
        def _() -> None:
            self.pop_mark()
            push(OPAQUE)

        @op(b"\x91")  # FROZENSET
        def _() -> None:
            self.pop_mark()
            push(OPAQUE)

        @op(b"d")  # DICT
        def _() -> None:
            items = self.pop_mark()
            if len(items) % 2:
                raise self._error("odd number of items for DICT")
            push(set_items(_Dict(), items) if self._track_dicts else OPAQUE)

        def set_items(target: Any, items: list[Any]) -> Any:
            if type(target) is _Dict:
                for index in range(0, len(items), 2):
                    target.set(items[index], items[index + 1])
            return target

        @op(b"a")  # APPEND
        def _() -> None:
            self._pop()
            self._top()

        @op(b"e")  # APPENDS
        def _() -> None:
            self.pop_mark()
            self._top()

        @op(b"\x90")  # ADDITEMS
        def _() -> None:
            self.pop_mark()
            self._top()

        @op(b"s")  # SETITEM
        def _() -> None:
            value = self._pop()
            key = self._pop()
            set_items(self._top(), [key, value])

        @op(b"u")  # SETITEMS
        def _() -> None:
            items = self.pop_mark()
            if len(items) % 2:
                raise self._error("odd number of items for SETITEMS")
            set_items(self._top(), items)

        # -- memo
        def put(key: int) -> None:
            self._memo_put(key, self._top())

        @op(b"p")  # PUT
        def _() -> None:
            put(int(c.line(32) or b"x"))

        @op(b"q")  # BINPUT
        def _() -> None:
            put(c.byte())

        @op(b"r")  # LONG_BINPUT
        def _() -> None:
            put(_U4.unpack(c.take(4))[0])

        @op(b"\x94")  # MEMOIZE
        def _() -> None:
            put(self._memo_count)

        @op(b"g")  # GET
        def _() -> None:
            push(self._memo_get(int(c.line(32) or b"x")))

        @op(b"h")  # BINGET
        def _() -> None:
            push(self._memo_get(c.byte()))

        @op(b"j")  # LONG_BINGET
        def _() -> None:
            push(self._memo_get(_U4.unpack(c.take(4))[0]))

        # -- globals and calls
        def name_line() -> str:
            line = c.line(STRING_LIMIT)
            if line is None:
                raise self._error(f"a global name longer than {STRING_LIMIT} bytes")
            return line.decode("utf-8")

        @op(b"c")  # GLOBAL
        def _() -> None:
            module = name_line()
            push(self._record_global(module, name_line(), "GLOBAL"))

        @op(b"\x93")  # STACK_GLOBAL
        def _() -> None:
            name = self._pop()
            module = self._pop()
            if isinstance(module, str) and isinstance(name, str):
                push(self._record_global(module, name, "STACK_GLOBAL"))
            else:
                self.result.unresolved.append(("STACK_GLOBAL", self._opcode_offset))
                push(OPAQUE)

        @op(b"i")  # INST: a GLOBAL and a call in one
        def _() -> None:
            module = name_line()
            func = self._record_global(module, name_line(), "INST")
            push(self._call(func, tuple(self.pop_mark())))

        @op(b"o")  # OBJ
        def _() -> None:
            items = self.pop_mark()
            if not items:
                raise self._error("OBJ without a class")
            push(self._call(items[0], tuple(items[1:])))

        @op(b"R")  # REDUCE
        def _() -> None:
            args = self._pop()
            func = self._pop()
            push(self._call(func, args))

        @op(b"\x81")  # NEWOBJ: cls.__new__(cls, *args), not a call of cls
        def _() -> None:
            args = self._pop()
            cls = self._pop()
            push(_Call(cls, args) if isinstance(cls, _Global) else OPAQUE)

        @op(b"\x92")  # NEWOBJ_EX
        def _() -> None:
            self._pop()
            args = self._pop()
            cls = self._pop()
            push(_Call(cls, args) if isinstance(cls, _Global) else OPAQUE)

        @op(b"b")  # BUILD
        def _() -> None:
            state = self._pop()
            target = self._top()
            if isinstance(target, _Call) and target.state is None:
                target.state = state
                dotted = target.func.dotted
                if dotted in JOBLIB_WRAPPERS:
                    self._joblib_array(dotted, state)
                elif dotted in _NATIVE_RECONSTRUCT:
                    self._native_array(dotted, state)

        def extension(code: int) -> None:
            if code <= 0:
                raise self._error(f"extension code {code} is not positive")
            self.result.extensions.append((code, self._opcode_offset))
            push(OPAQUE)

        table[b"\x82"[0]] = lambda: extension(c.byte())  # EXT1
        table[b"\x83"[0]] = lambda: extension(_U2.unpack(c.take(2))[0])  # EXT2
        table[b"\x84"[0]] = lambda: extension(_I4.unpack(c.take(4))[0])  # EXT4

        def persistent() -> None:
            raise self._error("a persistent ID, which codecpickle streams never hold")

        table[b"P"[0]] = persistent  # PERSID
        table[b"Q"[0]] = persistent  # BINPERSID

        def invalid(code: int) -> Callable[[], bool | None]:
            def handler() -> None:
                raise self._error(f"invalid opcode {bytes([code])!r}")

            return handler

        return [table.get(code) or invalid(code) for code in range(256)]


def scan_opcodes(chunks: Iterable[Any] | bytes, *, start: int = 0) -> ScanResult:
    """Walk one pickle (bytes, or an iterable of byte chunks) to its STOP
    opcode and report what it names; see :class:`OpcodeScanner`."""
    if isinstance(chunks, bytes | bytearray | memoryview):
        chunks = (chunks,)
    return OpcodeScanner(chunks, start=start).run()


def as_scan_value(obj: Any, depth: int = 0) -> Any:
    """An unpickler's object as the scan would have seen it: strings, ints,
    booleans, None and (shallow) tuples as themselves, classes and
    functions as the globals they are, and what a joblib stream's array
    data is stepped over with (small str-keyed dicts, dtypes, joblib's
    array wrapper); anything else opaque."""
    if obj is None or isinstance(obj, bool):
        return obj
    if type(obj) is str:
        return obj if len(obj) <= STRING_LIMIT else OPAQUE
    if type(obj) is int:
        return obj
    if type(obj) is tuple and depth < 4 and len(obj) <= _MAX_NDIM:
        return tuple(as_scan_value(item, depth + 1) for item in obj)
    if type(obj) is dict and depth < 4 and len(obj) <= _DICT_ITEMS:
        scanned = _Dict()
        for key, value in obj.items():
            scanned.set(key, as_scan_value(value, depth + 1))
        return scanned
    if obj is _joblib_stub():
        return _Global(*_JOBLIB_WRAPPER)
    if type(obj) is _joblib_stub():
        return _Call(_Global(*_JOBLIB_WRAPPER), ())
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(obj, numpy.dtype):
        _, args, state = obj.__reduce__()
        call = _Call(_Global("numpy", "dtype"), as_scan_value(args, depth + 1))
        call.state = as_scan_value(state, depth + 1)
        return call
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if (isinstance(obj, type) or callable(obj)) and isinstance(module, str) and isinstance(
        qualname, str
    ):
        return _Global(module, qualname)
    return OPAQUE


_JOBLIB_WRAPPER = ("joblib.numpy_pickle", "NumpyArrayWrapper")


def _joblib_stub() -> Any:
    """The stand-in foreign loads resolve joblib's wrapper to, if loaded."""
    module = sys.modules.get("codecpickle._foreign._joblib")
    return None if module is None else module.WrapperStub


def global_value(module: str, name: str) -> Any:
    """The scan's value for the global ``module.name`` on the stack."""
    return _Global(module, name)


def iter_chunks(read: Callable[[int], bytes], size: int = 1 << 16) -> Iterator[bytes]:
    """Chunks from a ``read(n)`` function until it returns nothing."""
    while True:
        chunk = read(size)
        if not chunk:
            return
        yield chunk
