"""Restricted loading (``safe=True`` / ``allow=``): admitted types round-trip,
everything else raises ForbiddenGlobalError before it runs or is imported."""

from __future__ import annotations

import collections
import copyreg
import datetime
import decimal
import io
import os
import pickle
import struct
import subprocess
import sys
import zoneinfo
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import codecpickle
from codecpickle import _format as fmt
from codecpickle._writer import ContainerWriter
from tests.conftest import assert_same

SAFE_OBJECTS = [
    np.arange(12.0).reshape(3, 4),
    np.arange(12.0).reshape(3, 4).T,
    np.arange(20)[::3],
    np.zeros(3, dtype=[("a", "<f4"), ("b", "S3")]),
    np.array([1, "a", None], dtype=object),
    np.arange(4).astype("datetime64[s]"),
    np.ma.masked_array([1.0, 2.0, 3.0], mask=[0, 1, 0]),
    np.arange(3, dtype=">u2"),
    np.array(["a", "bb", ""], dtype=np.dtypes.StringDType()),
    np.array(["a", None], dtype=np.dtypes.StringDType(na_object=None)),
    np.float64(1.5),
    np.datetime64("2020-01-01"),
    np.dtype("complex64"),
    {"nested": [1, 2.5, "x", b"y", None, True, (1, 2), {3}, frozenset({4}), bytearray(b"z")]},
    complex(1, 2),
    range(3, 9, 2),
    slice(1, None, 2),
    ...,
    datetime.datetime(2020, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
    datetime.datetime(2020, 1, 2, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")),
    datetime.date(2020, 1, 2),
    datetime.timedelta(days=3),
    decimal.Decimal("1.25"),
    collections.OrderedDict(a=1, b=2),
    collections.Counter("abracadabra"),
    collections.deque([1, 2], maxlen=5),
    collections.defaultdict(list, a=[1]),
    np.random.default_rng(0).random(200_000),
]


@pytest.mark.parametrize("compress", [None, "zstd"])
@pytest.mark.parametrize("obj", SAFE_OBJECTS, ids=lambda o: type(o).__name__)
def test_admitted_types_round_trip(obj: Any, compress: str | None) -> None:
    data = codecpickle.dumps(obj, compress=compress)
    loaded = codecpickle.loads(data, safe=True)
    if isinstance(obj, np.ndarray | dict | list | tuple):
        assert_same(loaded, obj)
    else:
        assert loaded == obj
        assert type(loaded) is type(obj)
    assert codecpickle.load(io.BytesIO(data), safe=True) is not None


def test_safe_globals_is_a_read_only_set_of_dotted_names() -> None:
    assert isinstance(codecpickle.SAFE_GLOBALS, frozenset)
    assert "numpy.ndarray" in codecpickle.SAFE_GLOBALS
    assert "codecpickle._reconstruct.view_as" in codecpickle.SAFE_GLOBALS
    assert "numpy.core.multiarray._reconstruct" in codecpickle.SAFE_GLOBALS
    assert "numpy._core.multiarray._reconstruct" in codecpickle.SAFE_GLOBALS
    for forbidden in ("builtins.eval", "builtins.exec", "os.system", "copyreg._reconstructor"):
        assert forbidden not in codecpickle.SAFE_GLOBALS


# -- malicious streams ------------------------------------------------------


class Sentinel:
    """Reduces to a call that would create ``path``: the payload of a
    hostile file.  ``how`` picks the callable the stream names."""

    def __init__(self, path: Path, how: str) -> None:
        self.path = str(path)
        self.how = how

    def __reduce__(self) -> Any:
        command = f"touch {self.path}"
        code = f"open({self.path!r}, 'w').close()"
        if self.how == "os.system":
            return os.system, (command,)
        if self.how == "eval":
            return eval, (code,)
        if self.how == "exec":
            return exec, (code,)
        if self.how == "subprocess":
            return subprocess.call, (["touch", self.path],)
        if self.how == "importlib":
            import importlib

            return importlib.import_module, ("this_module_does_not_exist_either",)
        if self.how == "getattr":
            # getattr(subprocess.Popen, ...): getattr itself resolves (to a
            # guarded form), the class it is asked about does not.
            return getattr, (subprocess.Popen, "communicate")
        raise AssertionError(self.how)


HOSTILE = ["os.system", "eval", "exec", "subprocess", "importlib", "getattr"]


@pytest.mark.parametrize("how", HOSTILE)
@pytest.mark.parametrize("nesting", ["top", "dict", "object_array"])
def test_malicious_container_never_runs(tmp_path: Path, how: str, nesting: str) -> None:
    sentinel = tmp_path / "pwned"
    evil: Any = Sentinel(sentinel, how)
    if nesting == "dict":
        evil = {"weights": np.arange(10), "meta": [1, evil]}
    elif nesting == "object_array":
        evil = np.array([1, evil, "x"], dtype=object)
    data = codecpickle.dumps(evil, compress="zstd")
    path = tmp_path / "evil.cpkl"
    path.write_bytes(data)
    for load in (
        lambda: codecpickle.loads(data, safe=True),
        lambda: codecpickle.load(path, safe=True),
        lambda: codecpickle.load(io.BytesIO(data), allow=["datetime.date"]),
    ):
        with pytest.raises(codecpickle.ForbiddenGlobalError):
            load()
    assert not sentinel.exists()


def container(opcodes: bytes) -> bytes:
    """A valid codecpickle stream around a hand-made opcode stream."""
    out = io.BytesIO()
    writer = ContainerWriter(out, None, chunk_size=fmt.MIN_CHUNK_SIZE)
    writer.write(opcodes)
    writer.finish()
    return out.getvalue()


HAND_CRAFTED = {
    # protocol 0 GLOBAL + REDUCE
    "GLOBAL": lambda p: b"cos\nsystem\n(S'touch " + p + b"'\ntR.",
    # protocol 0/1 INST: class looked up and called in one opcode
    "INST": lambda p: b"(S'touch " + p + b"'\nios\nsystem\n.",
    # protocol 1 OBJ: class pushed by GLOBAL, called by OBJ
    "OBJ": lambda p: b"(cos\nsystem\nS'touch " + p + b"'\no.",
    # protocol 4 STACK_GLOBAL
    "STACK_GLOBAL": lambda p: (
        b"\x80\x04\x8c\x02os\x8c\x06system\x93\x8c"
        + bytes([6 + len(p)])
        + b"touch "
        + p
        + b"\x85R."
    ),
    # getattr chain: getattr(__import__('os'), 'system')('touch ...')
    "getattr_chain": lambda p: (
        b"cbuiltins\ngetattr\n(cbuiltins\n__import__\n(S'os'\ntRS'system'\ntR(S'touch "
        + p
        + b"'\ntR."
    ),
    # builtins.eval with a string argument
    "eval": lambda p: b'cbuiltins\neval\n(S\'__import__("os").system("touch ' + p + b"\")'\ntR.",
}


@pytest.mark.parametrize("name", sorted(HAND_CRAFTED))
def test_hand_crafted_opcodes_never_run(tmp_path: Path, name: str) -> None:
    sentinel = tmp_path / "pwned"
    data = container(HAND_CRAFTED[name](str(sentinel).encode()))
    with pytest.raises(codecpickle.ForbiddenGlobalError):
        codecpickle.loads(data, safe=True)
    with pytest.raises(codecpickle.ForbiddenGlobalError):
        codecpickle.load(io.BytesIO(data), safe=True)
    assert not sentinel.exists()


def test_unsafe_load_does_run_code(tmp_path: Path) -> None:
    # The control: the same streams do run without safe mode, so the tests
    # above prove the allowlist, not a broken payload.
    sentinel = tmp_path / "pwned"
    codecpickle.loads(container(HAND_CRAFTED["INST"](str(sentinel).encode())))
    assert sentinel.exists()


def test_forbidden_module_is_not_imported() -> None:
    name = "codecpickle_test_never_imported_module"
    data = container(b"c" + name.encode() + b"\nanything\n.")
    with pytest.raises(codecpickle.ForbiddenGlobalError, match=name):
        codecpickle.loads(data, safe=True)
    assert name not in sys.modules


def test_getattr_is_guarded() -> None:
    # getattr is admitted only for allowed dotted names (ZoneInfo._unpickle).
    data = container(b"cbuiltins\ngetattr\n(cdatetime\ndate\nS'__subclasses__'\ntR)R.")
    with pytest.raises(codecpickle.ForbiddenGlobalError, match="__subclasses__"):
        codecpickle.loads(data, safe=True)


def test_defaultdict_factory_is_gated(tmp_path: Path) -> None:
    evil = collections.defaultdict(os.getcwd)
    data = codecpickle.dumps(evil)
    with pytest.raises(codecpickle.ForbiddenGlobalError, match=r"posix\.getcwd|os\.getcwd"):
        codecpickle.loads(data, safe=True)


def test_copyreg_reconstructor_is_not_admitted() -> None:
    data = codecpickle.dumps(0)
    assert codecpickle.loads(data, safe=True) == 0
    # A protocol-0 pickle of a plain class instance names copyreg._reconstructor.
    opcodes = pickle.dumps(collections.OrderedDict, protocol=0)
    assert codecpickle.loads(container(opcodes), safe=True) is collections.OrderedDict
    with pytest.raises(codecpickle.ForbiddenGlobalError, match=r"copyreg\._reconstructor"):
        codecpickle.loads(container(b"ccopyreg\n_reconstructor\n."), safe=True)


def test_extension_codes_cannot_bypass_the_allowlist(tmp_path: Path) -> None:
    sentinel = tmp_path / "pwned"
    code = 0x7FF0_0001
    stream = container(b"\x80\x02\x84" + struct.pack("<i", code) + b"X\x00\x00\x00\x00\x85R.")
    copyreg.add_extension("os", "getcwd", code)
    try:
        # Warm the C unpickler's extension cache with a trusted load.
        pickle.loads(b"\x80\x02\x84" + struct.pack("<i", code) + b".")
        with pytest.raises(codecpickle.ForbiddenGlobalError, match=r"os\.getcwd"):
            codecpickle.loads(stream, safe=True)
    finally:
        copyreg.remove_extension("os", "getcwd", code)
    assert not sentinel.exists()
    # With nothing registered, an EXT opcode is simply unknown.
    with pytest.raises(codecpickle.CorruptDataError, match="unregistered extension code"):
        codecpickle.loads(stream, safe=True)


def test_extension_codes_are_resolved_afresh_not_from_the_cache() -> None:
    # The process-wide cache of resolved codes, filled by an earlier load
    # (here poisoned directly), is never consulted: the registry's name is
    # looked up and checked every time.
    code = 0x7FF0_0002
    copyreg.add_extension("collections", "OrderedDict", code)
    copyreg._extension_cache[code] = os.getcwd  # type: ignore[attr-defined]
    try:
        stream = container(b"\x80\x02\x84" + struct.pack("<i", code) + b")R.")
        assert codecpickle.loads(stream, safe=True) == collections.OrderedDict()
    finally:
        copyreg.remove_extension("collections", "OrderedDict", code)


def test_object_array_over_raw_bytes_is_refused() -> None:
    # numpy.ndarray(shape, object dtype, buffer) would treat file bytes as
    # pointers: a crash (or worse) on first access.
    opcodes = pickle.dumps(
        _CallWith(np.ndarray, ((2,), np.dtype("O"), b"A" * 16, 0, None, "C")), protocol=5
    )
    with pytest.raises(codecpickle.CorruptDataError, match="where a list of 2 array elements"):
        codecpickle.loads(container(opcodes), safe=True)
    opcodes = pickle.dumps(
        _CallWith(np.ndarray, ((2,), np.dtype([("a", "O")]), b"A" * 16, 0, None, "C")),
        protocol=5,
    )
    with pytest.raises(codecpickle.CorruptDataError, match="where a list of 2 array elements"):
        codecpickle.loads(container(opcodes), safe=True)


class _CallWith:
    def __init__(self, func: Any, args: tuple[Any, ...]) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> Any:
        return self.func, self.args


@pytest.mark.parametrize(
    ("func", "args"),
    [
        ("view_as", (b"abc", np.ndarray)),
        ("view_as", (np.arange(3), dict)),
        ("masked_array", (dict, np.arange(3), np.zeros(3, bool), 0, False)),
        ("masked_array", (np.ma.MaskedArray, np.arange(3), np.zeros(5, bool), 0, False)),
        ("masked_array", (np.ma.MaskedArray, b"xyz", b"abc", "fill", "hard")),
    ],
)
def test_our_reconstructors_with_hostile_arguments_are_harmless(func: str, args: Any) -> None:
    # view_as and masked_array are named by our own streams, so restricted
    # loads admit them: with any arguments they either build an array or
    # fail with a CodecPickleError.
    from codecpickle import _reconstruct

    opcodes = pickle.dumps(_CallWith(getattr(_reconstruct, func), args), protocol=5)
    try:
        result = codecpickle.loads(container(opcodes), allow=[dict])
    except codecpickle.CodecPickleError:
        return
    assert isinstance(result, np.ndarray)


def test_allow_accepts_objects_and_strings() -> None:
    data = codecpickle.dumps(Path("a/b"))
    with pytest.raises(codecpickle.ForbiddenGlobalError, match="pathlib"):
        codecpickle.loads(data, safe=True)
    cls = type(Path("a"))
    assert codecpickle.loads(data, allow=[cls]) == Path("a/b")
    assert codecpickle.loads(data, allow=[f"{cls.__module__}.{cls.__qualname__}"]) == Path("a/b")


@pytest.mark.parametrize("allow", ["numpy.ndarray", [42], ["noDot"], [lambda: 0], 5])
def test_bad_allow_entries_are_option_errors(allow: Any) -> None:
    with pytest.raises(codecpickle.InvalidOptionError):
        codecpickle.loads(codecpickle.dumps(1), allow=allow)


def test_bad_safe_is_an_option_error() -> None:
    with pytest.raises(codecpickle.InvalidOptionError):
        codecpickle.loads(codecpickle.dumps(1), safe="yes")  # type: ignore[arg-type]


def test_pandas_needs_the_opt_in_set() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(
        {
            "x": np.arange(5),
            "s": list("abcde"),
            "c": pd.Categorical(list("xyxyx")),
            "t": pd.date_range("2020", periods=5, tz="Europe/Paris"),
            "i": pd.array([1, None, 3, 4, 5], dtype="Int64"),
        }
    )
    data = codecpickle.dumps(frame, compress="zstd")
    with pytest.raises(codecpickle.ForbiddenGlobalError):
        codecpickle.loads(data, safe=True)
    loaded = codecpickle.loads(data, allow=codecpickle.PANDAS_GLOBALS)
    pd.testing.assert_frame_equal(loaded, frame)


def test_errors_of_admitted_constructors_are_corrupt_data() -> None:
    # date(2020, 13, 1) raises ValueError: in a restricted load only
    # admitted code ran, so the stream is at fault.
    opcodes = pickle.dumps(_CallWith(datetime.date, (2020, 13, 1)), protocol=5)
    with pytest.raises(codecpickle.CorruptDataError, match="ValueError"):
        codecpickle.loads(container(opcodes), safe=True)


def test_dtype_flags_rewritten_by_build_state_are_refused():
    # Found by the long fuzz run: a datetime dtype whose pickled state sets
    # "holds object pointers" (flags 169), so that multiarray.scalar would
    # treat 8 bytes of the file as a pointer and crash the process.
    honest = pickle.dumps(np.datetime64("2020-01-01"), protocol=4)
    flags = b"J\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00"
    assert honest.count(flags) == 1
    forged = honest.replace(flags, flags[:-1] + bytes([169]))
    with pytest.raises(codecpickle.CorruptDataError, match="flags or layout contradict"):
        codecpickle.loads(container(forged), safe=True)
    assert codecpickle.loads(container(honest), safe=True) == np.datetime64("2020-01-01")


def test_unknown_opcode_is_reported_as_such():
    with pytest.raises(codecpickle.CorruptDataError, match=r"invalid load key, b'\\xa4'"):
        codecpickle.loads(container(b"\x80\x05\xa4."), safe=True)


def test_opcodes_after_stop_are_refused():
    with pytest.raises(codecpickle.CorruptDataError, match="3 opcode bytes follow"):
        codecpickle.loads(container(b"\x80\x05K\x01.XYZ"), safe=True)


def test_several_objects_in_one_stream_load_one_after_another():
    # The restricted unpickler reads opcodes ahead through a buffer; what
    # it holds past STOP must not be lost to the next object.
    objects = [{"a": np.arange(5)}, "text" * 1000, [np.array([1, None], dtype=object)] * 3]
    stream = io.BytesIO()
    for obj in objects:
        codecpickle.dump(obj, stream, compress="zstd")
    codecpickle.dump(objects[0], stream)
    stream.seek(0)
    for obj in [*objects, objects[0]]:
        assert_same(codecpickle.load(stream, safe=True), obj)
    with pytest.raises(EOFError):
        codecpickle.load(stream, safe=True)
