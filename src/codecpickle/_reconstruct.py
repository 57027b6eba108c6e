"""Callables that files written by codecpickle name to rebuild arrays.

Streams refer to these by module and name, so both are part of the file
format: never rename, move or change the meaning of anything here.  Each
is harmless to call (the restricted loader admits them).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def view_as(array: np.ndarray, cls: type) -> np.ndarray:
    """Rebuild an ndarray subclass instance (``np.matrix`` and the like)
    from its data: a view of ``array`` as ``cls``, as numpy's own pickling
    would give, without copying the data."""
    if not (isinstance(cls, type) and issubclass(cls, np.ndarray)):
        raise TypeError(f"{cls!r} is not an ndarray subclass")
    return array.view(cls)


def masked_array(
    cls: type, data: np.ndarray, mask: np.ndarray, fill_value: Any, hard_mask: bool
) -> np.ma.MaskedArray:
    """Rebuild a ``numpy.ma.MaskedArray`` from its data and mask arrays,
    which travel as ordinary (out-of-band) arrays."""
    if not (isinstance(cls, type) and issubclass(cls, np.ma.MaskedArray)):
        raise TypeError(f"{cls!r} is not a MaskedArray subclass")
    return cls(data, mask=mask, fill_value=fill_value, hard_mask=hard_mask, copy=False)
