"""Files written by joblib 0.10 to 1.6 (tests/data/joblib, made by
make_all_versions.sh) load with codecpickle, also under safe=True and,
uncompressed, memory-mapped."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import codecpickle
from tests.conftest import assert_same, unmapped
from tests.data.joblib.make_joblib_golden import make_object

DATA = Path(__file__).parent / "data" / "joblib"
FILES = sorted(DATA.glob("joblib-*.joblib"))
_NAME = re.compile(r"joblib-(?P<version>[\d.]+)-(?P<compress>\w+)\.joblib")


def _expected() -> dict:
    expected = make_object()
    # joblib writes a strided view's elements; it loads back contiguous.
    expected["strided_view"] = np.ascontiguousarray(expected["strided_view"])
    return expected


def test_the_golden_files_cover_many_versions_and_every_compressor():
    found = {_NAME.fullmatch(path.name).group("version", "compress") for path in FILES}
    versions = {version for version, _ in found}
    compressors = {compress for _, compress in found}
    assert len(versions) >= 12, versions
    assert {"0.10.3", "1.0.1", "1.2.0"} <= versions
    assert compressors == {"none", "zlib", "gzip", "bz2", "lzma", "xz", "lz4"}
    assert sum(path.stat().st_size for path in FILES) < 2 << 20


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.name)
@pytest.mark.parametrize("safe", [False, True])
def test_golden_file_loads(path, safe):
    assert_same(codecpickle.load(path, safe=safe), _expected())


@pytest.mark.parametrize(
    "path", [path for path in FILES if path.name.endswith("-none.joblib")], ids=lambda p: p.name
)
def test_uncompressed_golden_file_maps(path):
    loaded = codecpickle.load(path, mmap_mode="r")
    mapped = loaded["float64"]
    assert isinstance(mapped, np.memmap)
    assert mapped.filename == str(path.resolve())
    assert_same(unmapped(loaded), _expected())

