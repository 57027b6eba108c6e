"""Restricted loading: which globals an untrusted stream may name.

A pickle names the callables that rebuild its objects (GLOBAL, STACK_GLOBAL,
INST and EXT opcodes) and the unpickler calls them with arguments the file
chooses; that is how loading a pickle runs code.  A restricted load resolves
every such name through :func:`resolve`, which refuses anything not on an
allowlist *before* importing its module, so a hostile file can only call the
harmless constructors admitted here.

Names are compared as ``"module.qualname"`` strings.  Two spellings of the
same dotted path (``module="numpy"``, ``name="ma.MaskedArray"`` versus
``module="numpy.ma"``, ``name="MaskedArray"``) reach the same object and
only import modules that the admitted spelling imports too, so comparing the
joined string is as strict as comparing the pair.

Admitting a name is a promise that calling it with *any* arguments the file
can build (only other admitted objects, plus builtin scalars and
containers) can neither run other code nor read memory it should not.  A
few numpy entry points break that promise and are replaced by checked
versions (see ``_numpy_guards.py``), and the restricted unpickler checks
what BUILD opcodes do to numpy objects.  Not promised: bounded CPU and
memory (see ``docs/security.md``).
"""

from __future__ import annotations

import copyreg
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from ._numpy_guards import GUARDED
from ._reconstruct import masked_array, view_as
from .errors import ForbiddenGlobalError, InvalidOptionError

__all__ = [
    "PANDAS_GLOBALS",
    "SAFE_GLOBALS",
    "check_extension_registry",
    "make_allowlist",
    "resolve",
]


def _qualified(obj: Any) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


def _numpy_scalar_types() -> set[str]:
    # The scalar classes (numpy.float64, numpy.datetime64, numpy.str_ ...):
    # pickles name them as dtype arguments and as plain class references.
    return {
        f"numpy.{scalar_type.__name__}"
        for scalar_type in set(np.sctypeDict.values())
        if scalar_type.__module__ == "numpy"
    }


def _numpy_dtype_classes() -> set[str]:
    import numpy.dtypes

    return {
        f"numpy.dtypes.{name}"
        for name in getattr(numpy.dtypes, "__all__", ())
        if isinstance(getattr(numpy.dtypes, name, None), type)
    }


# numpy 1.x pickles name ``numpy.core``, numpy 2.x ``numpy._core``; files
# move between the two, so both spellings are admitted.
_NUMPY_CORE_FUNCTIONS = {
    f"numpy.{core}.{module}.{name}"
    for core in ("core", "_core")
    for module, name in (
        ("multiarray", "_reconstruct"),  # numpy's own ndarray reduction (object arrays)
        ("multiarray", "scalar"),  # numpy scalars; refuses object dtypes itself
        ("numeric", "_frombuffer"),  # protocol-5 arrays; guarded
    )
}

#: Globals a restricted load admits unless told otherwise: numpy arrays,
#: dtypes, scalars and masked arrays (and the callables codecpickle's and
#: numpy's pickles name to rebuild them), builtin scalars and containers,
#: ``datetime``, ``decimal.Decimal`` and the ``collections`` containers.
#: Read-only; extend it per call with ``load(..., allow=...)``.
SAFE_GLOBALS: frozenset[str] = frozenset(
    {
        # builtins that protocol 5 does not encode with an opcode, and the
        # types pickles refer to as values (e.g. a defaultdict's factory).
        # Deliberately absent: getattr, eval, exec, type, object,
        # __import__, open, and every other builtin function.
        *(
            f"builtins.{name}"
            for name in (
                "bool", "int", "float", "complex", "str", "bytes", "bytearray",
                "list", "tuple", "dict", "set", "frozenset", "range", "slice",
                "Ellipsis", "NotImplemented",
            )
        ),
        "datetime.date",
        "datetime.datetime",
        "datetime.time",
        "datetime.timedelta",
        "datetime.timezone",
        # Time zones from the system's tz database: _unpickle(key) only reads
        # tz files and refuses keys that are paths.  Pickles name it through
        # getattr, which resolves to the guarded form below.
        "zoneinfo.ZoneInfo",
        "zoneinfo.ZoneInfo._unpickle",
        "builtins.getattr",
        "decimal.Decimal",
        "collections.OrderedDict",
        "collections.Counter",
        "collections.deque",
        # Its default factory is a global too, and is checked like any other.
        "collections.defaultdict",
        "collections.ChainMap",
        "numpy.ndarray",  # named by codecpickle's array reduction; guarded
        "numpy.dtype",
        "numpy.matrix",
        "numpy.ma.MaskedArray",
        "numpy.ma.core.MaskedArray",
        "numpy.ma.core.MaskedConstant",
        "numpy.ma.core._mareconstruct",
        *_NUMPY_CORE_FUNCTIONS,
        # numpy 2's variable-width string dtype (StringDType) pickles as a
        # call of this; it only builds a StringDType.
        "numpy._core._internal._convert_to_stringdtype_kwargs",
        *_numpy_scalar_types(),
        *_numpy_dtype_classes(),
        _qualified(view_as),
        _qualified(masked_array),
    }
)

#: Opt-in additions for pandas objects (``allow=codecpickle.PANDAS_GLOBALS``):
#: the classes and reconstruction functions pandas' own pickles name for
#: DataFrames, Series, indexes, categoricals, timestamps and the common
#: extension arrays.  pandas' internals are audited less closely than
#: numpy's: prefer plain arrays for data from untrusted sources.
PANDAS_GLOBALS: frozenset[str] = frozenset(
    {
        *(
            f"pandas.{name}"
            for name in (
                "DataFrame", "Series", "Index", "RangeIndex", "MultiIndex", "CategoricalIndex",
                "DatetimeIndex", "TimedeltaIndex", "PeriodIndex", "IntervalIndex",
                "Categorical", "Interval", "Period", "Timestamp", "Timedelta", "NA",
                "CategoricalDtype", "DatetimeTZDtype", "PeriodDtype", "IntervalDtype",
                "StringDtype", "BooleanDtype", "Float32Dtype", "Float64Dtype",
                "Int8Dtype", "Int16Dtype", "Int32Dtype", "Int64Dtype",
                "UInt8Dtype", "UInt16Dtype", "UInt32Dtype", "UInt64Dtype",
            )
        ),
        *(
            f"pandas.arrays.{name}"
            for name in (
                "BooleanArray", "DatetimeArray", "FloatingArray", "IntegerArray",
                "IntervalArray", "PeriodArray", "StringArray", "TimedeltaArray",
                "ArrowStringArray",
            )
        ),
        *(
            f"pandas._libs.tslibs.offsets.{name}"
            for name in (
                "Day", "Hour", "Minute", "Second", "Milli", "Micro", "Nano", "Week",
                "MonthEnd", "MonthBegin", "QuarterEnd", "QuarterBegin", "YearEnd",
                "YearBegin", "BusinessDay", "BusinessMonthEnd", "BusinessMonthBegin",
            )
        ),
        "pandas._libs.arrays.__pyx_unpickle_NDArrayBacked",
        "pandas._libs.internals._unpickle_block",
        "pandas._libs.tslibs.nattype._nat_unpickle",
        "pandas._libs.tslibs.timedeltas._timedelta_unpickle",
        "pandas._libs.tslibs.timestamps._unpickle_timestamp",
        "pandas.core.indexes.base._new_Index",
        "pandas.core.indexes.interval._new_IntervalIndex",
        "pandas.core.indexes.period._new_PeriodIndex",
        "pandas.core.indexes.datetimes._new_DatetimeIndex",
        "pandas.core.internals.managers.BlockManager",
        "pandas.core.internals.managers.SingleBlockManager",
    }
)


def make_allowlist(safe: bool, allow: Iterable[Any] | str | None) -> frozenset[str] | None:
    """The allowlist a load with these options uses, or None for an
    unrestricted load.  ``allow`` holds ``"module.qualname"`` strings or
    the classes and functions themselves; giving any implies ``safe``."""
    if not isinstance(safe, bool):
        raise InvalidOptionError(f"Expected safe to be True or False. Got {safe!r} instead.")
    if allow is None:
        allow = ()
    if isinstance(allow, str | bytes) or not isinstance(allow, Iterable):
        raise InvalidOptionError(
            "Expected allow to be an iterable of 'module.qualname' strings, classes or "
            f"functions. Got {allow!r} instead."
        )
    extra = frozenset(_allow_entry(entry) for entry in allow)
    if not safe and not extra:
        return None
    return SAFE_GLOBALS | extra


def _allow_entry(entry: Any) -> str:
    if isinstance(entry, str):
        module, dot, name = entry.rpartition(".")
        if not (module and dot and name):
            raise InvalidOptionError(
                f"Expected an allow entry 'module.qualname' such as 'mypkg.models.Model'. "
                f"Got {entry!r} instead."
            )
        return entry
    module = getattr(entry, "__module__", None)
    qualname = getattr(entry, "__qualname__", None)
    if not (isinstance(module, str) and isinstance(qualname, str)) or "<" in qualname:
        raise InvalidOptionError(
            f"Expected allow entries to be 'module.qualname' strings or importable classes "
            f"or functions. Got {entry!r}, which pickle cannot name, instead."
        )
    return f"{module}.{qualname}"


def resolve(
    allowed: frozenset[str],
    module: str,
    name: str,
    find_class: Callable[[str, str], Any],
    track: Callable[[Any], None],
) -> Any:
    """The object ``module.name`` refers to, for a restricted unpickler's
    ``find_class``; :class:`ForbiddenGlobalError` unless it is allowed.

    Nothing is imported for a refused name.  ``track`` hears of every
    global the stream obtains (including through ``getattr``), so that the
    unpickler can refuse to change their state.
    """
    dotted = f"{module}.{name}"
    if dotted not in allowed:
        raise forbidden_globals([dotted])
    if dotted == "builtins.getattr":
        found = _checked_getattr(allowed, track)
    else:
        found = GUARDED.get(dotted)
        if found is None:
            found = find_class(module, name)
    track(found)
    return found


def forbidden_globals(names: Iterable[str], note: str = "") -> ForbiddenGlobalError:
    """The error for a stream that needs the globals ``names`` (in the
    order the stream names them), which the allowlist refuses."""
    names = list(dict.fromkeys(names))
    quoted = ", ".join(repr(name) for name in names)
    if len(names) == 1:
        needs = f"the global {quoted}, which a restricted load does not allow"
        only = "if only this global"
    else:
        needs = f"{len(names)} globals that a restricted load does not allow: {quoted}"
        only = "to admit only these"
    return ForbiddenGlobalError(
        f"the stream needs {needs}. If you trust this file, load it with safe=False; "
        f"{only}, pass allow=[{quoted}].{note}",
        names=names,
    )


def check_extension_registry(allowed: frozenset[str]) -> None:
    """Refuse a restricted load while ``copyreg`` maps an extension code to
    a global outside ``allowed``.

    The C unpickler resolves EXT1/EXT2/EXT4 codes through ``find_class``
    only the first time; afterwards it serves them from the process-wide
    ``copyreg._extension_cache`` without asking.  So a code registered for
    a non-allowed global, once loaded by any unrestricted unpickler, would
    bypass the allowlist.  Extension codes are rare (nothing registers any
    by default), so failing closed costs nothing in practice.
    """
    for code, (module, name) in list(copyreg._inverted_registry.items()):
        if f"{module}.{name}" not in allowed:
            raise ForbiddenGlobalError(
                f"copyreg extension code {code} is registered for {module}.{name}, which a "
                "restricted load does not allow; the unpickler could serve it from its "
                "cache without checking, so restricted loads refuse to run while it is "
                "registered (copyreg.remove_extension, or allow it)"
            )


# -- getattr ------------------------------------------------------------------


def _checked_getattr(
    allowed: frozenset[str], track: Callable[[Any], None]
) -> Callable[[Any, str], Any]:
    """``getattr`` for restricted loads.  Pickles name class methods (such
    as ``ZoneInfo._unpickle``) as ``getattr(cls, name)``; this serves only
    attributes of classes whose full dotted name is itself allowed, and
    reports each to ``track`` as a global."""

    def restricted_getattr(owner: Any, name: Any, /) -> Any:
        dotted = f"{_qualified(owner)}.{name}" if isinstance(owner, type) else None
        if dotted is None or not isinstance(name, str) or dotted not in allowed:
            raise ForbiddenGlobalError(
                f"the stream asks for attribute {name!r} of {owner!r}, which a restricted "
                "load does not allow",
                names=[dotted] if dotted is not None and isinstance(name, str) else [],
            )
        attribute = getattr(owner, name)
        track(attribute)
        return attribute

    return restricted_getattr
