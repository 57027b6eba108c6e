"""Files written by format version 1 load forever.

The files under tests/data/v1/ were made once by tests/data/make_golden.py
and are never regenerated: if this test fails, the change broke
compatibility with files users already have.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

import codecpickle
from tests.conftest import assert_same

DATA = Path(__file__).parent / "data"
sys.path.insert(0, str(DATA))
import make_golden  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")


@pytest.mark.parametrize("codec", make_golden.CODECS)
def test_golden_file_loads_exactly(codec):
    path = DATA / "v1" / f"{codec}.cpkl"
    assert path.exists(), f"missing golden file {path}"
    loaded = codecpickle.load(path)
    assert_same(loaded, make_golden.golden_object())


@pytest.mark.parametrize("codec", make_golden.CODECS)
def test_golden_file_header_names_its_codec(codec):
    data = (DATA / "v1" / f"{codec}.cpkl").read_bytes()
    assert data.startswith(b"\x89CPK\r\n\x1a\n\x01\x00")
    assert f'"codec":"{codec}"'.encode() in data[:200]


def test_golden_uncompressed_file_maps():
    loaded = codecpickle.load(DATA / "v1" / "none.cpkl", mmap_mode="r")
    assert_same(loaded, make_golden.golden_object())
    assert not loaded["float64"].flags.writeable


@pytest.mark.parametrize("codec", make_golden.CODECS)
def test_today_writes_the_same_bytes_as_the_golden_files(codec):
    # Not a compatibility requirement (codec libraries may change their
    # output), but for the same libraries a change here means the writer
    # changed: check that it was on purpose.
    path = DATA / "v1" / f"{codec}.cpkl"
    fresh = codecpickle.dumps(
        make_golden.golden_object(),
        compress=None if codec == "none" else codec,
        chunk_size=1 << 14,
        threads=1,
    )
    if codec in ("none", "zlib", "gzip", "bz2", "lzma"):
        assert hashlib.sha256(fresh).digest() == hashlib.sha256(path.read_bytes()).digest()
    else:
        assert_same(codecpickle.loads(fresh), make_golden.golden_object())
