"""Commands on s3:// URLs with --storage-option / --storage-options, run
through the console script against the loopback S3 server (authentication
on: without the options, the store refuses the requests)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import codecpickle
from tests.conftest import assert_same
from tests.s3_server import LoopbackS3
from tests.test_cli import cli, text


@pytest.fixture
def sample() -> dict[str, Any]:
    rng = np.random.default_rng(8)
    return {"x": np.linspace(0, 1, 300_000), "y": rng.integers(0, 9, 50_000), "n": list(range(99))}


def _pairs(server: LoopbackS3) -> list[str]:
    """The server's options as repeated --storage-option KEY=VALUE flags
    (client_kwargs as a JSON value)."""
    flags = []
    for key, value in server.storage_options().items():
        spelled = value if isinstance(value, str) else json.dumps(value)
        flags += ["--storage-option", f"{key}={spelled}"]
    return flags


def _json(server: LoopbackS3) -> list[str]:
    return ["--storage-options", json.dumps(server.storage_options())]


@pytest.fixture
def stored(s3_server: LoopbackS3, s3_bucket: str, sample: dict[str, Any]) -> str:
    url = f"s3://{s3_bucket}/model.cpkl"
    codecpickle.dump(sample, url, compress="zstd", storage_options=s3_server.storage_options())
    return url


@pytest.mark.parametrize("spelling", [_pairs, _json], ids=["pairs", "json"])
def test_info_verify_inspect_and_bench_read_s3_with_options(s3_server, stored, spelling):
    flags = spelling(s3_server)
    (info,) = json.loads(cli("info", "--json", stored, *flags).stdout)
    assert info["ok"], info
    assert info["streams"][0]["codec"] == "zstd"
    (checked,) = json.loads(cli("verify", "--json", stored, *flags).stdout)
    assert checked["ok"], checked
    found = json.loads(cli("inspect", "--json", stored, *flags).stdout)
    assert {array["shape"][0] for array in found["objects"][0]["arrays"]} == {300_000, 50_000}
    report = json.loads(cli("bench", stored, "--codecs", "lz4", "--json", *flags).stdout)
    assert report["objects"] == 1
    assert [row["codec"] for row in report["rows"]] == ["lz4"]


def test_without_options_the_store_refuses(stored):
    (info,) = json.loads(cli("info", "--json", stored, check_status=1).stdout)
    assert not info["ok"]
    (checked,) = json.loads(cli("verify", "--json", stored, check_status=1).stdout)
    assert not checked["ok"]


def test_recompress_from_and_to_s3(s3_server, s3_bucket, stored, sample, tmp_path: Path):
    flags = _pairs(s3_server)
    target = f"s3://{s3_bucket}/model-lz4.cpkl"
    cli("recompress", stored, "-c", "lz4", "-o", target, *flags)
    options = s3_server.storage_options()
    assert_same(codecpickle.load(target, storage_options=options), sample)
    assert codecpickle.inspect(target, storage_options=options).objects[0].codec == "lz4"
    # Local input, URL output: the options go to the output only.
    local = tmp_path / "local.cpkl"
    codecpickle.dump(sample, local)
    cli("recompress", str(local), "-c", "zstd:3", "-o", f"s3://{s3_bucket}/up.cpkl", *flags)
    assert_same(codecpickle.load(f"s3://{s3_bucket}/up.cpkl", storage_options=options), sample)


def test_convert_reads_a_pickle_from_s3(s3_server, s3_bucket, sample, tmp_path: Path):
    key = "plain.pkl"
    s3_server.client.put_object(Bucket=s3_bucket, Key=key, Body=pickle.dumps(sample, protocol=5))
    out = tmp_path / "converted.cpkl"
    cli("convert", f"s3://{s3_bucket}/{key}", str(out), *_json(s3_server))
    assert_same(codecpickle.load(out), sample)
    refused = cli("convert", str(out), f"s3://{s3_bucket}/x.cpkl", check_status=2)
    assert b"local path" in refused.stderr


def test_storage_option_values_parse_as_json_else_strings(s3_server, stored):
    # A bad endpoint given as a plain string reaches s3fs as that string
    # (the request then fails: exit 1, not a usage error).
    flags = [*_pairs(s3_server), "--storage-option", "endpoint_url=http://127.0.0.1:9"]
    (info,) = json.loads(cli("info", "--json", stored, *flags, check_status=1).stdout)
    assert not info["ok"]
    # Pairs win over the JSON object.
    good = [*_json(s3_server)[:1], json.dumps({**s3_server.storage_options(),
                                              "endpoint_url": "http://127.0.0.1:9"}),
            "--storage-option", f"endpoint_url={s3_server.endpoint}"]
    (info,) = json.loads(cli("info", "--json", stored, *good).stdout)
    assert info["ok"], info


def test_storage_option_usage_errors(tmp_path: Path):
    local = tmp_path / "x.cpkl"
    codecpickle.dump([1], local)
    result = cli("info", str(local), "--storage-option", "anon=true", check_status=2)
    assert b"apply to URLs" in result.stderr
    result = cli("verify", "s3://bucket/key", "--storage-option", "anon", check_status=2)
    assert b"KEY=VALUE" in result.stderr
    result = cli("verify", "s3://bucket/key", "--storage-options", "[1]", check_status=2)
    assert b"JSON object" in result.stderr
    result = cli("inspect", "s3://bucket/key", "--storage-options", "{nope", check_status=2)
    assert b"JSON object" in result.stderr


def test_help_mentions_storage_options():
    for command in ("info", "inspect", "verify", "recompress", "convert", "bench"):
        assert "--storage-option KEY=VALUE" in text(cli(command, "--help"))
