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

Admitting a name is not enough to call it: a restricted load calls an
admitted global only through its policy in ``_admitted.py``, which checks
the arguments' types and ranges (globals without a policy are values only),
and translates numpy's own reductions (``_native.py``) instead of running
them.  Globals added with ``allow=`` are called as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from . import _construct, _construct_pandas
from ._reconstruct import masked_array, view_as
from .errors import ForbiddenGlobalError, InvalidOptionError

__all__ = [
    "PANDAS_GLOBALS",
    "SAFE_GLOBALS",
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
        ("multiarray", "_reconstruct"),  # numpy's own ndarray reduction; translated
        ("multiarray", "scalar"),  # numpy scalars; translated
        ("numeric", "_frombuffer"),  # protocol-5 arrays; translated
    )
}

#: Globals a restricted load admits unless told otherwise: numpy arrays,
#: dtypes, scalars, masked arrays and matrices (codecpickle's constructors,
#: and numpy's own reductions, which are translated, not run), builtin
#: scalars and containers, ``datetime``, ``zoneinfo``, ``decimal.Decimal``
#: and the ``collections`` containers.  Each callable is called only with
#: checked arguments (``_admitted.py``).  Read-only; extend it per call with
#: ``load(..., allow=...)``.
SAFE_GLOBALS: frozenset[str] = frozenset(
    {
        # builtins that protocol 5 does not encode with an opcode, and the
        # types pickles refer to as values (e.g. a defaultdict's factory).
        # Deliberately absent: getattr, eval, exec, type, object,
        # __import__, open, and every other builtin function.
        *(
            f"builtins.{name}"
            for name in (
                "bool",
                "int",
                "float",
                "complex",
                "str",
                "bytes",
                "bytearray",
                "list",
                "tuple",
                "dict",
                "set",
                "frozenset",
                "range",
                "slice",
                "Ellipsis",
                "NotImplemented",
            )
        ),
        "datetime.date",
        "datetime.datetime",
        "datetime.time",
        "datetime.timedelta",
        "datetime.timezone",
        # Time zones from the system's tz database: _unpickle(key) only reads
        # tz files and refuses keys that are paths.  Pickles name it through
        # getattr, which serves only allowed dotted names.
        "zoneinfo.ZoneInfo",
        "zoneinfo.ZoneInfo._unpickle",
        "builtins.getattr",
        "decimal.Decimal",
        # How protocol 0-2 pickles spell bytes: only encode(text, "latin1").
        "_codecs.encode",
        "collections.OrderedDict",
        "collections.Counter",
        "collections.deque",
        # Its default factory is a global too, and is checked like any other.
        "collections.defaultdict",
        "collections.ChainMap",
        "numpy.ndarray",  # format-1 files call it; translated
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
        *(
            _qualified(getattr(_construct, name))
            for name in ("dtype", "array", "fill", "scalar", "masked", "matrix")
        ),
    }
)

#: Opt-in additions for pandas objects (``allow=codecpickle.PANDAS_GLOBALS``):
#: codecpickle's pandas constructors, which build DataFrames, Series,
#: indexes (plain, range, datetime, categorical), categoricals,
#: time-zone-aware datetimes, nullable integer/float/boolean arrays and
#: Python-storage string arrays from checked arrays and labels through
#: pandas' public constructors.  pandas' own pickles (block managers and
#: placements, MultiIndex, periods, intervals, Timestamps as objects ...)
#: are not admitted: such files load only without restriction.
PANDAS_GLOBALS: frozenset[str] = frozenset(
    f"codecpickle._construct_pandas.{name}" for name in _construct_pandas.__all__
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
    allowed: frozenset[str], module: str, name: str, find_class: Callable[[str, str], Any]
) -> Any:
    """The object ``module.name`` refers to, for a restricted unpickler's
    ``find_class``; :class:`ForbiddenGlobalError` unless it is allowed.

    Nothing is imported for a refused name.
    """
    dotted = f"{module}.{name}"
    if dotted not in allowed:
        raise forbidden_globals([dotted])
    return find_class(module, name)


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
