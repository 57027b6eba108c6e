"""The ``inspect`` and ``convert`` commands and ``verify --reseal``, run
through the installed console script like the other commands."""

from __future__ import annotations

import json
import pickle
import sys
import types

import numpy as np

import codecpickle
from tests.conftest import assert_same
from tests.test_cli import cli, text


class Tool:  # a user class: a restricted load refuses it until allowed
    def __init__(self, size: int) -> None:
        self.size = size


def test_inspect_lists_arrays_and_marks_globals(tmp_path):
    path = tmp_path / "obj.cpkl"
    codecpickle.dump({"a": np.arange(300_000, dtype=np.int64), "tool": Tool(3)}, path,
                     compress="zstd")
    shown = text(cli("inspect", str(path)))
    assert "<i8 (300000,) order C" in shown
    data = json.loads(text(cli("inspect", "--json", str(path))))
    assert data == {"file": str(path), **codecpickle.inspect(path).to_dict()}
    assert data["objects"][0]["arrays"][0]["shape"] == [300000]
    untrusted = text(cli("inspect", "--untrusted", str(path))).split()
    assert untrusted == codecpickle.untrusted_types(path) == [f"{__name__}.Tool"]
    allowed = text(cli("inspect", "--untrusted", "--allow", f"{__name__}.Tool", str(path)))
    assert allowed.strip() == ""


def test_inspect_reads_standard_input_and_fails_on_damage(tmp_path):
    data = codecpickle.dumps(np.arange(1000))
    from_stdin = json.loads(text(cli("inspect", "--json", "-", stdin=data)))
    assert from_stdin["file"] == "-"
    damaged = tmp_path / "damaged.cpkl"
    damaged.write_bytes(data[: len(data) // 2])
    result = cli("inspect", str(damaged), check_status=1)
    assert str(damaged) in result.stderr.decode()


def test_inspect_runs_nothing_from_the_file(tmp_path):
    module = types.ModuleType("cli_vanishing_module")
    module.Thing = type("Thing", (), {"__module__": "cli_vanishing_module"})
    sys.modules["cli_vanishing_module"] = module
    try:
        path = tmp_path / "thing.cpkl"
        codecpickle.dump([module.Thing()], path)
    finally:
        del sys.modules["cli_vanishing_module"]
    # The subprocess cannot import the module: inspect still names it.
    assert text(cli("inspect", "--untrusted", str(path))).split() == [
        "cli_vanishing_module.Thing"
    ]


def test_convert_a_plain_pickle_and_refuse_unsafe_content(tmp_path):
    obj = {"x": np.linspace(0, 1, 200_000), "names": ["a", "b"]}
    source = tmp_path / "model.pkl"
    source.write_bytes(pickle.dumps(obj, protocol=4))
    target = tmp_path / "model.cpkl"
    shown = text(cli("convert", str(source), str(target), "--compress", "zstd:3", "--safe"))
    assert str(target) in shown
    assert_same(codecpickle.load(target, safe=True), obj)
    assert codecpickle.inspect(target).to_dict()["objects"][0]["codec"] == "zstd"

    unsafe = tmp_path / "tool.pkl"
    unsafe.write_bytes(pickle.dumps(Tool(1)))
    refused = cli("convert", str(unsafe), str(tmp_path / "tool.cpkl"), "--safe", check_status=1)
    assert f"{__name__}.Tool" in refused.stderr.decode()
    assert not (tmp_path / "tool.cpkl").exists()


def test_convert_usage_errors_exit_2(tmp_path):
    source = tmp_path / "a.pkl"
    source.write_bytes(pickle.dumps([1, 2]))
    cli("convert", str(source), str(tmp_path / "a.cpkl"), "--compress", "frobz", check_status=2)


def test_verify_reseal_after_edits_through_r_plus(tmp_path):
    path = tmp_path / "edit.cpkl"
    codecpickle.dump({"a": np.zeros(100_000)}, path)
    mapped = codecpickle.load(path, mmap_mode="r+")
    mapped["a"][:10] = 7.0
    mapped["a"].flush()
    del mapped
    before = text(cli("verify", str(path)))
    assert "not checked" in before
    assert "--reseal" in before
    after = text(cli("verify", "--reseal", str(path)))
    assert "resealed" in after
    assert "not checked" not in text(cli("verify", str(path)))
    assert codecpickle.load(path)["a"][:10].tolist() == [7.0] * 10
    cli("verify", "--reseal", "-", stdin=path.read_bytes(), check_status=2)
