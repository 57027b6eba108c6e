"""The keys a restricted load hashes (dict keys, set elements), checked first.

Hashing is where a stream's data meets C code that trusts it:

* CPython hashes a tuple (or frozenset) by hashing its items, recursively
  in C and without a depth check, and without caching the result: a tuple
  nested a million levels deep (two bytes per level in a stream) crashes
  the process when hashed, and a large tuple used as a key again and again
  costs its size every time;
* the hashes of ints, floats, complex numbers, Decimals and tuples of them
  are not randomized: a stream can give thousands of distinct keys one
  hash, and a dict or set of them takes time quadratic in their number.

:class:`KeyGuard` sees every key before it is hashed: tuples and frozensets
nested more than :data:`MAX_KEY_NESTING` levels deep are refused, hashing
work beyond a constant is charged to the load's work budget (``_budget.py``),
and more than :data:`MAX_SHARED_HASH` distinct keys with one hash in one
container are refused.  Keys whose hashes a stream cannot choose (str and
bytes, whose hashes are randomized; bools, None; ints that hash to
themselves) pass with a type check.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable
from typing import Any

from ._descr import refuse
from .errors import CorruptDataError

__all__ = ["MAX_KEY_NESTING", "MAX_SHARED_HASH", "PLAIN_KEYS", "KeyGuard"]

#: The deepest nesting of tuples and frozensets a key may have.
MAX_KEY_NESTING = 1_000
#: The most distinct keys of one container that may share a hash.
MAX_SHARED_HASH = 64

#: Keys whose hash the stream cannot choose, and whose hashing costs O(1) (or
#: is cached in the object): no check beyond their type.
PLAIN_KEYS = frozenset(
    (
        str,
        bytes,
        bool,
        type(None),
        datetime.date,
        datetime.datetime,
        datetime.time,
    )
)
# Ints below this hash to themselves (CPython's modulus is 2**61 - 1).
_HASH_MODULUS = (1 << 61) - 1
_NESTED = (tuple, frozenset)


class KeyGuard:
    """Checks the keys of one restricted load; ``spend`` charges work."""

    def __init__(self, spend: Callable[[int], None]) -> None:
        self._spend = spend
        # id(tuple or frozenset) -> (it, nested items, depth), for keys seen
        # before (a stream reuses a memoized key for free).
        self._sizes: dict[int, tuple[Any, int, int]] = {}
        # id(tuple) -> depth, for the tuples the load built that hold tuples.
        # Not holding them (args tuples would live as long as the load): an
        # id reused by a tuple of depth 1 may read an older, larger depth,
        # never a smaller one, as a tuple is noted when it is made and its
        # items outlive it.
        self._depths: dict[int, int] = {}
        # id(container) -> (it, {hash: distinct keys seen with it})
        self._hashes: dict[int, tuple[Any, dict[int, int]]] = {}

    def check(self, keys: Iterable[Any], target: Any = None) -> None:
        """Check ``keys`` before they are hashed into ``target`` (None: a
        container being built from exactly these keys)."""
        keys = keys if type(keys) is list else list(keys)
        if PLAIN_KEYS.issuperset(map(type, keys)):
            return
        counts: dict[int, int] | None = None
        cost = 0
        for key in keys:
            kind = type(key)
            if kind in PLAIN_KEYS:
                continue
            if kind is int and -_HASH_MODULUS < key < _HASH_MODULUS:
                continue  # hashes to itself (but -1 and -2: both -2)
            if kind is float:
                continue  # collide in families of a few dozen at most
            if kind in _NESTED:
                # Hashing walks every nested item (about 8 ns each).
                cost += self._nested_size(key) // 16
            if counts is None:
                counts = self._counts(target)
            if target is not None and _holds(target, key):
                continue  # replaces a value: no new key
            try:
                value = hash(key)
            except TypeError:
                continue  # unhashable: the container will say so
            seen = counts[value] = counts.get(value, 0) + 1
            if seen > 1:
                cost += seen  # each probe compares with a key of that hash
                if seen > MAX_SHARED_HASH:
                    raise CorruptDataError(
                        f"the stream gives more than {MAX_SHARED_HASH} distinct keys of one "
                        "dict or set the same hash, which takes time quadratic in their "
                        "number and no genuine stream does; refused"
                    )
        if cost:
            self._spend(cost)

    def note_tuple(self, value: tuple[Any, ...]) -> None:
        """Note a tuple the load built from items that include tuples;
        refuse it if tuples now nest more than :data:`MAX_KEY_NESTING`
        levels deep (hashing it, as any caller may, would crash CPython)."""
        depths = self._depths
        depth = 1
        for item in value:
            if type(item) is tuple:
                depth = max(depth, depths.get(id(item), 1) + 1)
        if depth > MAX_KEY_NESTING:
            raise refuse(
                f"nests tuples more than {MAX_KEY_NESTING} levels deep, which CPython hashes "
                "by recursing in C"
            )
        if depth > 1:
            depths[id(value)] = depth

    def _counts(self, target: Any) -> dict[int, int]:
        if target is None:
            return {}
        known = self._hashes.get(id(target))
        if known is None or known[0] is not target:
            known = self._hashes[id(target)] = (target, {})
        return known[1]

    def _nested_size(self, key: Any) -> int:
        """The items a tuple or frozenset key holds, nested ones counted
        (what hashing it walks); refused if nested too deeply."""
        known = self._sizes.get(id(key))
        if known is not None and known[0] is key:
            return known[1]
        sizes = self._sizes
        # Iterative post-order walk over the nested tuples and frozensets,
        # refusing as soon as it goes too deep (before CPython would hash).
        pending: list[tuple[Any, int, bool]] = [(key, 1, False)]
        while pending:
            node, level, expanded = pending.pop()
            if id(node) in sizes and sizes[id(node)][0] is node:
                continue
            if not expanded:
                if level > MAX_KEY_NESTING:
                    raise refuse(
                        f"uses as a key a tuple nested more than {MAX_KEY_NESTING} levels "
                        "deep, which CPython hashes by recursing in C"
                    )
                pending.append((node, level, True))
                pending.extend((item, level + 1, False) for item in node if type(item) in _NESTED)
                continue
            size, depth = len(node), 1
            for item in node:
                if type(item) in _NESTED:
                    _, item_size, item_depth = sizes[id(item)]
                    size += item_size
                    depth = max(depth, item_depth + 1)
            sizes[id(node)] = (node, size, depth)
        return sizes[id(key)][1]


def _holds(target: Any, key: Any) -> bool:
    try:
        return key in target
    except TypeError:
        return False
