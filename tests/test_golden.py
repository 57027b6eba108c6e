"""Files written by format versions 1 and 2 load forever.

The files under tests/data/v1/ and tests/data/v2/ were made once by
tests/data/make_golden.py and are never regenerated once their version has
shipped: if this test fails, the change broke compatibility with files users
already have.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

import codecpickle
from tests.conftest import assert_same
from tests.test_container import walk

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
def test_version_2_golden_file_loads_exactly(codec):
    path = DATA / "v2" / f"{codec}.cpkl"
    assert path.read_bytes().startswith(b"\x89CPK\r\n\x1a\n\x02\x00")
    assert_same(codecpickle.load(path), make_golden.golden_object())


@pytest.mark.parametrize("codec", make_golden.CODECS[1:])
def test_filtered_golden_file_loads_exactly(codec):
    data = (DATA / "v2" / f"filters-{codec}.cpkl").read_bytes()
    for threads in (1, 2):
        assert_same(codecpickle.loads(data, threads=threads), make_golden.filter_object())
    # Every filter is in there, and chunks stored raw.
    _, records = walk(data)
    chunks = [c for r in records if r.kind == 0x02 for c in r.chunks or ()]
    assert {c.filter_id for c in chunks} == {0, 1, 2}
    assert any(c.stored_raw for c in chunks)


@pytest.mark.parametrize("codec", make_golden.CODECS[1:])
def test_today_writes_the_same_filtered_bytes(codec):
    # Not a compatibility requirement (see below): a change means the
    # writer's filter choice changed.
    fresh = codecpickle.dumps(
        make_golden.filter_object(), compress=codec, chunk_size=make_golden.FILTER_CHUNK_SIZE,
        threads=2,
    )
    if codec in ("zlib", "gzip", "bz2", "lzma"):
        assert fresh == (DATA / "v2" / f"filters-{codec}.cpkl").read_bytes()
    else:
        assert_same(codecpickle.loads(fresh), make_golden.filter_object())


@pytest.mark.parametrize("codec", make_golden.CODECS)
def test_today_writes_the_same_bytes_as_the_golden_files(codec):
    # Not a compatibility requirement (codec libraries may change their
    # output), but for the same libraries a change here means the writer
    # changed: check that it was on purpose.
    path = DATA / "v2" / f"{codec}.cpkl"
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
