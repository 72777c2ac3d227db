"""``python -m ddapps.federated.combine``: runs of one setting merge into one table with paired intervals."""

from __future__ import annotations

import json

import pytest

from ddapps.federated.combine import main
from ddapps.federated.experiment import write_experiment
from ddapps.federated.settings import FederatedConfig
from ddapps.federated.wire_bytes import RoundLog, RunLog


def _log(mode: str, seed: int, accuracy: float, up: int) -> RunLog:
    return RunLog(mode=mode, seed=seed, rounds=[RoundLog(round=0, accuracy=10.0),
                                                RoundLog(round=1, bytes_up=up, replies=2, accuracy=accuracy)])  # fmt: skip


def test_runs_with_other_seeds_merge_and_pair_and_other_settings_are_refused(tmp_path, capsys) -> None:
    config = FederatedConfig(dataset="digits", clients=2)
    write_experiment(tmp_path / "a", config, {"subset": [_log("subset", 0, 80.0, 100)],
                                             "fedavg": [_log("fedavg", 0, 90.0, 5000)]}, command="a")  # fmt: skip
    write_experiment(tmp_path / "b", config.replace(seed=1), {"subset": [_log("subset", 1, 84.0, 100)],
                                                              "fedavg": [_log("fedavg", 1, 91.0, 5000)]}, command="b")  # fmt: skip
    out = tmp_path / "merged"
    assert main(["--run", str(tmp_path / "a" / "results.json"), "--run", str(tmp_path / "b" / "results.json"),
                 "--out", str(out)]) == 0  # fmt: skip
    rows = {r["mode"]: r for r in json.loads((out / "results.json").read_text())["rows"]}
    assert rows["subset"]["seeds"] == [0, 1] and rows["subset"]["acc_mean"] == pytest.approx(82.0)
    assert rows["subset"]["acc_std"] == pytest.approx(2.0 ** 0.5 * 2.0)  # sample std of 80, 84
    pairs = {(c["mode"], c["minus"]): c for c in json.loads((out / "comparisons.json").read_text())}
    assert pairs[("subset", "fedavg")]["difference"] == pytest.approx(-8.5)
    assert pairs[("subset", "fedavg")]["bytes_up_ratio"] == pytest.approx(50.0)
    assert (out / "accuracy_vs_bytes.png").is_file()
    write_experiment(tmp_path / "c", config.replace(alpha=0.1), {"subset": [_log("subset", 2, 70.0, 100)]}, command="c")
    assert main(["--run", str(tmp_path / "a" / "results.json"), "--run", str(tmp_path / "c" / "results.json"),
                 "--out", str(tmp_path / "bad")]) == 2  # fmt: skip
    assert "differ in ['alpha']" in capsys.readouterr().err
    assert main(["--run", str(tmp_path / "a" / "results.json"), "--run", str(tmp_path / "a" / "results.json"),
                 "--out", str(tmp_path / "bad")]) == 2  # fmt: skip
