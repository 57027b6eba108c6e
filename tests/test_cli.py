"""The command line, run through the installed ``codecpickle`` script in a
subprocess: output, JSON shape, exit statuses, standard input and output."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import codecpickle
from codecpickle._atomic import TEMP_SUFFIX
from codecpickle._transcode import _regroup
from tests.conftest import assert_same

COMMANDS = ("info", "inspect", "verify", "recompress", "convert", "bench", "codecs", "clean")


def _script() -> str:
    # The console script installed next to this interpreter (scripts/bootstrap.sh
    # installs the package), else one on PATH.
    beside = Path(sys.executable).with_name("codecpickle")
    found = str(beside) if beside.exists() else shutil.which("codecpickle")
    assert found, "the codecpickle console script is not installed"
    return found


def cli(*args: str, stdin: bytes | None = None, check_status: int | None = 0) -> Any:
    """Run ``codecpickle ARGS`` and return the completed process (bytes output)."""
    result = subprocess.run(
        [_script(), *args], input=stdin, capture_output=True, timeout=300,
        stdin=None if stdin is not None else subprocess.DEVNULL,
    )
    if check_status is not None:
        assert result.returncode == check_status, (result.returncode, result.stderr.decode())
    return result


def text(result: Any) -> str:
    return result.stdout.decode()


@pytest.fixture(scope="module")
def sample() -> dict[str, Any]:
    rng = np.random.default_rng(5)
    return {
        "smooth": np.linspace(0, 1, 600_000, dtype=np.float32),
        "fortran": np.asfortranarray(rng.random((300, 200))),
        "records": [{"id": index, "name": f"n{index}"} for index in range(20_000)],
    }


@pytest.fixture
def files(tmp_path: Path, sample: dict[str, Any]) -> dict[str, Path]:
    zstd = tmp_path / "zstd.cpkl"
    codecpickle.dump(sample, zstd, compress=("zstd", 3), chunk_size=1 << 16)
    raw = tmp_path / "raw.cpkl"
    codecpickle.dump(sample, raw, compress=None)
    multi = tmp_path / "multi.cpkl"
    with open(multi, "wb") as out:
        codecpickle.dump(sample, out, compress="lz4")
        codecpickle.dump([1, 2, 3], out)
    return {"zstd": zstd, "raw": raw, "multi": multi}


# -- the program as a whole -------------------------------------------------


def test_help_lists_every_command_without_markup():
    out = text(cli("--help"))
    for command in COMMANDS:
        assert f"    {command}" in out
    assert "``" not in out
    assert "COMMAND --help" in out


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_that_reads_as_text(command):
    out = text(cli(command, "--help"))
    assert out.startswith(f"usage: codecpickle {command}")
    assert "``" not in out
    assert ":class:" not in out
    assert ":func:" not in out
    # A description paragraph, not just the options.
    assert len(out.split("\n\n")[1]) > 80


def test_version():
    assert text(cli("--version")).strip() == f"codecpickle {codecpickle.__version__}"


def test_usage_errors_exit_2():
    assert b"invalid choice" in cli("frobnicate", check_status=2).stderr
    assert b"required" in cli(check_status=2).stderr
    assert b"--threads" in cli("verify", "--threads", "0", "x", check_status=2).stderr


def test_python_dash_m_runs_the_same_program():
    result = subprocess.run(
        [sys.executable, "-m", "codecpickle", "codecs"], capture_output=True, text=True, check=True
    )
    assert "zstd" in result.stdout


# -- codecs -----------------------------------------------------------------


def test_codecs_lists_where_each_comes_from():
    out = text(cli("codecs"))
    for name in ("zlib", "gzip", "bz2", "lzma", "lz4", "zstd"):
        line = next(line for line in out.splitlines() if line.startswith(name + " "))
        assert "builtin" in line
        assert "available" in line
    rows = json.loads(cli("codecs", "--json").stdout)
    assert {"name", "source", "version", "available", "error"} <= set(rows[0])
    by_name = {row["name"]: row for row in rows}
    assert by_name["zstd"]["source"] == "builtin"
    assert by_name["zstd"]["available"]


# -- info -------------------------------------------------------------------


def test_info_text(files):
    out = text(cli("info", str(files["zstd"]), str(files["multi"])))
    (described,) = json.loads(cli("info", "--json", str(files["zstd"])).stdout)
    payloads = described["payloads"]
    assert payloads >= 1
    assert f"{files['zstd']}: 1 object, {payloads} payload" in out
    assert 'codec zstd {"level": 3}' in out
    assert "format 2" in out
    assert f"{files['multi']}: 2 objects" in out
    assert "codec lz4" in out
    assert "codec none" in out


def test_info_json_shape_and_sizes(files, sample):
    (result,) = json.loads(cli("info", "--json", str(files["raw"])).stdout)
    assert result["ok"]
    assert result["error"] is None
    assert result["size"] == files["raw"].stat().st_size == result["stored_size"]
    assert result["objects"] == 1
    assert result["payloads"] == 2
    payload_bytes = sample["smooth"].nbytes + sample["fortran"].nbytes
    (stream,) = result["streams"]
    assert stream["payload_bytes"] == payload_bytes
    assert stream["raw_size"] == payload_bytes + stream["opcode_bytes"]
    assert stream["codec"] == "none"
    assert stream["params"] == {}
    assert set(stream) >= {"offset", "version", "codec", "params", "chunk_size", "payloads",
                           "chunks", "raw_size", "stored_size", "ratio", "provider"}
    (compressed,) = json.loads(cli("info", "--json", str(files["zstd"])).stdout)
    assert compressed["raw_size"] == pytest.approx(result["raw_size"], rel=1e-3)
    assert compressed["ratio"] == pytest.approx(compressed["raw_size"] / compressed["size"],
                                                rel=1e-3)
    assert compressed["ratio"] > 1.2


def test_info_reads_standard_input(files):
    (result,) = json.loads(cli("info", "--json", "-", stdin=files["multi"].read_bytes()).stdout)
    assert result["file"] == "-"
    assert result["objects"] == 2
    assert result["size"] == files["multi"].stat().st_size


def test_info_fails_on_truncated_and_foreign_files(tmp_path, files):
    cut = tmp_path / "cut.cpkl"
    cut.write_bytes(files["zstd"].read_bytes()[:-100])
    result = cli("info", str(files["zstd"]), str(cut), check_status=1)
    assert f"{cut}: DAMAGED" in text(result)
    assert f"{files['zstd']}: 1 object" in text(result)  # the good file is still described
    (entry,) = json.loads(cli("info", "--json", str(cut), check_status=1).stdout)
    assert not entry["ok"]
    assert entry["problem"] == "DAMAGED"
    assert "declares" in entry["error"] or "ends inside" in entry["error"]
    foreign = tmp_path / "plain.pkl"
    foreign.write_bytes(b"\x80\x05K\x01.")
    foreign_out = text(cli("info", str(foreign), check_status=1))
    assert "plain pickle" in foreign_out
    assert f"{foreign}: error:" in foreign_out  # not ours, not "damaged"
    assert "No such file" in text(cli("info", str(tmp_path / "missing"), check_status=1))


# -- verify -----------------------------------------------------------------


def test_verify_passes_intact_files(files):
    out = text(cli("verify", *map(str, files.values())))
    assert out.count(": ok (") == 3
    rows = json.loads(cli("verify", "--json", "--decode", str(files["multi"])).stdout)
    assert rows[0]["ok"]
    assert rows[0]["objects"] == 2
    assert rows[0]["offset"] is None
    assert rows[0]["bytes"] == files["multi"].stat().st_size


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x10
    path.write_bytes(bytes(data))


def test_verify_reports_the_first_damage_with_its_offset(files):
    path = files["zstd"]
    (info,) = json.loads(cli("info", "--json", str(path)).stdout)
    size = info["size"]
    # Damage two places; the first one in the file is reported.
    _flip(path, size // 2)
    _flip(path, size - 200)
    (result,) = json.loads(cli("verify", "--json", str(path), check_status=1).stdout)
    assert not result["ok"]
    assert "checksum" in result["error"]
    assert result["offset"] <= size // 2
    assert f"offset {result['offset']}" in result["error"]
    out = text(cli("verify", str(path), check_status=1))
    assert "DAMAGED" in out


def test_verify_checks_raw_payloads_and_standard_input(files):
    path = files["raw"]
    _flip(path, path.stat().st_size // 2)  # inside the large float32 payload
    (result,) = json.loads(
        cli("verify", "--json", "-", stdin=path.read_bytes(), check_status=1).stdout
    )
    assert "RAW_PAYLOAD" in result["error"]


def test_verify_fails_on_truncation(tmp_path, files):
    cut = tmp_path / "cut.cpkl"
    cut.write_bytes(files["zstd"].read_bytes()[:5000])
    (result,) = json.loads(cli("verify", "--json", str(cut), check_status=1).stdout)
    assert "declares" in result["error"] or "ends inside" in result["error"]


# -- recompress -------------------------------------------------------------


def test_recompress_to_another_file(tmp_path, files, sample):
    out = tmp_path / "out.cpkl"
    summary = json.loads(
        cli("recompress", str(files["zstd"]), "-c", "lzma:1", "-o", str(out), "--json").stdout
    )
    assert summary["codec"] == "lzma"
    assert summary["params"] == {"level": 1}
    assert summary["size_after"] == out.stat().st_size
    (info,) = json.loads(cli("info", "--json", str(out)).stdout)
    assert info["streams"][0]["codec"] == "lzma"
    assert_same(codecpickle.load(out), sample)


def test_recompress_round_trip_is_byte_identical(tmp_path, sample):
    # Rewriting with the original codec gives what dump wrote: nothing is lost.
    original = tmp_path / "a.cpkl"
    codecpickle.dump(sample, original, compress=("zstd", 3))
    via = tmp_path / "b.cpkl"
    cli("recompress", str(original), "-c", "gzip", "-o", str(via))
    cli("recompress", str(via), "-c", "none")  # in place
    back = tmp_path / "c.cpkl"
    cli("recompress", str(via), "-c", "zstd:3", "-o", str(back))
    assert back.read_bytes() == original.read_bytes()


def test_recompress_in_place_and_through_pipes(tmp_path, files, sample):
    path = files["multi"]
    cli("recompress", str(path), "--compress", "zstd")
    assert not [name for name in os.listdir(tmp_path) if name.endswith(TEMP_SUFFIX)]
    result = cli("recompress", "-", "-c", "none", "-o", "-", stdin=path.read_bytes())
    assert b"ratio" in result.stderr  # the summary goes to stderr when stdout is the data
    with open(tmp_path / "piped.cpkl", "wb") as out:
        out.write(result.stdout)
    with open(tmp_path / "piped.cpkl", "rb") as back:
        assert_same(codecpickle.load(back), sample)
        assert codecpickle.load(back) == [1, 2, 3]
    (info,) = json.loads(cli("info", "--json", "-", stdin=result.stdout).stdout)
    assert [stream["codec"] for stream in info["streams"]] == ["none", "none"]


def test_recompress_regroups_payload_chunks_to_the_new_chunk_size(tmp_path, sample):
    small = tmp_path / "small.cpkl"
    codecpickle.dump(sample, small, compress="lz4", chunk_size=5000)
    big = tmp_path / "big.cpkl"
    cli("recompress", str(small), "-c", "lz4", "--chunk-size", "70000", "-o", str(big))
    direct = tmp_path / "direct.cpkl"
    codecpickle.dump(sample, direct, compress="lz4", chunk_size=70000)
    assert big.read_bytes() == direct.read_bytes()


def test_regroup_cuts_pieces_into_exact_sizes():
    data = bytes(range(256)) * 40
    pieces = [memoryview(data)[start : start + step]
              for start, step in ((0, 3000), (3000, 5), (3005, 7235))]
    out = list(_regroup(pieces, len(data), 4096))
    assert [piece.nbytes for piece in out] == [4096, 4096, 10240 - 8192]
    assert b"".join(bytes(piece) for piece in out) == data


def test_recompress_refuses_damage_and_bad_usage(tmp_path, files):
    path = files["zstd"]
    before = path.read_bytes()
    _flip(path, len(before) // 2)
    damaged = path.read_bytes()
    result = cli("recompress", str(path), "-c", "lz4", check_status=1)
    assert b"checksum" in result.stderr
    assert b"nothing was written" in result.stderr
    assert path.read_bytes() == damaged
    assert not [name for name in os.listdir(tmp_path) if name.endswith(TEMP_SUFFIX)]
    assert b"frobz" in cli("recompress", str(path), "-c", "frobz", check_status=2).stderr
    assert b"-o" in cli("recompress", "-", "-c", "lz4", check_status=2, stdin=b"").stderr
    assert b"--compress" in cli("recompress", str(path), check_status=2).stderr


# -- bench ------------------------------------------------------------------


def test_bench_json_rows_and_recommendation(files):
    report = json.loads(
        cli("bench", str(files["zstd"]), "--codecs", "none", "lz4", "zstd:1", "--json").stdout
    )
    assert [row["codec"] for row in report["rows"]] == ["none", "lz4", "zstd:1"]
    for row in report["rows"]:
        assert row["size"] > 0
        assert row["write_mb_s"] > 0
        assert row["read_mb_s"] > 0
        assert row["ratio"] == pytest.approx(report["raw_size"] / row["size"], rel=1e-2)
    assert report["rows"][0]["ratio"] < 1.01  # none stores everything
    assert report["recommended"] in ("lz4", "zstd:1")


def test_bench_text_table(files):
    out = text(cli("bench", str(files["raw"]), "--codecs", "none", "zstd"))
    assert "write MB/s" in out
    assert "read MB/s" in out
    assert "recommended: zstd" in out


def test_bench_bad_codec_is_a_usage_error(files):
    assert b"nope" in cli("bench", str(files["raw"]), "--codecs", "nope", check_status=2).stderr


def test_bench_recommends_no_compression_for_random_bytes(tmp_path):
    path = tmp_path / "noise.cpkl"
    codecpickle.dump(np.random.default_rng(1).bytes(3 << 20), path)
    report = json.loads(cli("bench", str(path), "--codecs", "none", "lz4", "--json").stdout)
    assert report["recommended"] == "none"


# -- clean ------------------------------------------------------------------


def _touch(path: Path, age: float) -> None:
    path.write_bytes(b"partial")
    stamp = time.time() - age
    os.utime(path, (stamp, stamp))


def test_clean_removes_only_stale_temporary_files(tmp_path):
    old = tmp_path / f".model.cpkl.0123456789ab{TEMP_SUFFIX}"
    young = tmp_path / f".model.cpkl.ba9876543210{TEMP_SUFFIX}"
    other = tmp_path / f"notes{TEMP_SUFFIX}"
    keep = tmp_path / "model.cpkl"
    _touch(old, 7200)
    _touch(young, 60)
    _touch(other, 7200)
    _touch(keep, 7200)
    nested = tmp_path / "sub"
    nested.mkdir()
    deep = nested / f".x.cpkl.0123456789ab{TEMP_SUFFIX}"
    _touch(deep, 7200)

    out = text(cli("clean", str(tmp_path), "--dry-run"))
    assert f"would remove {old}" in out
    assert "1 stale temporary file " in out
    assert old.exists()

    report = json.loads(cli("clean", str(tmp_path), "--json").stdout)
    assert [entry["path"] for entry in report["files"]] == [str(old)]
    assert report["files"][0]["removed"]
    assert not old.exists()
    assert young.exists()
    assert other.exists()
    assert keep.exists()
    assert deep.exists()

    cli("clean", str(tmp_path), "--older-than", "30s", "--recursive")
    assert not young.exists()
    assert not deep.exists()
    assert other.exists()


def test_clean_usage_and_missing_directory(tmp_path):
    assert b"duration" in cli("clean", str(tmp_path), "--older-than", "soon",
                              check_status=2).stderr
    assert b"not a directory" in cli("clean", str(tmp_path / "nope"), check_status=1).stderr


def test_clean_removes_what_a_killed_dump_leaves(tmp_path):
    code = (
        "import os, codecpickle\n"
        "class Boom:\n"
        "    def __reduce__(self):\n"
        "        os._exit(9)\n"
        f"codecpickle.dump([b'x' * 100000, Boom()], {str(tmp_path / 'out.cpkl')!r})\n"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 9
    (leftover,) = [name for name in os.listdir(tmp_path) if name.endswith(TEMP_SUFFIX)]
    assert not text(cli("clean", str(tmp_path), "--older-than", "0", "--dry-run")).startswith(
        "would remove 0"
    )
    cli("clean", str(tmp_path), "--older-than", "0")
    assert leftover not in os.listdir(tmp_path)


# -- the record walk on every golden file and on damaged copies ---------------


def test_golden_files_pass_info_and_verify():
    golden = sorted(str(path) for path in (Path(__file__).parent / "data" / "v1").glob("*.cpkl"))
    assert golden
    results = json.loads(cli("verify", "--json", "--decode", *golden).stdout)
    assert all(result["ok"] for result in results)
    infos = json.loads(cli("info", "--json", *golden).stdout)
    for info in infos:
        assert info["ok"], info
        assert info["stored_size"] == info["size"]


def test_truncations_and_bit_flips_never_pass_silently(tmp_path, sample):
    # In-process (the same functions the commands run) to try many inputs.
    from codecpickle.cli.info import describe
    from codecpickle.cli.verify import verify_file

    original = codecpickle.dumps(sample, compress="lz4", chunk_size=1 << 15)
    path = tmp_path / "x.cpkl"
    rng = np.random.default_rng(3)
    for cut in sorted(rng.integers(1, len(original), 25)):
        path.write_bytes(original[:cut])
        assert not describe(str(path))["ok"]
        assert not verify_file(str(path), 2)["ok"]
    for offset in sorted(rng.integers(0, len(original), 40)):
        damaged = bytearray(original)
        damaged[offset] ^= 0x01
        path.write_bytes(bytes(damaged))
        if verify_file(str(path), 2)["ok"]:
            # Only bytes no checksum covers (alignment padding) may change
            # unnoticed, and then the data is intact.
            assert_same(codecpickle.load(path), sample)


# -- URLs -------------------------------------------------------------------


def test_info_verify_and_recompress_read_urls(tmp_path, files, http_server, sample):
    http_server.files["/model.cpkl"] = files["zstd"].read_bytes()
    url = http_server.url("/model.cpkl")
    (info,) = json.loads(cli("info", "--json", url).stdout)
    assert info["ok"], info
    assert info["size"] == files["zstd"].stat().st_size
    assert info["streams"][0]["index"] == "trailer"  # read through the trailer, not scanned
    (checked,) = json.loads(cli("verify", "--json", url).stdout)
    assert checked["ok"]
    out = tmp_path / "from-url.cpkl"
    cli("recompress", url, "-c", "lz4", "-o", out.as_uri())
    assert_same(codecpickle.load(out), sample)
    (local,) = json.loads(cli("info", "--json", out.as_uri()).stdout)
    assert local["streams"][0]["codec"] == "lz4"
    missing = cli("info", http_server.url("/nope.cpkl"), check_status=1)
    assert b"nope.cpkl" in missing.stdout


# -- filters ----------------------------------------------------------------


def test_recompress_and_bench_take_filters(tmp_path):
    smooth = {"x": np.linspace(0, 1000, 1 << 20).astype(np.float32)}
    plain = tmp_path / "plain.cpkl"
    codecpickle.dump(smooth, plain)
    shuffled = tmp_path / "shuffled.cpkl"
    unfiltered = tmp_path / "unfiltered.cpkl"
    cli("recompress", str(plain), "-c", "zstd", "--filters", "shuffle", "-o", str(shuffled))
    cli("recompress", str(plain), "-c", "zstd", "--filters", "none", "-o", str(unfiltered))
    assert shuffled.stat().st_size < unfiltered.stat().st_size
    assert_same(codecpickle.load(shuffled), smooth)
    assert b"compressed" in cli("recompress", str(plain), "-c", "none", "--filters", "delta",
                                check_status=2).stderr
    report = json.loads(cli("bench", str(plain), "--codecs", "none", "zstd", "--filters",
                            "none", "shuffle", "--json").stdout)
    assert [row["codec"] for row in report["rows"]] == ["none", "zstd/none", "zstd/shuffle"]
    sizes = {row["codec"]: row["size"] for row in report["rows"]}
    assert sizes["zstd/shuffle"] < sizes["zstd/none"]
