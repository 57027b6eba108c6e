"""One hostile stream per class of attack found against the previous design
of restricted loads, each naming only admitted globals.

Each must end in a ``CodecPickleError`` (or load correctly), quickly, with
nothing changed in the process.  Streams that crashed the interpreter run
in a subprocess, so that a crash fails the test instead of ending pytest.
"""

from __future__ import annotations

import collections
import copyreg
import datetime
import decimal
import pickle
import struct
import subprocess
import sys
import textwrap
import time
from typing import Any

import numpy as np
import pytest

import codecpickle
from tests.test_safe import container

RECONSTRUCT = np.ndarray.__reduce__(np.empty(0))[0]  # numpy's multiarray._reconstruct
SCALAR = np.float64(0).__reduce__()[0]  # numpy's multiarray.scalar


class _Reduce:
    """Pickles as whatever ``__reduce__`` value it is given."""

    def __init__(self, *reduced: Any) -> None:
        self.reduced = reduced

    def __reduce__(self) -> Any:
        return self.reduced


def stream(obj: Any, protocol: int = 4) -> bytes:
    return container(pickle.dumps(obj, protocol=protocol))


def run_isolated(code: str, timeout: float = 60) -> str:
    """Run ``code`` in a fresh interpreter (it sees this checkout's
    codecpickle and tests); its stdout, or a failure naming how it died."""
    preamble = "import sys; sys.path.insert(0, '.')\n"
    try:
        proc = subprocess.run(
            [sys.executable, "-c", preamble + textwrap.dedent(code)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the load hung (no result in {timeout} s)")
    assert proc.returncode == 0, f"exit status {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


# -- interpreter crashes ------------------------------------------------------------


def test_void_scalar_with_a_subarray_dtype_is_harmless() -> None:
    # scalar(dtype(('u1', (1,))), data) then any array conversion crashed.
    out = run_isolated(
        """
        import pickle, numpy as np, codecpickle
        from tests.test_safe_classes import SCALAR, _Reduce, stream
        data = stream(_Reduce(SCALAR, (np.dtype(("u1", (1,))), b"a")))
        try:
            value = codecpickle.loads(data, safe=True)
        except codecpickle.CodecPickleError as exc:
            print("refused", type(exc).__name__)
        else:
            print("loaded", repr(value), np.asarray(value).tolist(), np.array([value]).shape)
        """
    )
    assert out.startswith(("refused", "loaded"))


def test_scalar_without_data_leaves_numpy_dtypes_alone() -> None:
    # scalar(dtype) with no data set the itemsize of numpy's shared flexible
    # dtype singletons to 1 for the whole process, corrupting the heap later.
    out = run_isolated(
        """
        import numpy as np, codecpickle
        from tests.test_safe_classes import SCALAR, _Reduce, stream
        sizes = [np.dtype(c).itemsize for c in "SUV"]
        for char in "SUV":
            try:
                codecpickle.loads(stream(_Reduce(SCALAR, (np.dtype(char),))), safe=True)
            except codecpickle.CodecPickleError as exc:
                print("refused", exc)
        assert [np.dtype(c).itemsize for c in "SUV"] == sizes
        np.array(["abc"] * 1000).tolist()
        """
    )
    lines = out.splitlines()
    assert len(lines) == 3
    assert all("without its data" in line for line in lines)


def test_string_array_whose_item_is_itself_is_refused() -> None:
    # An array BUILD state with StringDType whose item is the array itself:
    # numpy deadlocked on its allocator lock.
    out = run_isolated(
        """
        import numpy as np, codecpickle
        from tests.test_safe_classes import RECONSTRUCT, _Reduce, stream
        array = _Reduce()
        state = (1, (1,), np.dtypes.StringDType(), False, [array])
        array.reduced = (RECONSTRUCT, (np.ndarray, (0,), b"b"), state)
        try:
            codecpickle.loads(stream(array), safe=True)
        except codecpickle.CodecPickleError as exc:
            print("refused", exc)
        """,
        timeout=30,
    )
    assert "refused" in out
    assert "not a str" in out


@pytest.mark.parametrize(
    ("cls", "state"),
    [
        (datetime.date, b"\x00\x00\x01\x01"),  # year 0
        (datetime.date, b"\x07\xe4\x02\x1f"),  # 31 February
        (datetime.date, b"\x07\xe4\x01\xff"),  # day 255
        (datetime.datetime, b"\x00\x00\x01\x01\x00\x00\x00\x00\x00\x00"),
        (datetime.datetime, b"\x07\xe4\x01\x40\x00\x00\x00\x00\x00\x00"),  # day 64
        (datetime.datetime, b"\x07\xe4\x01\x01\x30\x00\x00\x00\x00\x00"),  # hour 48
        (datetime.time, b"\x30\x00\x00\x00\x00\x00"),
        (datetime.time, b"\x01\x00\x00\xff\xff\xff"),  # 16 million microseconds
    ],
)
def test_date_states_out_of_range_are_refused(cls: type, state: bytes) -> None:
    # CPython checks only the month byte of a pickled date: ctime() then
    # read outside its tables.
    out = run_isolated(
        f"""
        import datetime, codecpickle
        from tests.test_safe_classes import _Reduce, stream
        data = stream(_Reduce(datetime.{cls.__name__}, ({state!r},)))
        try:
            value = codecpickle.loads(data, safe=True)
        except codecpickle.CodecPickleError as exc:
            print("refused", exc)
        else:
            print("loaded", value.isoformat(), getattr(value, "ctime", lambda: "")())
        """
    )
    assert out.startswith("refused"), out


def test_genuine_date_states_load() -> None:
    values = [
        datetime.date(2020, 2, 29),
        datetime.datetime(2020, 1, 2, 3, 4, 5, 6, fold=1),
        datetime.datetime(2020, 1, 2, tzinfo=datetime.timezone(datetime.timedelta(hours=2))),
        datetime.time(23, 59, 59, 999999, fold=1),
    ]
    for value in values:
        loaded = codecpickle.loads(stream(value), safe=True)
        assert loaded == value
        assert getattr(loaded, "fold", 0) == getattr(value, "fold", 0)


def test_pandas_block_placements_are_not_accepted() -> None:
    # pandas' own pickles place column blocks by positions the file
    # chooses; placements outside the frame crashed the process.  Under
    # PANDAS_GLOBALS no block is accepted at all.
    out = run_isolated(
        """
        import pickle, numpy as np, pandas as pd, codecpickle
        from tests.test_safe import container
        frame = pd.DataFrame({"a": np.arange(3), "b": np.arange(3.0)})
        data = pickle.dumps(frame, protocol=5)
        # Move a block's placement past the frame's end.
        forged = data.replace(b"K\\x01", b"K\\x63")
        for opcodes in (data, forged):
            try:
                codecpickle.loads(container(opcodes), allow=codecpickle.PANDAS_GLOBALS)
            except codecpickle.ForbiddenGlobalError as exc:
                print("refused", exc)
        """
    )
    assert len([line for line in out.splitlines() if line.startswith("refused")]) == 2


# -- reading object memory ----------------------------------------------------------


@pytest.mark.parametrize("encoding", ["latin-1", "utf-8", "ascii"])
def test_object_array_memory_is_not_decoded_as_text(encoding: str) -> None:
    objects = np.array([1, "x", None], dtype=object)
    with pytest.raises(codecpickle.CorruptDataError, match="decodes something other than bytes"):
        codecpickle.loads(stream(_Reduce(str, (objects, encoding))), safe=True)


# -- hangs ------------------------------------------------------------------------


def assert_quick(seconds: float, load: Any, error: type = codecpickle.CodecPickleError) -> Any:
    start = time.perf_counter()
    with pytest.raises(error) as info:
        load()
    assert time.perf_counter() - start < seconds
    return info.value


def test_decimal_of_a_huge_integer_is_refused_quickly() -> None:
    # Decimal(int) is quadratic in the int's size: 2 MiB took hours.
    huge = b"\x8b" + struct.pack("<i", 2 << 20) + b"\x01" * (2 << 20)  # LONG4
    opcodes = b"\x80\x04cdecimal\nDecimal\n" + huge + b"\x85R."
    error = assert_quick(2, lambda: codecpickle.loads(container(opcodes), safe=True))
    assert isinstance(error, codecpickle.SizeLimitError)
    assert "decimal digits" in str(error)
    # Within the limit, it loads.
    value = 10**4000
    assert codecpickle.loads(stream(_Reduce(decimal.Decimal, (value,))), safe=True) == value


def test_int_over_the_digit_limit_is_refused_wherever_it_comes_from() -> None:
    with pytest.raises(codecpickle.SizeLimitError):
        codecpickle.loads(stream(10**5000), safe=True)
    with pytest.raises(codecpickle.CorruptDataError):
        codecpickle.loads(stream(_Reduce(int, ("9" * 6000,))), safe=True)
    assert codecpickle.loads(stream(10**4000), safe=True) == 10**4000
    assert codecpickle.loads(stream(10**5000)) == 10**5000  # normal loads: no limit


def shared_dtype_descr(levels: int) -> Any:
    """A description whose two fields share the level below: a few hundred
    bytes in a stream, 2**levels nodes as a tree."""
    descr: Any = "<f8"
    for _ in range(levels):
        descr = ("struct", (("a", None, descr, 0), ("b", None, descr, 0)), 8, False)
    return descr


def test_dtype_whose_fields_share_a_part_is_refused_quickly() -> None:
    from codecpickle import _construct

    data = stream(_Reduce(_construct.dtype, (shared_dtype_descr(40),)))
    assert len(data) < 2000
    error = assert_quick(2, lambda: codecpickle.loads(data, safe=True))
    assert "more than 10000 parts" in str(error)
    assert codecpickle.loads(stream(_Reduce(_construct.dtype, (shared_dtype_descr(8),))), safe=True)


def test_opcode_bomb_is_refused_by_the_opcode_budget() -> None:
    # Compressed opcodes expand without bound: 256 MiB of them here, from a
    # file of a few kilobytes, would take minutes to run.
    import io

    from codecpickle._writer import ContainerWriter
    from codecpickle.codecs import resolve_compress

    out = io.BytesIO()
    writer = ContainerWriter(out, resolve_compress("zstd"), chunk_size=1 << 22)
    writer.write(b"\x80\x05")
    block = b"N0" * (1 << 21)
    for _ in range(64):
        writer.write(block)
    writer.write(b"N.")
    writer.finish()
    data = out.getvalue()
    assert len(data) < 100_000
    error = assert_quick(30, lambda: codecpickle.loads(data, safe=True))
    assert isinstance(error, codecpickle.SizeLimitError)
    assert "units of work" in str(error)
    # The caller can raise it: a larger max_buffer_size means a larger budget.
    small = io.BytesIO()
    writer = ContainerWriter(small, resolve_compress("zstd"), chunk_size=1 << 22)
    writer.write(b"\x80\x05" + b"N0" * (3 << 20) + b"N.")
    writer.finish()
    with pytest.raises(codecpickle.SizeLimitError):
        codecpickle.loads(small.getvalue(), safe=True)
    assert codecpickle.loads(small.getvalue(), safe=True, max_buffer_size=16 << 20) is None


@pytest.mark.parametrize(
    "call",
    [
        _Reduce(bytes, (2**31,)),
        _Reduce(bytearray, (2**31,)),
        _Reduce(np.ndarray, ((2**40,), np.dtype("V0"), b"", 0, None, "C")),
        _Reduce(range, (2**62,)),
    ],
    ids=["bytes", "bytearray", "zero-size-items", "range"],
)
def test_work_not_paid_for_by_the_input_is_refused_quickly(call: _Reduce) -> None:
    # bytes(n) allocates and zeroes n bytes; an array of 2**40 empty items
    # holds no data but takes 2**40 steps to iterate.
    assert_quick(2, lambda: codecpickle.loads(stream(call), safe=True))


def test_arrays_made_empty_are_bounded_by_the_input() -> None:
    from codecpickle import _construct

    made = _Reduce(_construct.array, ((10**8,), "|O", "C", None))
    error = assert_quick(2, lambda: codecpickle.loads(stream(made), safe=True))
    assert "elements that its data does not hold" in str(error)
    small = _Reduce(_construct.array, ((1000,), "|O", "C", None))
    assert codecpickle.loads(stream(small), safe=True).tolist() == [None] * 1000


# -- process-wide state ---------------------------------------------------------------


def test_extension_code_cached_by_an_earlier_load_cannot_change_a_class() -> None:
    # A code resolved once by a normal load was served unchecked from the
    # process-wide cache, so BUILD could rewrite Counter.most_common.
    code = 0x7FF0_0003
    most_common = collections.Counter.most_common
    copyreg.add_extension("collections", "Counter", code)
    try:
        assert pickle.loads(b"\x80\x02\x84" + struct.pack("<i", code) + b".") is collections.Counter
        opcodes = (
            b"\x80\x02\x84" + struct.pack("<i", code) + b"N}X\x0b\x00\x00\x00most_commonNs\x86b."
        )
        with pytest.raises(codecpickle.ForbiddenGlobalError, match="changes"):
            codecpickle.loads(container(opcodes), safe=True)
    finally:
        copyreg.remove_extension("collections", "Counter", code)
    assert collections.Counter.most_common is most_common


@pytest.mark.parametrize(
    "opcodes",
    [
        # SETITEM on a class, APPEND to a global's list-like, ADDITEMS to a frozenset
        b"\x80\x04ccollections\nOrderedDict\nX\x01\x00\x00\x00aK\x01s.",
        b"\x80\x04ccollections\ndeque\nK\x01a.",
        b"\x80\x04cbuiltins\nEllipsis\n(K\x01\x90.",
    ],
    ids=["setitem-class", "append-class", "additems-global"],
)
def test_globals_are_never_changed_by_item_opcodes(opcodes: bytes) -> None:
    with pytest.raises(codecpickle.ForbiddenGlobalError, match="changes"):
        codecpickle.loads(container(opcodes), safe=True)


# -- imports ------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["idna", "rot13", "utf-16", "punycode"])
def test_codecs_outside_the_builtin_ones_are_not_looked_up(encoding: str) -> None:
    # str(b, 'idna') imported encodings.idna and unicodedata.
    out = run_isolated(
        f"""
        import sys, codecpickle
        from tests.test_safe_classes import _Reduce, stream
        before = set(sys.modules)
        try:
            codecpickle.loads(stream(_Reduce(str, (b"abc", {encoding!r}))), safe=True)
        except codecpickle.CorruptDataError as exc:
            print("refused", exc)
        print(sorted(set(sys.modules) - before))
        """
    )
    assert "refused" in out
    assert "encoding other than" in out
    assert "encodings." not in out.splitlines()[-1]
    assert "unicodedata" not in out


# -- the crash hunt, bounded --------------------------------------------------------


@pytest.mark.parametrize(("count", "extra"), [(160, []), (60, ["--pandas"])])
def test_grammar_crash_hunt_runs_clean(count: int, extra: list[str]) -> None:
    # scripts/fuzz_grammar.py builds streams from the admitted globals with
    # random typed arguments and uses what loads, each case in a worker
    # process with a timeout; a short run must find nothing.
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "scripts" / "fuzz_grammar.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--count", str(count), "--workers", "2", *extra],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"{count} cases (seeds 0..{count - 1}): 0 crashes or deadlocks, 0 hangs" in proc.stdout
