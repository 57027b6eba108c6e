"""Files written by every format version load forever.

The files under tests/data/v1/ and tests/data/v2/ were made once by
tests/data/make_golden.py and are never regenerated: if this test fails,
the change broke compatibility with files users already have.
"""

from __future__ import annotations

import hashlib
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

import codecpickle
from codecpickle import _format as fmt
from codecpickle._index import read_index
from tests.conftest import assert_same, unmapped
from tests.test_container import walk

DATA = Path(__file__).parent / "data"
sys.path.insert(0, str(DATA))
import make_golden  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")


VERSIONS = (1, 2)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("codec", make_golden.CODECS)
def test_golden_file_loads_exactly(codec, version):
    path = make_golden.golden_dir(version) / f"{codec}.cpkl"
    assert path.exists(), f"missing golden file {path}"
    loaded = codecpickle.load(path)
    assert_same(loaded, make_golden.golden_object())


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("codec", make_golden.CODECS)
def test_golden_file_header_names_its_codec(codec, version):
    data = (make_golden.golden_dir(version) / f"{codec}.cpkl").read_bytes()
    assert data.startswith(b"\x89CPK\r\n\x1a\n" + bytes([version, 0]))
    assert f'"codec":"{codec}"'.encode() in data[:200]


@pytest.mark.parametrize("version", VERSIONS)
def test_golden_uncompressed_file_maps(version):
    loaded = codecpickle.load(make_golden.golden_dir(version) / "none.cpkl", mmap_mode="r")
    assert type(loaded["float64"]) is np.memmap  # mapped arrays are np.memmap
    assert_same(unmapped(loaded), make_golden.golden_object())
    assert not loaded["float64"].flags.writeable


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("codec", make_golden.CODECS)
def test_golden_files_are_indexed_alike_by_trailer_and_scan(codec, version):
    path = make_golden.golden_dir(version) / f"{codec}.cpkl"
    index = read_index(path)
    scanned = read_index(path, method="scan")
    assert index.method == ("trailer" if version >= 2 else "scan")
    assert (index.opcode_chunks, index.payloads) == (scanned.opcode_chunks, scanned.payloads)
    assert index.size == scanned.size == path.stat().st_size
    assert index.codec == codec
    assert index.version == version
    # Small chunks: several of each kind.
    assert len(index.opcode_chunks) > 1
    assert any(len(p.chunks) > 1 for p in index.payloads) or codec == "none"


def _without_manifest(data: bytes) -> bytes:
    """The stream without its manifest (the writer's library versions) and
    footer, which hold the only bytes that depend on the environment."""
    _, index_size, _ = struct.unpack_from("<QII", data, len(data) - fmt.FOOTER.size)
    start = read_index(data).end_offset + fmt.END_RECORD_V2.size + fmt.CHECKSUM.size
    return data[: start + index_size]


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
        golden = (DATA / "v2" / f"filters-{codec}.cpkl").read_bytes()
        assert _without_manifest(fresh) == _without_manifest(golden)
    else:
        assert_same(codecpickle.loads(fresh), make_golden.filter_object())


@pytest.mark.parametrize("codec", make_golden.CODECS)
def test_today_writes_the_same_bytes_as_the_golden_files(codec):
    # Not a compatibility requirement (codec libraries may change their
    # output), but for the same libraries a change here means the writer
    # changed: check that it was on purpose.
    path = make_golden.golden_dir(fmt.VERSION) / f"{codec}.cpkl"
    fresh = codecpickle.dumps(
        make_golden.golden_object(),
        compress=None if codec == "none" else codec,
        chunk_size=1 << 14,
        threads=1,
    )
    if codec in ("none", "zlib", "gzip", "bz2", "lzma"):
        expected = hashlib.sha256(_without_manifest(path.read_bytes())).digest()
        assert hashlib.sha256(_without_manifest(fresh)).digest() == expected
    else:
        assert_same(codecpickle.loads(fresh), make_golden.golden_object())


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("codec", make_golden.CODECS)
def test_golden_file_loads_exactly_in_a_restricted_load(codec, version):
    # Format-1 files name numpy.ndarray with natively pickled dtypes, and
    # numpy's own reductions for object arrays: a restricted load
    # translates them into checked constructions.  Later files name
    # codecpickle's constructors.
    loaded = codecpickle.load(make_golden.golden_dir(version) / f"{codec}.cpkl", safe=True)
    assert_same(loaded, make_golden.golden_object())


def test_today_names_no_numpy_private_path():
    # numpy data is written through codecpickle's own constructors, so no
    # numpy private path (numpy.core / numpy._core) appears in a file, and
    # it loads under numpy 1.x and 2.x alike.
    fresh = codecpickle.dumps(make_golden.golden_object(), chunk_size=1 << 14, threads=1)
    assert b"codecpickle._construct" in fresh
    for private in (b"numpy.core", b"numpy._core", b"_reconstruct", b"_frombuffer"):
        assert private not in fresh
    new = (make_golden.golden_dir(fmt.VERSION) / "none.cpkl").read_bytes()
    assert b"codecpickle._construct" in new
    assert b"numpy._core" not in new
