"""``dump`` keeps no reference to what it dumped once it returns: freeing
the caller's last reference frees the data at once, without waiting for the
garbage collector (a loop dumping large arrays must not pile them up)."""

from __future__ import annotations

import gc
import io
import weakref
from collections.abc import Iterator

import numpy as np
import pytest

import codecpickle


class Payload:
    """A weak-referenceable object holding arrays of several layouts."""

    def __init__(self) -> None:
        self.contiguous = np.arange(300_000, dtype=np.float64)
        self.strided = np.arange(600_000, dtype=np.float64)[::2]
        self.fortran = np.asfortranarray(np.ones((300, 200)))
        self.small = np.arange(10)


@pytest.fixture
def gc_disabled() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


DUMPERS = {
    "dump to a path": lambda obj, tmp: codecpickle.dump(obj, tmp / "obj.cpkl"),
    "dump zstd, 2 threads": lambda obj, tmp: codecpickle.dump(
        obj, tmp / "obj.cpkl", compress="zstd", threads=2
    ),
    "dump to a file object": lambda obj, tmp: codecpickle.dump(obj, io.BytesIO()),
    "dumps": lambda obj, tmp: codecpickle.dumps(obj),
    "dumps lz4": lambda obj, tmp: codecpickle.dumps(obj, compress="lz4", threads=1),
}


@pytest.mark.usefixtures("gc_disabled")
@pytest.mark.parametrize("dumper", DUMPERS.values(), ids=DUMPERS.keys())
def test_dumped_objects_are_freed_when_the_caller_drops_them(tmp_path, dumper):
    obj = Payload()
    refs = [weakref.ref(obj), weakref.ref(obj.contiguous), weakref.ref(obj.fortran)]
    dumper(obj, tmp_path)
    del obj
    assert [ref() for ref in refs] == [None, None, None]


@pytest.mark.usefixtures("gc_disabled")
def test_a_failed_dump_frees_them_too(tmp_path):
    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("no")

    obj = Payload()
    ref = weakref.ref(obj.contiguous)
    with pytest.raises(RuntimeError):
        codecpickle.dump([obj, Unpicklable()], tmp_path / "obj.cpkl")
    del obj
    assert ref() is None
