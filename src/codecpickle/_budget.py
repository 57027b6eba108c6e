"""The work budget of restricted loads: what bounds their time.

A restricted load runs the pure-Python unpickler, so its time is about
proportional to the opcodes it dispatches, plus whatever work an opcode can
ask for beyond its own bytes (a constructor given a large container the
stream built once and refers to many times, a text integer parsed in
quadratic time, a time zone read from disk).  The budget counts both in one
unit, about the time of one cheap opcode (a quarter of a microsecond on a
current machine, a microsecond for the costliest, such as MARK):

* every opcode dispatched costs one unit;
* every :data:`BYTES_PER_UNIT` bytes of opcode stream read (the data of
  BINBYTES, BINUNICODE ...) cost one unit;
* constructors and opcodes whose work grows with their arguments charge it
  (:meth:`WorkMeter.spend`), at the rates below, measured against the
  cheapest opcodes.

The budget grows with the input read so far: :data:`WORK_PER_INPUT_BYTE`
units per byte (compressed bytes for compressed input, array data
included), and never less than :data:`MIN_WORK`.  Over it, the load stops
with :class:`~codecpickle.SizeLimitError`.  A caller who trusts the input
raises it with ``load(..., max_buffer_size=n)``: the budget is then at
least ``n`` units.
"""

from __future__ import annotations

from typing import Any

from .errors import SizeLimitError

__all__ = [
    "ARRAY_COST",
    "BYTES_PER_UNIT",
    "CALL_COST",
    "ELEMENTS_PER_UNIT",
    "MAX_MARK_DEPTH",
    "MIN_WORK",
    "STATE_COST",
    "WORK_PER_INPUT_BYTE",
    "WorkMeter",
    "text_int_cost",
    "work_budget",
]

#: The work a restricted load may always do: a list of a million distinct
#: small tuples (4.2 million units) under any compression; at most about
#: 1.5 s of the costliest opcodes on a current machine.
MIN_WORK = 5_000_000
#: The work a restricted load may do per byte of input read so far.
#: Genuine streams need about 1 unit per compressed byte (the 300,000-dict
#: workload: 1.25 under zstd) and highly repetitive ones more, which the
#: floor covers up to its size; 4 keeps any input under 1 MB within the
#: floor.
WORK_PER_INPUT_BYTE = 4
#: Bytes of opcode stream read (or copied, decoded, hashed) per unit.
BYTES_PER_UNIT = 256
#: Units of one call of an admitted constructor (its policy's checks and
#: the call itself: 3 to 12 µs, a dozen cheap opcodes).
CALL_COST = 12
#: Units of building a numpy array or dtype from checked parts, beyond the
#: call (numpy's constructors take a few µs before any data).
ARRAY_COST = 16
#: Units of translating a numpy dtype or array BUILD state (about 30 µs).
STATE_COST = 64
#: The deepest nesting of MARKs a restricted load allows: genuine streams
#: nest them as deeply as their data (the pickler stops near Python's
#: recursion limit); each open MARK holds a list.
MAX_MARK_DEPTH = 100_000
#: Elements an array constructor or copy sets per unit (numpy builds an
#: object array from a list at about 90 ns an element).
ELEMENTS_PER_UNIT = 2


def work_budget(requested: int | None, input_read: int) -> int:
    """The work units a restricted load may have spent after reading
    ``input_read`` bytes of input: :data:`WORK_PER_INPUT_BYTE` per byte, at
    least :data:`MIN_WORK`, and at least ``requested`` (the caller's
    ``max_buffer_size``) when given."""
    budget = max(MIN_WORK, WORK_PER_INPUT_BYTE * input_read)
    return budget if requested is None else max(budget, requested)


def text_int_cost(digits: int) -> int:
    """The units of parsing a decimal integer of ``digits`` digits, which
    CPython does in quadratic time (4,300 digits: about 250 µs)."""
    return 1 + digits // BYTES_PER_UNIT + digits * digits // 16_384


class WorkMeter:
    """Counts the work of one restricted load against its budget.

    ``reader`` reports the input read so far as ``input_offset`` (readers
    that do not get the floor); ``requested`` is the caller's
    ``max_buffer_size``, or None.
    """

    __slots__ = ("_limit", "_reader", "_requested", "spent")

    def __init__(self, reader: Any, requested: int | None) -> None:
        self._reader = reader
        self._requested = requested
        self.spent = 0
        self._limit = work_budget(requested, 0)

    def spend(self, units: int) -> None:
        """Add ``units`` of work; refuse once over the budget."""
        self.spent += units
        if self.spent > self._limit:
            self._over()

    def remaining(self) -> int:
        """The units left under the budget for the input read so far."""
        self._limit = self.budget()
        return max(0, self._limit - self.spent)

    def budget(self) -> int:
        """The budget for the input read so far."""
        return work_budget(self._requested, getattr(self._reader, "input_offset", 0))

    def _over(self) -> None:
        # The budget grows with the input: only refuse when the input read
        # so far does not pay for the work either.
        self._limit = self.budget()
        if self.spent > self._limit:
            raise SizeLimitError(
                f"the pickle stream asks for more than {self._limit:,} units of work (about "
                f"one opcode each) after {getattr(self._reader, 'input_offset', 0):,} bytes of "
                "input, the limit for a restricted load (docs/security.md, Budgets); if the "
                "input is trusted, raise it with load(..., max_buffer_size=...)"
            )
