"""How a restricted load calls each admitted global: the safe profile.

A restricted load resolves names through the allowlist (``_safe.py``); this
module decides what *calling* each admitted object may do.  Every callable
of ``SAFE_GLOBALS`` has a policy here that checks the types and ranges of
its arguments and then builds the result through a public constructor
(numpy data through :mod:`codecpickle._construct` and the
:mod:`codecpickle._native` translation, never through numpy's own
unpickling code).  Objects without a policy are values only: a stream may
name them (a ``defaultdict``'s factory, the ``numpy.float64`` class) but
calling them is refused (the numpy scalar and dtype classes, ``numpy.matrix``,
``numpy.ma.MaskedArray``, ``Ellipsis``).  Globals a user adds with ``allow=`` are called
as they are: the user vouches for them.

Policies take the unpickler (for its per-load state: the dtype translator,
budgets, pending objects) and the positional arguments.
"""

from __future__ import annotations

import collections
import datetime
import decimal
import zoneinfo
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _construct as construct
from . import _construct_pandas
from ._budget import BYTES_PER_UNIT, ELEMENTS_PER_UNIT, text_int_cost
from ._descr import refuse

if TYPE_CHECKING:
    from ._restricted import RestrictedUnpickler

__all__ = ["BUILDERS", "POLICIES", "PendingArray", "PendingDtype", "Policy"]

Policy = Callable[["RestrictedUnpickler", tuple[Any, ...]], Any]

# Encodings decoded by CPython's built-in fast paths: naming them imports
# nothing.  Error handlers likewise are the built-in ones.
_ENCODINGS = frozenset(("utf-8", "utf8", "latin-1", "latin1", "iso-8859-1", "ascii"))
_ERRORS = frozenset(("strict", "surrogatepass", "surrogateescape", "replace", "ignore"))
# Text a number parser reads: genuine pickles never spell numbers as long text.
_MAX_NUMBER_TEXT = 5_000
# The containers a stream builds with its own opcodes: building from them
# costs time in proportion to their size, charged on every call (a stream
# can name one it built once many times).
_MATERIALIZED = (list, tuple, dict, set, frozenset, str, bytes, bytearray)
# Constructors that hash what they are built from.
_HASHING = frozenset((dict, set, frozenset, collections.OrderedDict, collections.Counter))
# Work units of reading a time zone file (about 70 µs; 140 µs for a
# missing one): zoneinfo caches only what ZoneInfo(key) asked for.
_ZONE_COST = 600
_FACTORIES = frozenset(
    (
        list,
        dict,
        set,
        frozenset,
        tuple,
        int,
        float,
        complex,
        str,
        bytes,
        bool,
        bytearray,
        collections.OrderedDict,
        collections.Counter,
        collections.deque,
    )
)


class PendingDtype:
    """``numpy.dtype(type, align, copy)`` of numpy's own pickles: a dtype
    waiting for its BUILD state, which the translator then builds from."""

    __slots__ = ("align", "type_name")

    def __init__(self, type_name: str, align: bool) -> None:
        self.type_name = type_name
        self.align = align


class PendingArray:
    """``multiarray._reconstruct`` (or ``ma.core._mareconstruct``) of numpy's
    own pickles: an empty array waiting for its BUILD state."""

    __slots__ = ("cls", "masked")

    def __init__(self, cls: type, masked: bool) -> None:
        self.cls = cls
        self.masked = masked


def _count(args: tuple[Any, ...], low: int, high: int, what: str) -> None:
    if not low <= len(args) <= high:
        raise refuse(f"calls {what} with {len(args)} arguments")


def _require(condition: bool, what: str) -> None:
    if not condition:
        raise refuse(what)


# -- codecpickle's own constructors -------------------------------------------------------


def _construct_dtype(load: RestrictedUnpickler, args: tuple[Any, ...]) -> np.dtype:
    _count(args, 1, 1, "dtype")
    return load.translator.dtype_from_descr(args[0])


def _construct_array(load: RestrictedUnpickler, args: tuple[Any, ...]) -> np.ndarray:
    _count(args, 4, 4, "array")
    shape, descr, order, data = args
    dtype = load.translator.dtype_from_descr(descr)
    result = load.translator.array(shape, dtype, order, data, max_items=load.max_items())
    if data is None:
        load.unfilled[id(result)] = result
    return result


def _construct_fill(load: RestrictedUnpickler, args: tuple[Any, ...]) -> None:
    _count(args, 2, 2, "fill")
    target, items = args
    # Only once, and only an array this load made empty for the purpose:
    # filling is the one change a stream may make to an existing object.
    _require(load.unfilled.pop(id(target), None) is target, "fills an array it did not just make")
    load.spend(1 + target.size // ELEMENTS_PER_UNIT)
    construct.fill(target, items)


def _construct_scalar(load: RestrictedUnpickler, args: tuple[Any, ...]) -> Any:
    _count(args, 2, 2, "scalar")
    dtype = load.translator.dtype_from_descr(args[0])
    return load.translator.array((), dtype, "C", args[1], max_items=load.max_items())[()]


def _construct_masked(load: RestrictedUnpickler, args: tuple[Any, ...]) -> np.ma.MaskedArray:
    _count(args, 4, 4, "masked")
    _spend_masked(load, args[0])
    return construct.masked(*args)


def _spend_masked(load: RestrictedUnpickler, data: Any) -> None:
    # MaskedArray reads the whole mask (about a nanosecond an element).
    load.spend(1 + (data.size // BYTES_PER_UNIT if type(data) is np.ndarray else 0))


def _construct_matrix(load: RestrictedUnpickler, args: tuple[Any, ...]) -> np.matrix:
    _count(args, 1, 1, "matrix")
    return construct.matrix(args[0])


# -- numpy's own reductions, translated ------------------------------------------------


def _numpy_dtype(load: RestrictedUnpickler, args: tuple[Any, ...]) -> Any:
    if len(args) == 3:
        type_name, align, copy = args
        _require(
            type(type_name) is str and type(align) is bool and type(copy) is bool,
            "gives numpy.dtype malformed arguments",
        )
        load.pending += 1
        return PendingDtype(type_name, align)
    _count(args, 1, 1, "numpy.dtype")
    return load.translator.simple_dtype(args[0])


def _numpy_reconstruct(load: RestrictedUnpickler, args: tuple[Any, ...]) -> PendingArray:
    _count(args, 3, 3, "multiarray._reconstruct")
    cls, shape, typecode = args
    _require(shape in ((0,), 0) and typecode in (b"b", "b"), "starts an array rebuild oddly")
    load.pending += 1
    return PendingArray(_array_class(load, cls), masked=False)


def _numpy_mareconstruct(load: RestrictedUnpickler, args: tuple[Any, ...]) -> PendingArray:
    _count(args, 4, 4, "ma.core._mareconstruct")
    cls, base, shape, typecode = args
    _require(
        cls is np.ma.MaskedArray
        and base is np.ndarray
        and shape in ((0,), 0)
        and typecode in (b"b", "b"),
        "starts a masked array rebuild oddly",
    )
    load.pending += 1
    return PendingArray(np.ma.MaskedArray, masked=True)


def _array_class(load: RestrictedUnpickler, cls: Any) -> type:
    if cls is np.ndarray or cls is np.matrix:
        return cls
    _require(
        isinstance(cls, type)
        and issubclass(cls, np.ndarray)
        and load.is_user_class(cls)
        and cls.__setstate__ is np.ndarray.__setstate__,
        "rebuilds an array of a class that is not admitted",
    )
    return cls


def _numpy_scalar(load: RestrictedUnpickler, args: tuple[Any, ...]) -> Any:
    _count(args, 1, 2, "multiarray.scalar")
    return load.translator.scalar(*args)


def _numpy_frombuffer(load: RestrictedUnpickler, args: tuple[Any, ...]) -> np.ndarray:
    _count(args, 4, 4, "numeric._frombuffer")
    data, dtype, shape, order = args
    if type(data) is np.ndarray:  # an in-band PickleBuffer of a small array
        data = memoryview(data)
    return load.translator.array(shape, dtype, order, data, max_items=load.max_items())


def _numpy_ndarray(load: RestrictedUnpickler, args: tuple[Any, ...]) -> np.ndarray:
    # codecpickle format 1: numpy.ndarray(shape, dtype, buffer, 0, None, order)
    _count(args, 6, 6, "numpy.ndarray")
    shape, dtype, data, offset, strides, order = args
    _require(offset == 0 and type(offset) is int and strides is None, "offsets an array")
    if type(shape) is int:
        shape = (shape,)
    return load.translator.array(shape, dtype, order, data, max_items=load.max_items())


def _stringdtype_kwargs(load: RestrictedUnpickler, args: tuple[Any, ...]) -> np.dtype:
    _count(args, 1, 2, "_convert_to_stringdtype_kwargs")
    return load.translator.string_dtype(args[0], args[1:])


def _masked_constant(load: RestrictedUnpickler, args: tuple[Any, ...]) -> Any:
    _count(args, 0, 0, "MaskedConstant")
    return np.ma.masked


def _view_as(load: RestrictedUnpickler, args: tuple[Any, ...]) -> np.ndarray:
    # codecpickle format 1: ndarray subclasses as views
    _count(args, 2, 2, "view_as")
    data, cls = args
    if cls is np.matrix:
        return construct.matrix(data)
    _require(type(data) is np.ndarray, "views something other than an array")
    return data.view(_array_class(load, cls))


def _masked_array(load: RestrictedUnpickler, args: tuple[Any, ...]) -> np.ma.MaskedArray:
    # codecpickle format 1: masked_array(cls, data, mask, fill_value, hard_mask)
    _count(args, 5, 5, "masked_array")
    _require(args[0] is np.ma.MaskedArray, "builds a masked array of another class")
    _spend_masked(load, args[1])
    return construct.masked(*args[1:])


# -- builtins ---------------------------------------------------------------------------


def _number_text(value: Any) -> bool:
    return type(value) in (str, bytes) and len(value) <= _MAX_NUMBER_TEXT


def _builtin_bool(load: RestrictedUnpickler, args: tuple[Any, ...]) -> bool:
    _count(args, 0, 1, "bool")
    _require(all(type(a) in (bool, int) for a in args), "calls bool on a non-number")
    return bool(*args)


def _builtin_int(load: RestrictedUnpickler, args: tuple[Any, ...]) -> int:
    _count(args, 0, 2, "int")
    if len(args) == 2:
        _require(
            _number_text(args[0])
            and type(args[1]) is int
            and args[1] in range(37)
            and args[1] != 1,
            "calls int with a malformed base",
        )
    else:
        _require(
            all(type(a) in (bool, int) or _number_text(a) or type(a) is float for a in args),
            "calls int on something other than a number or its text",
        )
    if args and type(args[0]) in (str, bytes):
        load.spend(text_int_cost(len(args[0])))
    result = int(*args)
    load.check_int(result)
    return result


def _builtin_float(load: RestrictedUnpickler, args: tuple[Any, ...]) -> float:
    _count(args, 0, 1, "float")
    _require(
        all(type(a) in (bool, int, float) or _number_text(a) for a in args),
        "calls float on something other than a number or its text",
    )
    if args and type(args[0]) in (str, bytes):
        load.spend(1 + len(args[0]) // BYTES_PER_UNIT)
    return float(*args)


def _builtin_complex(load: RestrictedUnpickler, args: tuple[Any, ...]) -> complex:
    _count(args, 0, 2, "complex")
    _require(all(type(a) in (bool, int, float) for a in args), "calls complex on a non-number")
    return complex(*args)


def _decode_args(args: tuple[Any, ...], what: str) -> None:
    if len(args) >= 2:
        _require(
            type(args[1]) is str and args[1].lower() in _ENCODINGS,
            f"calls {what} with an encoding other than utf-8, latin-1 or ascii",
        )
    if len(args) == 3:
        _require(type(args[2]) is str and args[2] in _ERRORS, f"calls {what} with odd errors")


def _builtin_str(load: RestrictedUnpickler, args: tuple[Any, ...]) -> str:
    _count(args, 0, 3, "str")
    if len(args) == 1:
        _require(type(args[0]) is str, "converts something other than text to str")
    elif args:
        # Decoding reads the buffer's raw memory: only bytes objects.
        _require(type(args[0]) in (bytes, bytearray), "decodes something other than bytes")
        _decode_args(args, "str")
        load.spend(len(args[0]) // BYTES_PER_UNIT)
    return str(*args)


def _bytes_like(load: RestrictedUnpickler, args: tuple[Any, ...], cls: type) -> Any:
    name = cls.__name__
    _count(args, 0, 3, name)
    if not args:
        return cls()
    source = args[0]
    if type(source) is str:
        _require(len(args) >= 2, f"calls {name} on text without an encoding")
        _decode_args(args, name)
    else:
        _require(len(args) == 1, f"calls {name} with an encoding for non-text")
        # Not bytes(n): n zero bytes from a few bytes of stream, which no
        # genuine pickle asks for.
        if type(source) in (list, tuple):
            _require(all(type(b) is int for b in source), f"calls {name} on non-byte items")
        else:
            _require(type(source) in (bytes, bytearray), f"calls {name} on {type(source).__name__}")
    # Copied, encoded, or (from a list of ints) converted one by one.
    per_unit = ELEMENTS_PER_UNIT if type(source) in (list, tuple) else BYTES_PER_UNIT
    load.spend(len(source) // per_unit)
    return cls(*args)


def _builtin_bytes(load: RestrictedUnpickler, args: tuple[Any, ...]) -> bytes:
    result: bytes = _bytes_like(load, args, bytes)
    return result


def _builtin_bytearray(load: RestrictedUnpickler, args: tuple[Any, ...]) -> bytearray:
    result: bytearray = _bytes_like(load, args, bytearray)
    return result


def _from_materialized(cls: type) -> Policy:
    def build(load: RestrictedUnpickler, args: tuple[Any, ...]) -> Any:
        _count(args, 0, 1, cls.__name__)
        _require(
            all(type(a) in _MATERIALIZED for a in args),
            f"builds a {cls.__name__} from something other than a built container",
        )
        if args:
            source = args[0]
            load.spend(1 + len(source) // _per_unit(source))
            if cls in _HASHING:
                load.keys.check(_keys_of(cls, source))
        result = cls(*args)
        if cls is tuple and tuple in map(type, result):
            load.keys.note_tuple(result)
        return result

    return build


def _per_unit(source: Any) -> int:
    # Bytes and text are copied or split at memory speed; items one by one.
    return BYTES_PER_UNIT if type(source) in (str, bytes, bytearray) else 1


def _keys_of(cls: type, source: Any) -> list[Any]:
    """What ``cls(source)`` hashes: the keys of a mapping or of key-value
    pairs for the dict types, the items for sets (and Counter)."""
    if type(source) in (str, bytes, bytearray):
        return []  # characters and small ints
    if isinstance(source, dict):
        return list(source)
    if cls in (dict, collections.OrderedDict):
        return [pair[0] for pair in source if type(pair) in (tuple, list) and len(pair) == 2]
    return list(source)


def _builtin_range(load: RestrictedUnpickler, args: tuple[Any, ...]) -> range:
    _count(args, 1, 3, "range")
    _require(all(type(a) is int for a in args), "calls range on non-integers")
    result = range(*args)
    # Iterating it (list(), numpy.asarray) takes time in proportion to its
    # length, which the input does not pay for.
    _require(len(result) <= load.max_items(), "builds a range longer than the input could hold")
    return result


def _builtin_slice(load: RestrictedUnpickler, args: tuple[Any, ...]) -> slice:
    _count(args, 1, 3, "slice")
    _require(all(a is None or type(a) in (int, bool) for a in args), "calls slice on non-integers")
    return slice(*args)


def _checked_getattr(load: RestrictedUnpickler, args: tuple[Any, ...]) -> Any:
    _count(args, 2, 2, "getattr")
    return load.restricted_getattr(*args)


# -- datetime, zoneinfo, decimal ---------------------------------------------------------


def _ints(args: tuple[Any, ...], low: int, high: int, what: str) -> None:
    _count(args, low, high, what)
    _require(all(type(a) is int for a in args), f"calls {what} with non-integers")


def _tzinfo(value: Any) -> Any:
    _require(
        value is None or type(value) in (datetime.timezone, zoneinfo.ZoneInfo),
        "gives a time a tzinfo that is not a time zone",
    )
    return value


def _datetime_date(load: RestrictedUnpickler, args: tuple[Any, ...]) -> datetime.date:
    if args and type(args[0]) is bytes:
        # The pickled form: CPython checks only the month byte of it, so the
        # fields are read here and given to the checking constructor.
        _count(args, 1, 1, "date")
        state = args[0]
        _require(len(state) == 4, "gives a date a malformed state")
        return datetime.date(state[0] * 256 + state[1], state[2], state[3])
    _ints(args, 3, 3, "date")
    return datetime.date(*args)


def _datetime_datetime(load: RestrictedUnpickler, args: tuple[Any, ...]) -> datetime.datetime:
    if args and type(args[0]) is bytes:
        _count(args, 1, 2, "datetime")
        state = args[0]
        _require(len(state) == 10, "gives a datetime a malformed state")
        fold, month = divmod(state[2], 128)
        return datetime.datetime(
            state[0] * 256 + state[1],
            month,
            state[3],
            state[4],
            state[5],
            state[6],
            (state[7] << 16) | (state[8] << 8) | state[9],
            tzinfo=_tzinfo(args[1] if len(args) == 2 else None),
            fold=fold,
        )
    _ints(args, 3, 7, "datetime")
    return datetime.datetime(*args)


def _datetime_time(load: RestrictedUnpickler, args: tuple[Any, ...]) -> datetime.time:
    if args and type(args[0]) is bytes:
        _count(args, 1, 2, "time")
        state = args[0]
        _require(len(state) == 6, "gives a time a malformed state")
        fold, hour = divmod(state[0], 128)
        return datetime.time(
            hour,
            state[1],
            state[2],
            (state[3] << 16) | (state[4] << 8) | state[5],
            tzinfo=_tzinfo(args[1] if len(args) == 2 else None),
            fold=fold,
        )
    _ints(args, 0, 4, "time")
    return datetime.time(*args)


def _datetime_timedelta(load: RestrictedUnpickler, args: tuple[Any, ...]) -> datetime.timedelta:
    _ints(args, 0, 3, "timedelta")
    return datetime.timedelta(*args)


def _datetime_timezone(load: RestrictedUnpickler, args: tuple[Any, ...]) -> datetime.timezone:
    _count(args, 1, 2, "timezone")
    _require(
        type(args[0]) is datetime.timedelta and (len(args) == 1 or type(args[1]) is str),
        "calls timezone with malformed arguments",
    )
    return datetime.timezone(*args)


def _zone_key(key: Any) -> None:
    _require(type(key) is str and 0 < len(key) <= 255, "names a time zone oddly")


def _zoneinfo_unpickle(load: RestrictedUnpickler, args: tuple[Any, ...]) -> zoneinfo.ZoneInfo:
    _count(args, 2, 2, "ZoneInfo._unpickle")
    _zone_key(args[0])
    _require(type(args[1]) in (int, bool), "gives ZoneInfo._unpickle malformed arguments")
    load.spend(_ZONE_COST)
    return zoneinfo.ZoneInfo._unpickle(args[0], int(bool(args[1])))  # type: ignore[attr-defined]


def _zoneinfo(load: RestrictedUnpickler, args: tuple[Any, ...]) -> zoneinfo.ZoneInfo:
    _count(args, 1, 1, "ZoneInfo")
    _zone_key(args[0])
    load.spend(_ZONE_COST)
    return zoneinfo.ZoneInfo(args[0])


def _decimal(load: RestrictedUnpickler, args: tuple[Any, ...]) -> decimal.Decimal:
    _count(args, 0, 1, "Decimal")
    if args and type(args[0]) is int:
        load.check_int(args[0])  # conversion is quadratic in the digits
        # About twice the cost of parsing as many digits (4,300: 430 µs).
        load.spend(2 * text_int_cost(args[0].bit_length() * 30103 // 100_000))
    else:
        _require(
            all(type(a) is str and len(a) <= _MAX_NUMBER_TEXT for a in args),
            "calls Decimal on something other than short text or an integer",
        )
        if args:
            load.spend(1 + len(args[0]) // 32)  # about 8 ns a character
    return decimal.Decimal(*args)


def _codecs_encode(load: RestrictedUnpickler, args: tuple[Any, ...]) -> bytes:
    # How protocol 0-2 pickles spell bytes: _codecs.encode(text, "latin1").
    _count(args, 2, 2, "_codecs.encode")
    _require(
        type(args[0]) is str and args[1] in ("latin1", "latin-1"),
        "calls _codecs.encode other than for latin-1 text",
    )
    load.spend(len(args[0]) // BYTES_PER_UNIT)
    return args[0].encode("latin-1")


# -- collections --------------------------------------------------------------------


def _ordered_dict(load: RestrictedUnpickler, args: tuple[Any, ...]) -> Any:
    return _from_materialized(collections.OrderedDict)(load, args)


def _counter(load: RestrictedUnpickler, args: tuple[Any, ...]) -> Any:
    return _from_materialized(collections.Counter)(load, args)


def _deque(load: RestrictedUnpickler, args: tuple[Any, ...]) -> collections.deque[Any]:
    _count(args, 0, 2, "deque")
    _require(not args or type(args[0]) in _MATERIALIZED, "builds a deque from an odd iterable")
    _require(
        len(args) < 2 or args[1] is None or (type(args[1]) is int and args[1] >= 0),
        "gives a deque a malformed maxlen",
    )
    if args:
        load.spend(1 + len(args[0]) // _per_unit(args[0]))
    return collections.deque(*args)


def _defaultdict(load: RestrictedUnpickler, args: tuple[Any, ...]) -> Any:
    _count(args, 0, 1, "defaultdict")
    _require(
        not args or args[0] is None or (isinstance(args[0], type) and args[0] in _FACTORIES),
        "gives a defaultdict a factory other than a builtin container or number type",
    )
    return collections.defaultdict(*args)


def _chain_map(load: RestrictedUnpickler, args: tuple[Any, ...]) -> collections.ChainMap[Any, Any]:
    # Pickled as copyreg.__newobj__: NEWOBJ(ChainMap) then a BUILD of its maps.
    _count(args, 0, 0, "ChainMap")
    return collections.ChainMap()


def build_chain_map(target: collections.ChainMap[Any, Any], state: Any) -> None:
    """The BUILD a ChainMap's pickle ends with: its list of maps."""
    _require(
        type(state) is dict
        and set(state) == {"maps"}
        and type(state["maps"]) is list
        and all(isinstance(m, dict) for m in state["maps"]),
        "gives a ChainMap a malformed state",
    )
    target.maps = list(state["maps"])


#: Policy for every callable of SAFE_GLOBALS, by dotted name.
POLICIES: dict[str, Policy] = {
    "codecpickle._construct.dtype": _construct_dtype,
    "codecpickle._construct.array": _construct_array,
    "codecpickle._construct.fill": _construct_fill,
    "codecpickle._construct.scalar": _construct_scalar,
    "codecpickle._construct.masked": _construct_masked,
    "codecpickle._construct.matrix": _construct_matrix,
    "codecpickle._reconstruct.view_as": _view_as,
    "codecpickle._reconstruct.masked_array": _masked_array,
    "numpy.dtype": _numpy_dtype,
    "numpy.ndarray": _numpy_ndarray,
    "numpy.ma.core.MaskedConstant": _masked_constant,
    "numpy.ma.core._mareconstruct": _numpy_mareconstruct,
    "numpy._core._internal._convert_to_stringdtype_kwargs": _stringdtype_kwargs,
    **{
        f"numpy.{core}.{name}": policy
        for core in ("core", "_core")
        for name, policy in (
            ("multiarray._reconstruct", _numpy_reconstruct),
            ("multiarray.scalar", _numpy_scalar),
            ("numeric._frombuffer", _numpy_frombuffer),
        )
    },
    "builtins.bool": _builtin_bool,
    "builtins.int": _builtin_int,
    "builtins.float": _builtin_float,
    "builtins.complex": _builtin_complex,
    "builtins.str": _builtin_str,
    "builtins.bytes": _builtin_bytes,
    "builtins.bytearray": _builtin_bytearray,
    "builtins.list": _from_materialized(list),
    "builtins.tuple": _from_materialized(tuple),
    "builtins.dict": _from_materialized(dict),
    "builtins.set": _from_materialized(set),
    "builtins.frozenset": _from_materialized(frozenset),
    "builtins.range": _builtin_range,
    "builtins.slice": _builtin_slice,
    "builtins.getattr": _checked_getattr,
    "_codecs.encode": _codecs_encode,
    "datetime.date": _datetime_date,
    "datetime.datetime": _datetime_datetime,
    "datetime.time": _datetime_time,
    "datetime.timedelta": _datetime_timedelta,
    "datetime.timezone": _datetime_timezone,
    "zoneinfo.ZoneInfo": _zoneinfo,
    "zoneinfo.ZoneInfo._unpickle": _zoneinfo_unpickle,
    "decimal.Decimal": _decimal,
    "collections.OrderedDict": _ordered_dict,
    "collections.Counter": _counter,
    "collections.deque": _deque,
    "collections.defaultdict": _defaultdict,
    "collections.ChainMap": _chain_map,
}


# Work units of each pandas constructor call (pandas takes 3 to 300 µs per
# call before any data), and per element of its arrays; categories are
# hashed (keys checked), strings checked one by one in Python.
_PANDAS_COSTS = {
    "categorical": (100, ELEMENTS_PER_UNIT),
    "datetime_index": (1_200, ELEMENTS_PER_UNIT),
    "datetime_tz": (300, ELEMENTS_PER_UNIT),
    "frame": (600, ELEMENTS_PER_UNIT),
    "index": (50, ELEMENTS_PER_UNIT),
    "nullable": (20, ELEMENTS_PER_UNIT),
    "range_index": (20, ELEMENTS_PER_UNIT),
    "series": (100, ELEMENTS_PER_UNIT),
    "strings": (50, 1),
}


def _pandas_constructor(name: str) -> Policy:
    func = getattr(_construct_pandas, name)
    arity = func.__code__.co_argcount
    fixed, per_unit = _PANDAS_COSTS[name]

    def build(load: RestrictedUnpickler, args: tuple[Any, ...]) -> Any:
        _count(args, arity, arity, name)
        load.spend(fixed + _elements(args) // per_unit)
        if name == "categorical":
            categories = args[1]
            values = getattr(categories, "_values", None)
            if type(values) is np.ndarray and values.dtype == object:
                load.keys.check(values.tolist())  # pandas hashes them to check them
        return func(*args)

    return build


def _elements(args: tuple[Any, ...]) -> int:
    """The elements of the arrays (or lists of arrays) among ``args``."""
    count = 0
    for arg in args:
        for item in arg if type(arg) is list else (arg,):
            size = getattr(item, "size", None)  # numpy and pandas arrays, indexes
            if type(size) is int:
                count += size
    return count


POLICIES.update(
    {
        f"codecpickle._construct_pandas.{name}": _pandas_constructor(name)
        for name in _construct_pandas.__all__
    }
)

#: BUILD handlers for the admitted classes whose pickles end with one.
BUILDERS: dict[type, Callable[[Any, Any], None]] = {collections.ChainMap: build_chain_map}
