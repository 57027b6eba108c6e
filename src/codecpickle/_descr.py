"""Dtype descriptions: the plain-data form in which files name a dtype.

A file never hands numpy a pickled dtype object.  It gives a *description*
made of strings, ints, bools, ``None`` and tuples, which :class:`DescrParser`
checks piece by piece and turns into a dtype through numpy's public
constructor.  The grammar (part of the file format, see docs/format.md):

``"<f8"``, ``"|b1"``, ``">M8[10ms]"``, ``"|S5"``, ``"<U3"``, ``"|V7"``, ``"|O"``
    A builtin type, spelled exactly as numpy's ``dtype.str`` spells it: a
    byte order (``<``, ``>``, or ``|`` where order does not apply), a kind
    letter, the item size (characters for ``U``), and for datetimes an
    optional ``[<count><unit>]``.
``("struct", fields, itemsize, aligned)``
    A structured dtype; ``fields`` is a tuple of ``(name, title, descr,
    offset)`` with ``title`` a str or None.
``("subarray", descr, shape)``
    ``descr`` repeated in a fixed ``shape`` (a non-empty tuple of ints).
``("string", coerce, na)``
    numpy 2's variable-width ``StringDType``; ``na`` is ``()`` for no
    missing-value object, or a 1-tuple holding it (None, a float or a str).
``("meta", descr, items)``
    ``descr`` with metadata: a tuple of ``(key, value)`` pairs, keys str,
    values None, bool, int, float, str or bytes.

Work is bounded: a description may nest at most :data:`MAX_DEPTH` levels
and, counted as a tree (a sub-description shared by several fields counts
once per use), hold at most :data:`MAX_NODES` nodes, because numpy compares
and hashes dtypes by walking that tree.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from .errors import CorruptDataError

__all__ = ["MAX_DEPTH", "MAX_NODES", "DescrParser", "describe"]

#: The deepest nesting of structured and subarray dtypes a description may have.
MAX_DEPTH = 64
#: The most nodes a description may have, counted as a tree.
MAX_NODES = 10_000
#: numpy 1.x's limit on dimensions (numpy 2 allows 64), so files load on both.
MAX_DIMS = 32
# Item sizes numpy itself refuses beyond (a C int).
_MAX_ITEMSIZE = 2**31 - 1

_PLAIN = re.compile(r"([<>|])([biufcmMOSUV])(\d{0,10})(?:\[(\d{1,10})?([a-zA-Z]{1,2})\])?")
_DATETIME_UNITS = frozenset(("Y", "M", "W", "D", "h", "m", "s", "ms", "us", "ns", "ps", "fs", "as"))
_METADATA_VALUES = (type(None), bool, int, float, str, bytes)
_STRING_NA = (type(None), float, str)
_BUILTIN_DTYPE_CLASSES = frozenset(type(np.dtype(char)) for char in "?bBhHiIlLqQefdgFDGSUVOMm")


def refuse(what: str) -> CorruptDataError:
    """The error for a description (or argument) that is not valid."""
    return CorruptDataError(f"the stream {what}; refused")


class DescrParser:
    """Turns descriptions into dtypes, within the budgets above.

    One parser serves one load: it remembers each description object it has
    seen (and holds it, so its id stays its own), so a description shared by
    many arrays, or by many fields, is checked and built once, and the tree
    size of a new one is the sum of its parts' sizes.
    """

    def __init__(self, max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH) -> None:
        self.max_nodes = max_nodes
        self.max_depth = max_depth
        # id(descr) -> (descr, dtype, nodes, depth)
        self._seen: dict[int, tuple[Any, np.dtype, int, int]] = {}

    def dtype(self, descr: Any) -> np.dtype:
        """The dtype ``descr`` describes, or :class:`CorruptDataError`."""
        return self._parse(descr, 1)[0]

    def sized(self, dtype: np.dtype, nodes: int, depth: int) -> None:
        """Check a dtype's tree size and depth against the budgets."""
        if depth > self.max_depth:
            raise refuse(f"describes a dtype nested more than {self.max_depth} levels deep")
        if nodes > self.max_nodes:
            raise refuse(f"describes a dtype of more than {self.max_nodes} parts")

    def _parse(self, descr: Any, level: int) -> tuple[np.dtype, int, int]:
        known = self._seen.get(id(descr))
        if known is not None:
            return known[1], known[2], known[3]
        if level > self.max_depth:
            raise refuse(f"describes a dtype nested more than {self.max_depth} levels deep")
        if type(descr) is str:
            built, nodes, depth = plain_dtype(descr), 1, 1
        elif type(descr) is tuple and descr and type(descr[0]) is str:
            built, nodes, depth = self._compound(descr, level)
        else:
            raise refuse(f"gives {_short(descr)} where a dtype description belongs")
        self.sized(built, nodes, depth)
        self._seen[id(descr)] = (descr, built, nodes, depth)
        return built, nodes, depth

    def _compound(self, descr: tuple[Any, ...], level: int) -> tuple[np.dtype, int, int]:
        tag = descr[0]
        if tag == "struct" and len(descr) == 4:
            _, fields, itemsize, aligned = descr
            if type(fields) is not tuple or len(fields) > self.max_nodes:
                raise refuse("gives a structured dtype a malformed field list")
            parts = []
            nodes, depth = 1, 1
            for field in fields:
                if not (type(field) is tuple and len(field) == 4):
                    raise refuse("gives a structured dtype a malformed field")
                name, title, sub, offset = field
                field_dtype, sub_nodes, sub_depth = self._parse(sub, level + 1)
                nodes += sub_nodes
                depth = max(depth, sub_depth + 1)
                if nodes > self.max_nodes:
                    raise refuse(f"describes a dtype of more than {self.max_nodes} parts")
                parts.append((name, title, field_dtype, offset))
            return struct_dtype(parts, itemsize, aligned), nodes, depth
        if tag == "subarray" and len(descr) == 3:
            base, sub_nodes, sub_depth = self._parse(descr[1], level + 1)
            return subarray_dtype(base, descr[2]), sub_nodes + 1, sub_depth + 1
        if tag == "string" and len(descr) == 3:
            return string_dtype(descr[1], descr[2]), 1, 1
        if tag == "meta" and len(descr) == 3:
            base, sub_nodes, sub_depth = self._parse(descr[1], level + 1)
            return with_metadata(base, descr[2]), sub_nodes + 1, sub_depth
        raise refuse(f"gives an unknown dtype description {_short(descr)}")


# -- one level each; parts are dtypes already built and checked ----------------------


def plain_dtype(text: str) -> np.dtype:
    """A builtin dtype from its exact ``dtype.str`` spelling."""
    common = _COMMON.get(text) if type(text) is str else None
    if common is not None:
        return common
    match = _PLAIN.fullmatch(text)
    if match is None:
        raise refuse(f"gives {text[:40]!r} where a dtype such as '<f8' belongs")
    _, kind, size, count, unit = match.groups()
    if unit is not None and (kind not in "mM" or unit not in _DATETIME_UNITS):
        raise refuse(f"gives the dtype {text!r} a unit it cannot have")
    if count is not None and not 0 < int(count) < 2**31:
        raise refuse(f"gives the dtype {text!r} an impossible unit count")
    if size and int(size) > _MAX_ITEMSIZE:
        raise refuse(f"gives the dtype {text!r} an impossible size")
    try:
        built = np.dtype(text)
    except (TypeError, ValueError) as exc:
        raise refuse(f"gives {text!r}, which numpy does not know as a dtype") from exc
    # Only the canonical spelling, of a builtin type: '<i8' but not '<l'
    # aliases, '=f8', or a user type that numpy shows as '|V2'.
    if built.str != text or type(built) not in _BUILTIN_DTYPE_CLASSES:
        raise refuse(f"gives {text!r}, which is not numpy's own spelling of a builtin dtype")
    return built


def _common_dtypes() -> dict[str, np.dtype]:
    """The fixed-size builtin dtypes by spelling, made once at import (a
    constant table, not a cache: nothing a load does changes it)."""
    table = {}
    units = ["", *(f"[{unit}]" for unit in _DATETIME_UNITS)]
    specs = [*"?bBhHiIlLqQefdgFDGO", *(f"{k}8{u}" for k in "mM" for u in units)]
    for spec in specs:
        for order in "<>":
            text = np.dtype(spec).newbyteorder(order).str
            table[text] = np.dtype(text)  # numpy's own reading of the spelling
    return table


def struct_dtype(
    fields: list[tuple[Any, Any, np.dtype, Any]], itemsize: Any, aligned: Any
) -> np.dtype:
    """A structured dtype from ``(name, title, dtype, offset)`` fields."""
    if type(itemsize) is not int or not 0 <= itemsize <= _MAX_ITEMSIZE or type(aligned) is not bool:
        raise refuse("gives a structured dtype a malformed size")
    names: list[str] = []
    titles: list[str | None] = []
    seen: set[str] = set()
    for name, title, field_dtype, offset in fields:
        if type(name) is not str or not (title is None or type(title) is str):
            raise refuse("gives a structured dtype a field name that is not a str")
        if name in seen or title in seen or title == name:
            raise refuse("gives a structured dtype the same field name twice")
        if type(offset) is not int or not 0 <= offset <= itemsize - field_dtype.itemsize:
            raise refuse(f"places field {name[:40]!r} outside its structured dtype")
        seen.add(name)
        if title is not None:
            seen.add(title)
        names.append(name)
        titles.append(title)
    spec: dict[str, Any] = {
        "names": names,
        "formats": [field[2] for field in fields],
        "offsets": [field[3] for field in fields],
        "itemsize": itemsize,
    }
    if any(title is not None for title in titles):
        spec["titles"] = titles
    built = _numpy_dtype(spec, aligned)
    if built.itemsize != itemsize or built.isalignedstruct != aligned:
        raise refuse("describes a structured dtype whose layout numpy would change")
    return built


def subarray_dtype(base: np.dtype, shape: Any) -> np.dtype:
    """``base`` repeated in ``shape``."""
    if not (
        type(shape) is tuple
        and 0 < len(shape) <= MAX_DIMS
        and all(type(n) is int and n >= 0 for n in shape)
        and math.prod(shape) * max(base.itemsize, 1) <= _MAX_ITEMSIZE
    ):
        raise refuse(f"gives {_short(shape)} where a subarray shape belongs")
    return _numpy_dtype((base, shape), False)


def string_dtype(coerce: Any, na: Any) -> np.dtype:
    """numpy 2's ``StringDType``."""
    string_class = getattr(getattr(np, "dtypes", None), "StringDType", None)
    if string_class is None:
        raise CorruptDataError(
            f"the stream holds numpy 2's variable-width strings, which numpy {np.__version__} "
            "does not have"
        )
    if type(coerce) is not bool or not (
        na == () or (type(na) is tuple and len(na) == 1 and type(na[0]) in _STRING_NA)
    ):
        raise refuse("gives a StringDType malformed options")
    options = {"na_object": na[0]} if na else {}
    built: np.dtype = string_class(coerce=coerce, **options)
    return built


def with_metadata(base: np.dtype, items: Any) -> np.dtype:
    """``base`` with metadata of plain values."""
    if not (
        type(items) is tuple
        and len(items) <= 256
        and all(
            type(item) is tuple
            and len(item) == 2
            and type(item[0]) is str
            and type(item[1]) in _METADATA_VALUES
            and (type(item[1]) is not int or -(2**63) <= item[1] < 2**64)
            for item in items
        )
    ):
        raise refuse("gives a dtype malformed metadata")
    return _numpy_dtype(base, False, dict(items))


def _numpy_dtype(spec: Any, align: bool, metadata: dict[str, Any] | None = None) -> np.dtype:
    try:
        if metadata is None:
            return np.dtype(spec, align=align)
        return np.dtype(spec, align=align, metadata=metadata)
    except (TypeError, ValueError, KeyError, OverflowError) as exc:
        raise refuse(f"describes a dtype numpy refuses ({exc})") from exc


def _short(value: Any) -> str:
    text = repr(value) if type(value) in (str, int, bool, type(None)) else type(value).__name__
    return text[:60]


# -- the writer's side --------------------------------------------------------------------


_COMMON = _common_dtypes()


class Undescribable(Exception):
    """A dtype the description grammar cannot express (user-defined types,
    metadata holding objects); the writer then leaves it to numpy."""


def describe(dtype: np.dtype) -> Any:
    """The description of ``dtype``; :class:`Undescribable` if it has none.

    ``DescrParser().dtype(describe(d))`` equals ``d`` in everything numpy
    compares, and in metadata, alignment and titles too.
    """
    described = _describe_bare(dtype)
    try:
        metadata = dtype.metadata
    except TypeError:
        # numpy 1.x, unpickling numpy 2's pickle of a datetime dtype, keeps
        # the None it finds where it expects a dict: .metadata then raises.
        # There is no metadata to describe.
        metadata = None
    if metadata:
        items = tuple(metadata.items())
        if not all(type(k) is str and type(v) in _METADATA_VALUES for k, v in items):
            raise Undescribable(f"{dtype} has metadata other than plain values")
        described = ("meta", described, items)
    return described


def _describe_bare(dtype: np.dtype) -> Any:
    if dtype.names is not None:
        fields = dtype.fields
        assert fields is not None
        parts = []
        for name in dtype.names:
            entry = fields[name]
            title = entry[2] if len(entry) > 2 else None
            if title is not None and type(title) is not str:
                raise Undescribable(f"{dtype} has a title that is not a str")
            parts.append((name, title, describe(entry[0]), entry[1]))
        return ("struct", tuple(parts), dtype.itemsize, bool(dtype.isalignedstruct))
    if dtype.subdtype is not None:
        base, shape = dtype.subdtype
        return ("subarray", describe(base), tuple(shape))
    string_class = getattr(getattr(np, "dtypes", None), "StringDType", None)
    if string_class is not None and isinstance(dtype, string_class):
        if not hasattr(dtype, "na_object"):
            return ("string", bool(dtype.coerce), ())
        if type(dtype.na_object) not in _STRING_NA:
            raise Undescribable(f"{dtype!r} has a missing-value object of another type")
        return ("string", bool(dtype.coerce), (dtype.na_object,))
    text = dtype.str
    if type(dtype) not in _BUILTIN_DTYPE_CLASSES or _PLAIN.fullmatch(text) is None:
        raise Undescribable(f"{dtype!r} is not a builtin numpy dtype")
    return text
