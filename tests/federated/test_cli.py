"""``ddapps federated`` end to end on digits with the smoke budget."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("flwr")

from ddapps.cli import main  # noqa: E402


def test_federated_command_writes_results_with_the_failure(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "fl"
    code = main([
        "federated", "--mode", "oneshot", "--dataset", "digits", "--clients", "3", "--alpha", "0.5",
        "--seeds", "0", "--budget", "smoke", "--ipc", "2", "--max-per-client", "80",
        "--fail-partitions", "1", "--out", str(out), "--quiet",
    ])  # fmt: skip
    assert code == 0
    doc = json.loads((out / "results.json").read_text())
    (row,) = doc["rows"]
    assert row["mode"] == "oneshot" and row["clients"] == 3 and row["rounds"] == 1
    assert row["failures"][0]["kind"] == "error" and row["failures"][0]["seed"] == 0
    assert (out / "report.md").exists() and (out / "accuracy_vs_bytes.png").exists()
    assert "| oneshot | digits | 3 |" in capsys.readouterr().out


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--mode", "gossip"], "unknown federated mode"),
        (["--partitioner", "shards"], "partitioner"),
        (["--fail-partitions", "7"], "fail-partitions"),
        (["--method", "nope"], "nope"),
        (["--set", "iterations=-1"], "iterations"),
        (["--augment", "flip"], "augment"),
        (["--fraction", "1.5"], "fraction"),
        (["--mode", "oneshot-noise", "--method", "random"], "init"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(tmp_path, capsys, extra, message) -> None:  # type: ignore[no-untyped-def]
    base = ["federated", "--dataset", "digits", "--clients", "3", "--budget", "smoke", "--out", str(tmp_path)]
    assert main(base + extra) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ddapps: error:") and message in err and "\n" not in err


def test_select_chooses_on_validation_and_names_the_pick(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "select"
    argv = ["federated", "--mode", "subset", "--dataset", "digits", "--clients", "3", "--budget", "smoke",
            "--ipc", "2", "--max-per-client", "80", "--seeds", "0,1", "--select", "ipc=1,3", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    doc = json.loads((out / "selection.json").read_text())
    assert doc["selected_on"] == "validation" and [c["values"] for c in doc["candidates"]] == [{"ipc": 1}, {"ipc": 3}]
    assert [len(c["accuracies"]) for c in doc["candidates"]] == [2, 2]
    one, three = doc["candidates"]
    assert three["bytes_up"] > one["bytes_up"]  # three images per class cost more bytes than one
    best = max(doc["candidates"], key=lambda c: c["acc_mean"])
    assert doc["selected"]["subset"]["values"] == best["values"] and doc["selected"]["subset"]["flags"].startswith("--ipc ")
    assert "selected on validation" in capsys.readouterr().out
    assert main(argv[:-2] + ["--evaluate", "test", "--out", str(tmp_path / "bad")]) == 2
    assert main(argv[:-4] + ["--select", "lr_img", "--out", str(tmp_path / "bad")]) == 2
    assert "--select expects KEY=V1,V2" in capsys.readouterr().err
