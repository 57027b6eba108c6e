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
def test_golden_file_loads_exactly_in_a_restricted_load(codec):
    # Format-1 files name numpy.ndarray with natively pickled dtypes, and
    # numpy's own reductions for object arrays: a restricted load
    # translates them into checked constructions.
    loaded = codecpickle.load(DATA / "v1" / f"{codec}.cpkl", safe=True)
    assert_same(loaded, make_golden.golden_object())


@pytest.mark.parametrize("codec", ["none", "zstd"])
def test_today_writes_what_restricted_loads_rebuild_by_construction(codec):
    # Not byte-identical to the format-1 files any more: numpy data is now
    # written through codecpickle's own constructors, so that no numpy
    # private path (numpy.core / numpy._core) appears in a file, and it
    # loads under numpy 1.x and 2.x alike.
    fresh = codecpickle.dumps(
        make_golden.golden_object(),
        compress=None if codec == "none" else codec,
        chunk_size=1 << 14,
        threads=1,
    )
    assert_same(codecpickle.loads(fresh, safe=True), make_golden.golden_object())
    again = codecpickle.dumps(
        make_golden.golden_object(),
        compress=None if codec == "none" else codec,
        chunk_size=1 << 14,
        threads=1,
    )
    assert hashlib.sha256(fresh).digest() == hashlib.sha256(again).digest()
    if codec == "none":
        assert b"codecpickle._construct" in fresh
        for private in (b"numpy.core", b"numpy._core", b"_reconstruct", b"_frombuffer"):
            assert private not in fresh
