"""Lazy arrays from a restricted load: ``load(file, lazy=True, safe=True)``.

The object graph is unpickled exactly as a restricted load unpickles it
(:class:`~codecpickle._restricted.RestrictedUnpickler`: the allowlist, the
checked constructors, the budgets), over the stream's opcode chunks only.
Array payloads are out-of-band data, not code: each reaches the admitted
array constructor as a probe (see :mod:`codecpickle._lazy`), and the
ndarray the constructor builds over it, after all of its checks, becomes a
:class:`~codecpickle.LazyArray` of the same shape, dtype and order.
Anything else a probe reaches is built again from the payload's real bytes,
through the same checked call.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ._lazy import Probes, needs_real_arrays
from ._restricted import RestrictedUnpickler

__all__ = ["LazyRestrictedUnpickler"]


class _Reader:
    """The opcode chunks and the probes, as the reader a restricted
    unpickler reads from (the container reader's interface)."""

    def __init__(self, opcodes: Any, probes: Probes) -> None:
        self._opcodes = opcodes
        self._buffers = probes.buffers()
        self.max_buffer_size = opcodes.max_buffer_size
        # The caller's bound raises the work budget when given (None: derived
        # from the input read, as for an eager restricted load).
        self.requested_max_buffer_size = opcodes.requested_max_buffer_size

    @property
    def input_offset(self) -> int:
        return int(self._opcodes.input_offset)

    def buffers(self) -> Iterator[Any]:
        # One sequence for the unpickler and, after a refusal, for the
        # scan that lists every other refused global.
        return self._buffers

    def readinto1(self, out: Any) -> int:
        return int(self._opcodes.readinto1(out))

    def read(self, size: int = -1) -> bytes:
        return bytes(self._opcodes.read(size))

    def readinto(self, out: Any) -> int:
        return int(self._opcodes.readinto(out))

    def readline(self) -> bytes:
        return bytes(self._opcodes.readline())

    def unread(self, count: int) -> None:
        self._opcodes.unread(count)

    def check_declared_size(self, nbytes: int, what: str) -> None:
        self._opcodes.check_declared_size(nbytes, what)


class LazyRestrictedUnpickler(RestrictedUnpickler):
    """A restricted unpickler whose array payloads become lazy arrays."""

    def __init__(self, opcodes: Any, probes: Probes, allowed: frozenset[str]) -> None:
        super().__init__(_Reader(opcodes, probes), allowed)  # type: ignore[arg-type]
        self.probes = probes

    def find_class(self, module: str, name: str) -> Any:
        found = super().find_class(module, name)  # refused here if not allowed
        if not self.probes.eager and needs_real_arrays(module, found):
            self.probes.eager = True
        return found

    def _call(self, func: Any, args: Any, kwargs: Any = None, new: bool = False) -> Any:
        if type(args) is not tuple:
            return super()._call(func, args, kwargs, new)  # refused there
        return self.probes.call(
            lambda *a, **k: super(LazyRestrictedUnpickler, self)._call(func, a, k or None, new),
            args,
            kwargs,
        )
