"""codecpickle bench on files larger than its sample: bounded memory, the
same share of every array measured, and the output saying so."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import codecpickle
from tests.test_cli import cli, text

MiB = 1 << 20


@pytest.fixture(scope="module")
def two_arrays(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A smooth array (compresses well) and a noisy one (hardly): a sample
    of the first only would overstate the ratio."""
    rng = np.random.default_rng(4)
    path = tmp_path_factory.mktemp("bench") / "two.cpkl"
    obj = {
        "smooth": np.linspace(0, 1, 1 << 20).astype(np.float32),  # 4 MiB
        "noise": rng.integers(0, 255, 4 * MiB, dtype=np.uint8),  # 4 MiB
        "names": [f"row-{index}" for index in range(20_000)],
    }
    codecpickle.dump(obj, path, compress="zstd", chunk_size=MiB)
    return path


def test_sample_measures_the_same_share_of_every_array(two_arrays):
    whole = json.loads(cli("bench", str(two_arrays), "--codecs", "zstd", "--json").stdout)
    assert whole["sampled"] is False
    assert whole["sample_size"] == whole["raw_size"]
    sampled = json.loads(cli("bench", str(two_arrays), "--codecs", "zstd", "--json",
                             "--sample-size", "1M").stdout)
    assert sampled["sampled"] is True
    assert sampled["raw_size"] == whole["raw_size"]
    assert 0.9 * MiB <= sampled["sample_size"] <= 1.05 * MiB
    (row,) = sampled["rows"]
    assert row["ratio"] == pytest.approx(sampled["sample_size"] / row["size"], rel=1e-2)
    # Both arrays weigh in the sample as in the file: the ratio is close to
    # the whole file's (a sample of the smooth array alone would be ~4x off).
    assert row["ratio"] == pytest.approx(whole["rows"][0]["ratio"], rel=0.15)


def test_text_output_says_what_was_measured(two_arrays):
    out = text(cli("bench", str(two_arrays), "--codecs", "lz4", "--sample-size", "2MiB"))
    assert "measured on a sample: 2.0 MiB of" in out
    assert "of every array" in out
    out = text(cli("bench", str(two_arrays), "--codecs", "lz4"))
    assert "sample" not in out


def test_standard_input_is_sampled_too(two_arrays):
    report = json.loads(cli("bench", "-", "--codecs", "lz4", "--json", "--sample-size", "512K",
                            stdin=two_arrays.read_bytes()).stdout)
    assert report["sampled"] is True
    assert report["sample_size"] <= 0.55 * MiB


def test_bad_sample_sizes_are_usage_errors(two_arrays):
    for spelled in ("0", "-3M", "lots"):
        result = cli("bench", str(two_arrays), "--sample-size", spelled, check_status=2)
        assert b"--sample-size" in result.stderr


def test_damage_in_the_sampled_part_is_reported(two_arrays, tmp_path):
    damaged = tmp_path / "damaged.cpkl"
    data = bytearray(two_arrays.read_bytes())
    data[len(data) // 3] ^= 0xFF
    damaged.write_bytes(bytes(data))
    result = cli("bench", str(damaged), "--codecs", "lz4", check_status=1)
    assert b"damaged.cpkl" in result.stderr


# The peak resident size of this process image (VmHWM: unlike ru_maxrss, not
# inherited from the test process the child was forked from), in KiB.
_PEAK_LINE = (
    'print(status, next(line.split()[1] for line in open("/proc/self/status") '
    'if line.startswith("VmHWM:")), file=sys.stderr)'
)
_PEAK = textwrap.dedent("""
    import io, sys
    from codecpickle.cli import main
    if sys.argv[1]:  # standard input read from this file: a stream, never mapped
        sys.stdin = io.TextIOWrapper(open(sys.argv[1], "rb"))
    status = main(sys.argv[2:])
""") + _PEAK_LINE


def _peak_kib(*args: str, stdin: Path | None = None) -> int:
    """The command line's peak resident size (KiB) running ``args``."""
    result = subprocess.run(
        [sys.executable, "-c", _PEAK, "" if stdin is None else str(stdin), *args],
        capture_output=True, timeout=300, check=True,
    )
    status, peak = result.stderr.decode().split()[-2:]
    assert status == "0", result.stderr.decode()
    return int(peak)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_memory_stays_at_the_sample_size_for_a_larger_file(tmp_path):
    big = tmp_path / "big.cpkl"
    codecpickle.dump({"x": (np.arange(160 * MiB) % 251).astype(np.uint8)}, big,
                     compress="lz4", chunk_size=4 * MiB)
    tiny = tmp_path / "tiny.cpkl"
    codecpickle.dump({"x": np.zeros(16, np.uint8)}, tiny, compress="lz4")
    flags = ("--codecs", "lz4", "zstd:1", "--sample-size", "4M", "--json")
    baseline = _peak_kib("bench", str(tiny), *flags)
    peak = _peak_kib("bench", str(big), *flags)
    # Holding the raw content would take 160 MiB more than the baseline.
    assert peak - baseline < 48 * 1024, (peak, baseline)


# -- recompress from a pipe: raw payloads pass through in pieces ---------------


@pytest.fixture(scope="module")
def uncompressed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("raw") / "raw.cpkl"
    rng = np.random.default_rng(9)
    codecpickle.dump({"x": rng.random(3 * MiB // 8 * 10), "y": np.arange(1000)}, path)
    return path


@pytest.mark.parametrize("codec", ["none", "zstd:1"])
def test_recompress_from_standard_input_matches_the_file_path(uncompressed, tmp_path, codec):
    from_file = tmp_path / "from-file.cpkl"
    cli("recompress", str(uncompressed), "-c", codec, "-o", str(from_file))
    piped = cli("recompress", "-", "-c", codec, "-o", "-", stdin=uncompressed.read_bytes())
    assert piped.stdout == from_file.read_bytes()


def test_recompress_from_standard_input_refuses_a_damaged_raw_payload(uncompressed, tmp_path):
    data = bytearray(uncompressed.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the raw payload of "x"
    out = tmp_path / "out.cpkl"
    result = cli("recompress", "-", "-c", "lz4", "-o", str(out), stdin=bytes(data),
                 check_status=1)
    assert b"fail their checksum" in result.stderr
    assert not out.exists()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_recompress_from_a_stream_holds_chunks_not_arrays(tmp_path):
    big = tmp_path / "big.cpkl"
    codecpickle.dump({"x": (np.arange(160 * MiB) % 251).astype(np.uint8)}, big)
    tiny = tmp_path / "tiny.cpkl"
    codecpickle.dump({"x": np.zeros(16, np.uint8)}, tiny)
    out = tmp_path / "out.cpkl"
    flags = ("recompress", "-", "-c", "lz4", "--threads", "2", "-o", str(out))
    baseline = _peak_kib(*flags, stdin=tiny)
    peak = _peak_kib(*flags, stdin=big)
    # Reading the 160 MiB array whole would take that much more.
    assert peak - baseline < 96 * 1024, (peak, baseline)
    assert out.stat().st_size < big.stat().st_size
