"""``ddapps bench eval``: both modes on the same set and seeds, side by side, in one run."""

from __future__ import annotations

import json
from pathlib import Path

from ddapps.cli import main

TINY = [
    "--epochs",
    "2",
    "--n-eval",
    "2",
    "--repeats",
    "2",
    "--net-options",
    '{"width": 8}',
    "--threads",
    "1",
    "--quiet",
]


def test_bench_eval_writes_both_modes_speedups_and_accuracies(tmp_path: Path, capsys) -> None:
    out = tmp_path / "be"
    assert main(["bench", "eval", "--dataset", "digits", "--ipc", "2", *TINY, "--out", str(out)]) == 0
    doc = json.loads((out / "results.json").read_text())
    rows = {r["mode"]: r for r in doc["rows"]}
    assert set(rows) == {"sequential", "batched"}
    for row in rows.values():
        assert len(row["seconds_runs"]) == 2 and all(s > 0 for s in row["seconds_runs"])
        assert [len(a) for a in row["accuracies"]] == [2, 2]
        assert all(0 <= a <= 100 for run in row["accuracies"] for a in run)
    speedups = doc["summary"]["speedups"]
    assert len(speedups) == 2
    assert rows["batched"]["speedup_mean"] == sum(speedups) / 2
    pairs = zip(rows["sequential"]["accuracies"], rows["batched"]["accuracies"])
    largest = max(abs(a - b) for s, b in pairs for a, b in zip(s, b))
    assert doc["summary"]["max_accuracy_difference"] == largest
    report = (out / "report.md").read_text()
    assert "| batched |" in report and "Speed-up" in report
    assert "estimated time" in capsys.readouterr().out


def test_bench_eval_refuses_a_single_network(tmp_path: Path, capsys) -> None:
    code = main(["bench", "eval", "--dataset", "digits", "--n-eval", "1", "--out", str(tmp_path / "x")])
    assert code == 2 and "n-eval >= 2" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
