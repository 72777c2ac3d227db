"""``python -m ddapps.federated.sweep``: settings line up in one table and figure; a repeated setting is refused."""

from __future__ import annotations

import json

import pytest

from ddapps.federated.experiment import write_experiment
from ddapps.federated.settings import FederatedConfig
from ddapps.federated.sweep import main
from ddapps.federated.wire_bytes import RoundLog, RunLog


def _log(mode: str, seed: int, accuracy: float, up: int) -> RunLog:
    return RunLog(mode=mode, seed=seed, rounds=[RoundLog(round=0, accuracy=10.0),
                                                RoundLog(round=1, bytes_up=up, replies=2, accuracy=accuracy)])  # fmt: skip


def _run(tmp_path, name: str, config: FederatedConfig, subset: list[float], fedavg: list[float]) -> str:
    logs = {"subset": [_log("subset", s, a, 100) for s, a in enumerate(subset)],
            "fedavg": [_log("fedavg", s, a, 5000) for s, a in enumerate(fedavg)]}  # fmt: skip
    write_experiment(tmp_path / name, config, logs, command=name)
    return str(tmp_path / name / "results.json")


def test_settings_line_up_with_ratios_and_paired_differences(tmp_path, capsys) -> None:
    base = FederatedConfig(dataset="digits", clients=2)
    skewed = _run(tmp_path, "skew", base.replace(alpha=0.1), [70.0, 74.0], [90.0, 91.0])
    iid = _run(tmp_path, "iid", base.replace(partitioner="iid", clients=4, fraction=0.5), [88.0, 90.0], [95.0, 95.0])
    out = tmp_path / "sweep"
    assert main(["--run", skewed, "--run", iid, "--out", str(out)]) == 0
    rows = json.loads((out / "sweep.json").read_text())["rows"]
    assert [(r["setting"], r["mode"]) for r in rows] == [
        ("dirichlet a=0.1, 2 clients", "subset"), ("dirichlet a=0.1, 2 clients", "fedavg"),
        ("iid, 4 clients x 0.5", "subset"), ("iid, 4 clients x 0.5", "fedavg")]  # fmt: skip
    first = rows[0]
    assert first["acc_mean"] == pytest.approx(72.0) and first["of_fedavg"] == pytest.approx(144.0 / 181.0)
    assert first["fedavg_bytes_ratio"] == pytest.approx(50.0)
    assert rows[1]["minus_subset"][0] == pytest.approx(18.5)  # fedavg minus subset, paired over seeds 0 and 1
    assert rows[0]["minus_subset"] is None and rows[2]["alpha"] is None
    other = _run(tmp_path, "other", base.replace(alpha=0.1, augment="none"), [60.0, 61.0], [80.0, 82.0])
    assert main(["--run", skewed, "--run", other, "--out", str(tmp_path / "two")]) == 0
    named = {r["setting"] for r in json.loads((tmp_path / "two" / "sweep.json").read_text())["rows"]}
    assert named == {'digits mlp {"width": 128} dsa float32 test, dirichlet a=0.1, 2 clients',
                     'digits mlp {"width": 128} none float32 test, dirichlet a=0.1, 2 clients'}
    assert "+18.50 [" in (out / "sweep.md").read_text() and (out / "sweep.png").stat().st_size > 0
    assert main(["--run", skewed, "--run", skewed, "--out", str(tmp_path / "bad")]) == 2
    assert "two runs of the setting" in capsys.readouterr().err
    (tmp_path / "broken.json").write_text("{}")
    assert main(["--run", str(tmp_path / "broken.json"), "--out", str(tmp_path / "bad")]) == 2
    assert "not a ddapps federated results.json" in capsys.readouterr().err
