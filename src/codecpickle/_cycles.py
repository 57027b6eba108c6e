"""Reference cycles through object arrays, refused at the end of a
restricted load.

numpy walks the elements of an object array in C without a recursion
check: arithmetic, comparison and ``repr`` helpers on an array that holds
itself (directly, or through lists, dicts, instances or other arrays)
recurse until the C stack overflows and the process dies.  Chains of
object arrays nested directly in one another do the same once they are a
few thousand levels deep.  Such structures are legal Python, and pickle
rebuilds them, so a restricted load checks for them after the stream has
run, when every late change (an APPENDS onto a list an array already
holds) has been made.

:func:`check_object_arrays` walks the objects reachable from the
object-holding arrays the load created, once, with an iterative Tarjan
strongly-connected-components pass (linear in the objects and references
walked), and refuses:

* a strongly connected component (a set of objects that all reach one
  another) that holds an object array, or an object array that holds
  itself: a cycle through it;
* object arrays nested directly in one another more than
  :data:`MAX_OBJECT_ARRAY_NESTING` levels deep.

Cycles among plain containers (a list that holds itself) stay: Python's own
code guards its recursion, and pickle supports them.  Before refusing, the
elements of the arrays the load created are set to None, so that freeing
them neither leaks the cycle (arrays take no part in garbage collection)
nor recurses through a deep chain.
"""

from __future__ import annotations

import collections
import gc
import types
from collections.abc import Iterable
from typing import Any

import numpy as np

from .errors import CorruptDataError

__all__ = ["MAX_OBJECT_ARRAY_NESTING", "check_object_arrays", "holds_objects"]

#: The deepest direct nesting of object arrays (an array whose element is an
#: array whose element is an array ...) a restricted load returns: numpy
#: recurses through them in C, and a few thousand levels overflow the stack.
MAX_OBJECT_ARRAY_NESTING = 64

# Objects that refer to nothing a stream could make: not walked.
_LEAVES = frozenset(
    (str, int, float, bool, bytes, complex, type(None), range, slice, type(Ellipsis))
)
# Objects shared by the whole process, never part of what a load built.
_SHARED = (
    type,
    types.ModuleType,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.CodeType,
    np.dtype,
)
_SEQUENCES = (list, tuple, set, frozenset, collections.deque)


def holds_objects(array: np.ndarray) -> bool:
    """Whether ``array`` holds references to Python objects (object dtype,
    or structured with object fields; not StringDType, which copies)."""
    dtype = array.dtype
    return dtype.hasobject and dtype.kind != "T"


def check_object_arrays(roots: list[np.ndarray]) -> None:
    """Refuse, with :class:`~codecpickle.CorruptDataError`, a cycle through
    an object array reachable from ``roots`` (the object-holding arrays a
    load created), or object arrays nested too deeply."""
    if not roots:
        return
    try:
        _Walk().run(roots)
    except CorruptDataError:
        for array in roots:
            _clear(array)
        raise


class _Walk:
    """One iterative Tarjan pass over the objects reachable from the roots."""

    def __init__(self) -> None:
        self.index: dict[int, int] = {}
        self.low: dict[int, int] = {}
        self.on_stack: set[int] = set()
        self.stack: list[Any] = []
        # id(object array) -> the object arrays it holds directly, and the
        # levels of object arrays nested in it, itself included.
        self.held: dict[int, list[np.ndarray]] = {}
        self.nesting: dict[int, int] = {}
        # Every object visited, held so that no id is reused during the walk.
        self.seen: list[Any] = []
        # id -> object, for containers found to hold plain values only.
        self.flat: dict[int, Any] = {}
        # id(array owning its memory) -> (array, whether it holds plain values only)
        self.plain_owners: dict[int, tuple[np.ndarray, bool]] = {}

    def run(self, roots: list[np.ndarray]) -> None:
        leaves = _LEAVES
        walked = [
            root
            for root in roots
            # Arrays of plain values only (the common case): nothing to walk.
            if not (type(root) is np.ndarray and leaves.issuperset(map(type, _elements(root))))
        ]
        if walked and self._reaches_an_array(walked):
            for root in walked:
                if id(root) not in self.index:
                    self._component_walk(root)

    def _reaches_an_array(self, roots: list[np.ndarray]) -> bool:
        """Whether anything the roots hold leads to an object array (or a
        record holding objects).  If nothing does, no cycle passes through
        one and none is nested: the full walk is not needed.  A plain
        traversal, several times cheaper per object than the full walk."""
        seen: set[int] = set()
        pending: list[Any] = []
        for root in roots:  # not marked seen: reaching one again is reaching an array
            pending.extend(self._children(root)[0])
        while pending:
            node = pending.pop()
            if id(node) in seen:
                continue
            if _is_object_array(node) or _is_object_record(node):
                return True
            seen.add(id(node))
            pending.extend(self._children(node)[0])
        return False

    def _visit(self, node: Any) -> list[Any]:
        number = len(self.seen)
        self.seen.append(node)
        self.index[id(node)] = self.low[id(node)] = number
        self.on_stack.add(id(node))
        self.stack.append(node)
        children, arrays = self._children(node)
        if _is_object_array(node):
            self.held[id(node)] = arrays
        return children

    def _children(self, node: Any) -> tuple[list[Any], list[np.ndarray]]:
        """What the walk visits from ``node``: not plain values, objects
        shared by the process, nor containers of plain values only (each
        checked once), which no cycle can pass through.  And the arrays
        ``node`` refers to, for the nesting count."""
        leaves, index, flat = _LEAVES, self.index, self.flat
        children: list[Any] = []
        arrays: list[np.ndarray] = []
        for child in _referents(node):
            kind = type(child)
            if kind in leaves:
                continue
            if isinstance(child, np.ndarray):
                arrays.append(child)
            key = id(child)
            if key in index:
                children.append(child)
                continue
            if key in flat:
                continue
            if kind in _SEQUENCES:
                plain = leaves.issuperset(map(type, child))
            elif kind is dict:
                plain = leaves.issuperset(map(type, child)) and leaves.issuperset(
                    map(type, child.values())
                )
            elif kind is np.ndarray:
                plain = not holds_objects(child) or self._holds_plain_values(child)
            else:
                plain = isinstance(child, _SHARED)
            if plain:
                flat[key] = child
            else:
                children.append(child)
        return children, arrays

    def _holds_plain_values(self, array: np.ndarray) -> bool:
        """Whether an object array (or the one it views) holds plain values
        only; decided once per array owning its memory."""
        owner = _base_of(array)
        if owner is None:
            owner = array
        known = self.plain_owners.get(id(owner))
        if known is None:
            known = self.plain_owners[id(owner)] = (
                owner,
                _LEAVES.issuperset(map(type, _elements(owner))),
            )
        return known[1]

    def _component_walk(self, root: Any) -> None:
        index, low, on_stack = self.index, self.low, self.on_stack
        work = [(root, iter(self._visit(root)))]
        while work:
            node, children = work[-1]
            node_id = id(node)
            for child in children:
                child_id = id(child)
                if child_id not in index:
                    work.append((child, iter(self._visit(child))))
                    break
                if child_id in on_stack:
                    if child is node and _is_object_array(node):
                        raise _cycle_error(node)
                    if index[child_id] < low[node_id]:
                        low[node_id] = index[child_id]
            else:
                work.pop()
                if work:
                    parent_id = id(work[-1][0])
                    if low[node_id] < low[parent_id]:
                        low[parent_id] = low[node_id]
                if low[node_id] == index[node_id]:
                    self._close_component(node)

    def _close_component(self, head: Any) -> None:
        stack, on_stack = self.stack, self.on_stack
        member = stack.pop()
        on_stack.discard(id(member))
        if member is head:
            if _is_object_array(member):
                self._nest(member)
            return
        component = [member]
        while member is not head:
            member = stack.pop()
            on_stack.discard(id(member))
            component.append(member)
        for member in component:
            if _is_object_array(member) or _is_object_record(member):
                raise _cycle_error(member)

    def _nest(self, array: np.ndarray) -> None:
        # Every array it holds was closed before it (Tarjan closes
        # components in reverse topological order).
        nesting, held = self.nesting, self.held.pop(id(array))
        deepest = max((nesting.get(id(item), 1) for item in held), default=0)
        # A view is no level of its own (its base is one).
        levels = self.nesting[id(array)] = deepest + (_base_of(array) is None)
        if levels > MAX_OBJECT_ARRAY_NESTING:
            raise CorruptDataError(
                f"the stream nests object arrays directly in one another {levels} levels "
                f"deep, over the limit of {MAX_OBJECT_ARRAY_NESTING} for restricted loads: "
                "numpy recurses through them without a bound and can crash the process; "
                "refused (if the file is trusted, load it without safe=True)"
            )


def _referents(node: Any) -> Iterable[Any]:
    """Everything ``node`` refers to that could lead back to it."""
    kind = type(node)
    if kind is dict:
        return [*node, *node.values()]
    if kind in _SEQUENCES:
        return node  # type: ignore[no-any-return]
    if isinstance(node, np.ndarray):
        found: Iterable[Any] = ()
        if holds_objects(node):
            # A view reaches what its base holds: the base is walked once,
            # however many views of it there are.
            base = _base_of(node)
            found = _elements(node) if base is None else [base]
        if kind is not np.ndarray:
            # A subclass's attributes (a masked array's mask and fill value).
            found = [*found, *getattr(node, "__dict__", {}).values()]
        return found
    if isinstance(node, np.void):
        return [node.base] if node.dtype.hasobject and node.base is not None else ()
    if isinstance(node, np.generic):
        return ()
    if isinstance(node, dict):  # OrderedDict, Counter, defaultdict
        return [*node, *node.values()]
    # Instances (ChainMap, pandas objects, classes added with allow=).
    return gc.get_referents(node)  # type: ignore[no-any-return]


def _base_of(array: np.ndarray) -> np.ndarray | None:
    """The array whose memory ``array`` views, or None if it owns its own."""
    base = array.base
    if not isinstance(base, np.ndarray):
        return None
    while isinstance(base.base, np.ndarray):
        base = base.base
    return base


def _elements(array: np.ndarray) -> list[Any]:
    """The Python objects an object-holding array holds."""
    # A plain view: a subclass's ravel/tolist may change the elements (a
    # masked array's tolist gives None for masked ones, a matrix's nests).
    plain = array.view(np.ndarray) if type(array) is not np.ndarray else array
    if plain.dtype.kind == "O":
        # tolist gives an object array's elements as they are.
        return plain.tolist() if plain.ndim == 1 else plain.ravel(order="K").tolist()
    found: list[Any] = []
    _field_objects(plain, found)
    return found


def _field_objects(array: np.ndarray, found: list[Any]) -> None:
    # numpy expands a field's subarray into the view's shape: each field
    # view is of the object dtype or structured again.
    if array.dtype.kind == "O":
        found.extend(array.ravel(order="K").tolist())
        return
    for name in array.dtype.names or ():
        field = array[name]
        if holds_objects(field):
            _field_objects(field, found)


def _is_object_array(node: Any) -> bool:
    return isinstance(node, np.ndarray) and holds_objects(node)


def _is_object_record(node: Any) -> bool:
    return isinstance(node, np.void) and node.dtype.hasobject


def _cycle_error(node: Any) -> CorruptDataError:
    return CorruptDataError(
        f"the stream builds an array of Python objects ({type(node).__name__}) that "
        "contains itself (directly or through other objects), which a restricted load "
        "refuses: numpy recurses through such arrays without a bound and crashes the "
        "process on arithmetic or comparison; if the file is trusted, load it without "
        "safe=True"
    )


def _clear(array: np.ndarray) -> None:
    """Set the objects an array the load created holds to None."""
    if not array.flags.writeable:
        return
    if array.dtype.kind == "O":
        array[...] = None
        return
    for name in array.dtype.names or ():
        field = array[name]
        if holds_objects(field):
            _clear(field)
