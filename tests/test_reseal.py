"""``mmap_mode="r+"`` leaves a file that loads without options (the header
flag MUTABLE_RAW_PAYLOADS), and ``codecpickle.reseal`` makes it fully
verified again."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

import codecpickle
from codecpickle import _format as fmt
from codecpickle._reseal import mark_raw_payloads_mutable
from tests.conftest import assert_same

FLAG = fmt.FLAG_MUTABLE_RAW_PAYLOADS


def make_obj() -> dict:
    return {
        "big": np.arange(200_000, dtype=np.float64),
        "small": np.arange(5, dtype=np.int32),
        "meta": {"name": "x" * 5000},
    }


def header_flags(data: bytes, start: int = 0) -> int:
    return fmt.HEADER_FIXED.unpack_from(data, start)[2]


def edit_through_map(path, **options) -> None:
    loaded = codecpickle.load(path, mmap_mode="r+", **options)
    loaded["big"][:10] = -1.0
    loaded["small"][0] = 99
    del loaded


def check_edited(obj: dict) -> None:
    assert (obj["big"][:10] == -1.0).all()
    assert obj["big"][10] == 10.0
    assert obj["small"][0] == 99
    assert obj["meta"] == {"name": "x" * 5000}


def test_r_plus_session_leaves_a_file_that_loads_without_options(tmp_path):
    path = tmp_path / "data.cpkl"
    codecpickle.dump(make_obj(), path)
    before = path.read_bytes()
    assert header_flags(before) == 0
    edit_through_map(path)
    after = path.read_bytes()
    assert header_flags(after) == FLAG
    check_edited(codecpickle.load(path))
    check_edited(codecpickle.loads(after))
    check_edited(codecpickle.load(path, safe=True))
    # Only the flag, the header checksum and the edited data changed.
    meta_size = fmt.HEADER_FIXED.unpack_from(before)[3]
    header_end = fmt.HEADER_FIXED.size + meta_size
    assert after[:10] == before[:10]
    assert after[12:header_end] == before[12:header_end]


def test_a_flagged_file_still_verifies_everything_else(tmp_path):
    path = tmp_path / "data.cpkl"
    codecpickle.dump(make_obj(), path)
    edit_through_map(path)
    data = bytearray(path.read_bytes())
    position = data.index(b"x" * 100)  # inside the opcode stream
    data[position] ^= 1
    with pytest.raises(codecpickle.ChecksumMismatchError):
        codecpickle.loads(bytes(data))


def test_reseal_recomputes_checksums_and_clears_the_flag(tmp_path):
    path = tmp_path / "data.cpkl"
    codecpickle.dump(make_obj(), path)
    edit_through_map(path)
    assert codecpickle.reseal(path) == 2  # "big" and "small" changed
    data = path.read_bytes()
    assert header_flags(data) == 0
    check_edited(codecpickle.load(path))
    # Fully verified again: a change behind its back is caught.
    damaged = bytearray(data)
    damaged[damaged.index(np.float64(10.0).tobytes())] ^= 1
    with pytest.raises(codecpickle.ChecksumMismatchError):
        codecpickle.loads(bytes(damaged))
    # Idempotent.
    assert codecpickle.reseal(path) == 0
    assert path.read_bytes() == data


def test_reseal_of_an_untouched_file_changes_nothing(tmp_path):
    path = tmp_path / "data.cpkl"
    codecpickle.dump(make_obj(), path, compress="zstd")
    before = path.read_bytes()
    assert codecpickle.reseal(str(path).encode()) == 0
    assert path.read_bytes() == before


def test_reseal_refuses_damage_and_changes_nothing(tmp_path):
    path = tmp_path / "data.cpkl"
    codecpickle.dump(make_obj(), path)
    edit_through_map(path)
    data = bytearray(path.read_bytes())
    data[data.index(b"x" * 100)] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(codecpickle.ChecksumMismatchError):
        codecpickle.reseal(path)
    assert path.read_bytes() == bytes(data)


def test_several_streams_in_one_file(tmp_path):
    path = tmp_path / "many.cpkl"
    with open(path, "wb") as file:
        codecpickle.dump(make_obj(), file)
        codecpickle.dump(make_obj(), file)
    with open(path, "r+b") as file:
        codecpickle.load(file)
        second_start = file.tell()
        second = codecpickle.load(file, mmap_mode="r+")
        second["big"][:10] = -1.0
        second["small"][0] = 99
        del second
    data = path.read_bytes()
    assert header_flags(data, 0) == 0
    assert header_flags(data, second_start) == FLAG
    with open(path, "rb") as file:
        first = codecpickle.load(file)
        check_edited(codecpickle.load(file))
    assert first["small"][0] == 0
    assert codecpickle.reseal(path) == 2
    assert header_flags(path.read_bytes(), second_start) == 0
    with open(path, "rb") as file:
        codecpickle.load(file)
        check_edited(codecpickle.load(file))


def test_other_modes_and_compressed_files_leave_the_header_alone(tmp_path):
    path = tmp_path / "data.cpkl"
    codecpickle.dump(make_obj(), path)
    before = path.read_bytes()
    codecpickle.load(path, mmap_mode="r")
    codecpickle.load(path, mmap_mode="c")["big"][0] = 5.0
    assert path.read_bytes() == before
    codecpickle.dump(make_obj(), path, compress="lz4")
    before = path.read_bytes()
    with pytest.warns(UserWarning, match="compressed"):
        codecpickle.load(path, mmap_mode="r+")
    assert path.read_bytes() == before


@pytest.mark.parametrize("version", [1, 2])
def test_flag_in_version_1_and_2_headers_is_accepted_and_resealed(tmp_path, version):
    golden = Path(__file__).parent / "data" / f"v{version}" / "none.cpkl"
    original = golden.read_bytes()
    assert struct.unpack_from("<H", original, 8)[0] == version
    flagged = bytearray(original)
    mark_raw_payloads_mutable(flagged, 0)
    assert header_flags(flagged) == FLAG
    assert_same(codecpickle.loads(bytes(flagged)), codecpickle.loads(original))
    path = tmp_path / "golden.cpkl"
    path.write_bytes(bytes(flagged))
    assert codecpickle.reseal(path) == 0
    assert path.read_bytes() == original


def test_a_reseal_interrupted_before_the_header_leaves_a_loadable_file(tmp_path, monkeypatch):
    from codecpickle import _reseal

    path = tmp_path / "data.cpkl"
    codecpickle.dump(make_obj(), path)
    edit_through_map(path)
    real_write_at = _reseal._write_at

    def crash_on_header(file, offset, data):
        if offset == 0:  # the header comes last: stop there, as a crash would
            raise KeyboardInterrupt
        real_write_at(file, offset, data)

    monkeypatch.setattr(_reseal, "_write_at", crash_on_header)
    with pytest.raises(KeyboardInterrupt):
        codecpickle.reseal(path)
    assert header_flags(path.read_bytes()) == FLAG  # still flagged ...
    check_edited(codecpickle.load(path))  # ... and loadable
    monkeypatch.setattr(_reseal, "_write_at", real_write_at)
    assert codecpickle.reseal(path) == 0  # the checksums were already written
    assert header_flags(path.read_bytes()) == 0
    check_edited(codecpickle.load(path))
