"""Translation of numpy's own pickles into checked constructions.

Plain ``pickle.dump`` of numpy data (protocols 2 to 5), joblib files and
codecpickle's format-1 files rebuild arrays through numpy's internal
reductions: ``numpy.dtype(type, align, copy)`` followed by a BUILD state,
``multiarray._reconstruct`` followed by an array state, ``multiarray.scalar``,
``numeric._frombuffer``.  numpy runs those on trust (its ``__setstate__``
methods crash on crafted states), so a restricted load never lets numpy see
them.  :class:`Translator` reads the reduce arguments and states itself and
builds the same objects from checked parts, with the constructors new files
use (:mod:`codecpickle._construct`); anything else is refused with
:class:`~codecpickle.CorruptDataError`.

This is an internal API for readers of foreign formats as well::

    translator = Translator(max_bytes=limit)
    dtype = translator.dtype_from_state("V16", False, state)   # a dtype BUILD state
    dtype = translator.dtype_from_descr(("struct", ...))       # a codecpickle description
    array = translator.array(shape, dtype, "C", data)          # bytes-like or list
    check_object_arrays(translator.object_arrays)               # when the load ends
    array = translator.array_from_state(np.ndarray, state)      # ndarray BUILD state
    value = translator.scalar(dtype, data)                      # multiarray.scalar args

Every dtype a translator returns is *known* to it: only known dtypes are
accepted as parts of others or as array dtypes, so each was checked, and
the tree-size budget of :mod:`codecpickle._descr` is kept by adding the
sizes of known parts.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np

from . import _construct as construct
from ._budget import ARRAY_COST, BYTES_PER_UNIT, ELEMENTS_PER_UNIT, STATE_COST
from ._cycles import holds_objects
from ._descr import DescrParser, plain_dtype, refuse, string_dtype
from ._descr import struct_dtype as _struct_dtype
from ._descr import subarray_dtype as _subarray_dtype
from ._descr import with_metadata as _with_metadata

__all__ = ["Translator"]

# numpy's own type strings in dtype reductions: 'f8', 'M8', 'V16', 'U3', 'O8'.
_NATIVE_TYPE = re.compile(r"([biufcmMOSUV])(\d{1,10})")
# Simple spellings a stream may give numpy.dtype directly: 'f8', '<i4', 'M8[ns]'.
_SIMPLE_SPEC = re.compile(r"[<>|=]?[a-zA-Z]{1,2}\d{0,10}(\[\d{0,10}[a-zA-Z]{1,2}\])?")
_ALIGNED_STRUCT = 0x80  # numpy's dtype flag for align=True structs
_NATIVE_ORDER = "<" if np.little_endian else ">"
_BYTE_ORDERS = frozenset("<>|=")
_DATETIME_UNITS = frozenset(
    ("Y", "M", "W", "D", "h", "m", "s", "ms", "us", "ns", "ps", "fs", "as", "generic")
)


class Translator:
    """Builds numpy objects from the parts numpy's own pickles hold, checked.

    One translator serves one load (it remembers the dtypes it built).
    ``max_bytes`` bounds arrays whose memory the input does not already
    hold (object arrays made before they are filled).
    """

    def __init__(
        self,
        max_bytes: int | None = None,
        parser: DescrParser | None = None,
        spend: Callable[[int], None] | None = None,
    ) -> None:
        self.max_bytes = max_bytes
        # Charges the work a construction does beyond what its input paid
        # for (``_budget.py``): elements set one by one, bytes copied.
        self.spend = spend if spend is not None else _free
        self.parser = parser if parser is not None else DescrParser()
        # id(dtype) -> (dtype, tree nodes, depth)
        self._known: dict[int, tuple[np.dtype, int, int]] = {}
        #: Every array of Python objects built, for the cycle check that
        #: ends a restricted load (``_cycles.py``).
        self.object_arrays: list[np.ndarray] = []

    # -- dtypes ----------------------------------------------------------------------

    def known(self, dtype: Any) -> np.dtype:
        """``dtype`` if this translator built it; refused otherwise."""
        if isinstance(dtype, np.dtype) and id(dtype) in self._known:
            return dtype
        if (
            isinstance(dtype, np.dtype)
            and dtype.names is None
            and dtype.subdtype is None
            and dtype.kind != "T"
            and not dtype.metadata
        ):
            # A plain builtin dtype (numpy's own class attributes name some):
            # rebuilt from its spelling, which plain_dtype checks.
            return self._remember(plain_dtype(dtype.str), 1, 1)
        raise refuse(f"gives {type(dtype).__name__} where a checked dtype belongs")

    def _remember(self, dtype: np.dtype, nodes: int, depth: int) -> np.dtype:
        self.parser.sized(dtype, nodes, depth)
        self._known[id(dtype)] = (dtype, nodes, depth)
        return dtype

    def _size(self, dtype: np.dtype) -> tuple[int, int]:
        _, nodes, depth = self._known[id(self.known(dtype))]
        return nodes, depth

    def mask_dtype(self, dtype: Any) -> np.dtype:
        """The dtype of a masked array's mask for data of ``dtype``."""
        nodes, depth = self._size(dtype)
        return self._remember(np.ma.make_mask_descr(dtype), nodes, depth)

    def dtype_from_descr(self, descr: Any) -> np.dtype:
        """The dtype a codecpickle description describes."""
        self.spend(ARRAY_COST)
        built = self.parser.dtype(descr)
        nodes, depth = self.parser_size(descr)
        return self._remember(built, nodes, depth)

    def parser_size(self, descr: Any) -> tuple[int, int]:
        _, nodes, depth = self.parser._parse(descr, 1)
        return nodes, depth

    def simple_dtype(self, spec: Any) -> np.dtype:
        """``numpy.dtype(spec)`` for a simple type string such as 'f8'."""
        if type(spec) is not str or _SIMPLE_SPEC.fullmatch(spec) is None:
            raise refuse("calls numpy.dtype with something other than a simple type name")
        try:
            built = np.dtype(spec)
        except (TypeError, ValueError) as exc:
            raise refuse(f"gives numpy.dtype the unknown type {spec!r}") from exc
        return self.known(built)

    def string_dtype(self, coerce: Any, na: tuple[Any, ...]) -> np.dtype:
        """numpy 2's StringDType, as ``_convert_to_stringdtype_kwargs`` builds it."""
        if type(coerce) is int and coerce in (0, 1):
            coerce = bool(coerce)
        return self._remember(string_dtype(coerce, na), 1, 1)

    def dtype_from_state(self, type_name: Any, align: Any, state: Any) -> np.dtype:
        """The dtype numpy's ``dtype(type_name, align, True)`` followed by
        ``__setstate__(state)`` would give, built from checked parts.

        The state is the form numpy >= 1.7 writes: ``(version, byteorder,
        subarray, names, fields, itemsize, alignment, flags[, metadata])``
        with version 3, or 4 with metadata.  Its sizes and flags must agree
        with what numpy computes for the dtype described.
        """
        self.spend(STATE_COST)
        if type(type_name) is not str or type(align) is not bool:
            raise refuse("gives numpy.dtype malformed arguments")
        match = _NATIVE_TYPE.fullmatch(type_name)
        if match is None:
            raise refuse(f"gives numpy.dtype the type {type_name[:40]!r}")
        kind = match.group(1)
        _, order, subarray, names, fields, itemsize, alignment, flags, extra = _state(state)
        metadata, unit = extra, None
        if kind in "mM" and type(extra) is tuple:
            if len(extra) != 2:
                raise refuse("gives a datetime dtype malformed metadata")
            metadata, unit = extra
        if metadata is not None and type(metadata) is not dict:
            raise refuse("gives a dtype malformed metadata")
        built, nodes, depth = self._described(
            type_name, kind, order, subarray, names, fields, itemsize, flags, unit
        )
        if metadata:
            built = _with_metadata(built, tuple(metadata.items()))
        if -128 <= flags < 0:
            flags += 128  # numpy <= 1.x wrote the flags as a signed char
        sized = kind in "SUV"  # the state carries size and alignment only for these
        if (
            flags != built.flags
            or (sized and (itemsize, alignment) != (built.itemsize, built.alignment))
            or (not sized and (itemsize, alignment) != (-1, -1))
        ):
            raise refuse("builds a dtype whose flags or layout contradict its description")
        return self._remember(built, nodes, depth)

    def _described(
        self,
        type_name: str,
        kind: str,
        order: str,
        subarray: Any,
        names: Any,
        fields: Any,
        itemsize: int,
        flags: int,
        unit: Any,
    ) -> tuple[np.dtype, int, int]:
        if names is not None or subarray is not None:
            if kind != "V":
                raise refuse("gives fields or a subarray to a dtype that is not void")
            if subarray is not None:
                base, shape = subarray
                base_nodes, base_depth = self._size(base)
                if type(shape) is int:
                    shape = (shape,)
                return _subarray_dtype(base, shape), base_nodes + 1, base_depth + 1
            parts = []
            nodes, depth = 1, 1
            for name in names:
                entry = fields[name]
                field_nodes, field_depth = self._size(entry[0])
                nodes += field_nodes
                depth = max(depth, field_depth + 1)
                self.parser.sized(entry[0], nodes, depth)
                title = entry[2] if len(entry) > 2 else None
                parts.append((name, title, entry[0], entry[1]))
            return _struct_dtype(parts, itemsize, bool(flags & _ALIGNED_STRUCT)), nodes, depth
        if kind in "mM" and unit is not None:
            built = plain_dtype(f"{_NATIVE_ORDER}{kind}8{_datetime_unit(unit)}")
        elif kind in "SUV":
            per_char = 4 if kind == "U" else 1
            if itemsize < 0 or itemsize % per_char:
                raise refuse("gives a string dtype an impossible size")
            built = np.dtype(f"{kind}{itemsize // per_char}")
        elif kind == "O":
            built = np.dtype("O")
        else:
            built = plain_dtype(f"{'|' if type_name[1:] == '1' else _NATIVE_ORDER}{type_name}")
        if order in "<>" and order != _NATIVE_ORDER and built.byteorder != "|":
            built = built.newbyteorder(order)
        wanted = _NATIVE_ORDER if order == "=" else order
        actual = _NATIVE_ORDER if built.byteorder == "=" else built.byteorder
        if wanted != actual:
            raise refuse(f"gives a {built} dtype the byte order {order!r}")
        return built, 1, 1

    # -- arrays and scalars -------------------------------------------------------------

    def array(
        self, shape: Any, dtype: Any, order: Any, data: Any, *, max_items: int | None = None
    ) -> np.ndarray:
        """An array from checked parts (see :func:`construct.build_array`);
        ``max_items`` bounds the elements of arrays whose data the input
        does not hold (made empty, or of zero-size items)."""
        dtype = self.known(dtype)
        result = construct.build_array(
            shape, dtype, order, data, max_bytes=self.max_bytes, max_items=max_items
        )
        units = ARRAY_COST
        if dtype.hasobject or dtype.itemsize == 0 or type(data) is list:
            # Elements made or set one by one (from a list the stream may
            # have built once and named many times, or none at all).
            units += result.size // ELEMENTS_PER_UNIT
        self.spend(units)
        if holds_objects(result):
            self.object_arrays.append(result)
        return result

    def array_from_state(self, cls: Any, state: Any) -> np.ndarray:
        """What ``ndarray.__setstate__(state)`` on an empty ``cls`` instance
        gives: ``state`` is ``(version, shape, dtype, is_fortran, data)`` (or
        without the version), ``data`` the raw bytes in the stated order or,
        for dtypes holding objects, the list of elements in C order."""
        self.spend(STATE_COST)
        if type(state) is tuple and len(state) == 5 and type(state[0]) is int:
            state = state[1:]
        if not (type(state) is tuple and len(state) == 4):
            raise refuse("gives an array a malformed state")
        shape, dtype, fortran, data = state
        if type(shape) is int:
            shape = (shape,)
        if type(fortran) not in (bool, int) or fortran not in (0, 1):
            raise refuse("gives an array a malformed memory order")
        dtype = self.known(dtype)
        if dtype.hasobject and dtype.kind != "T":
            # numpy lists the elements in C order whatever the memory order.
            result = self.array(shape, dtype, "C", data)
            if fortran and result.ndim > 1:
                self.spend(result.size // ELEMENTS_PER_UNIT)
                result = np.asfortranarray(result)
            return result
        if type(data) is bytes:
            self.spend(len(data) // BYTES_PER_UNIT)
            data = bytearray(data)  # numpy's own load gives writeable arrays
        result = self.array(shape, dtype, "F" if fortran else "C", data)
        if not dtype.isnative and dtype.names is None and dtype.subdtype is None:
            # numpy's own load turns a plain dtype's byte order native.
            self.spend(result.nbytes // BYTES_PER_UNIT)
            result = result.astype(dtype.newbyteorder("="), order="K")
        return result

    def scalar(self, dtype: Any, *args: Any) -> Any:
        """``multiarray.scalar(dtype[, data])``: data is the element's
        bytes, or for the object dtype the object itself."""
        dtype = self.known(dtype)
        if len(args) != 1:
            raise refuse("builds a numpy scalar without its data")
        data = args[0]
        if dtype.kind == "O":
            return data  # numpy's own rule: the object itself
        if dtype.hasobject:
            # Structured with object fields: numpy passes a 0-d array of it.
            if not (type(data) is np.ndarray and data.shape == () and data.dtype == dtype):
                raise refuse("builds a numpy scalar holding objects from malformed data")
            return data[()]
        if type(data) is str and dtype.kind in "SV":
            data = data.encode("latin-1")  # protocol 0-2 pickles of bytes
        return construct.build_array((), dtype, "C", data)[()]


def _free(units: int) -> None:
    """No work budget (a translator used outside a restricted load)."""


def _state(state: Any) -> tuple[Any, ...]:
    """The parts of a dtype BUILD state, checked for type."""
    if not (type(state) is tuple and len(state) in (8, 9)):
        raise refuse("gives a dtype a malformed state")
    version, order, subarray, names, fields, itemsize, alignment, flags = state[:8]
    ints = (version, itemsize, alignment, flags)
    if not all(type(n) is int and -(2**31) <= n < 2**31 for n in ints) or version not in (3, 4):
        raise refuse("gives a dtype a malformed state")
    if not (type(order) is str and order in _BYTE_ORDERS):
        raise refuse("gives a dtype a malformed byte order")
    if subarray is not None and not (type(subarray) is tuple and len(subarray) == 2):
        raise refuse("gives a dtype a malformed subarray")
    if (names is None) != (fields is None):
        raise refuse("gives a dtype names without fields, or fields without names")
    if names is not None:
        if not (type(names) is tuple and type(fields) is dict):
            raise refuse("gives a dtype a malformed field table")
        if not all(type(name) is str and name in fields for name in names):
            raise refuse("gives a dtype names missing from its field table")
        for name in names:
            entry = fields[name]
            if not (
                type(entry) is tuple
                and len(entry) in (2, 3)
                and type(entry[1]) is int
                and (len(entry) == 2 or entry[2] is None or type(entry[2]) is str)
            ):
                raise refuse("gives a dtype a malformed field")
    return (*state[:8], state[8] if len(state) == 9 else None)


def _datetime_unit(unit: Any) -> str:
    """The ``[10ms]`` part of a datetime dtype string, from the
    ``(unit, count, 1, 1)`` tuple numpy pickles."""
    if not (type(unit) is tuple and len(unit) == 4 and unit[2:] == (1, 1)):
        raise refuse("gives a datetime dtype a malformed unit")
    name, count = unit[0], unit[1]
    if type(name) is bytes:
        name = name.decode("ascii", "replace")
    if not (name in _DATETIME_UNITS and type(count) is int and 0 < count < 2**31):
        raise refuse("gives a datetime dtype a malformed unit")
    if name == "generic":
        return ""
    return f"[{name}]" if count == 1 else f"[{count}{name}]"
