"""``bench core`` end to end on tiny fake data: the table, results.json schema, report, plot, grids."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ddapps.bench.core import bench_core
from ddapps.budgets import get_budget
from ddapps.errors import ConfigError
from tests.conftest import fake_benchmark


def test_bench_core_writes_table_and_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = bench_core(fake_benchmark(), ["random", "dm"], [1, 2], get_budget("smoke"), tmp_path, progress=False)
    assert [(r["method"], r["ipc"]) for r in rows] == [("random", 1), ("dm", 1), ("random", 2), ("dm", 2)]
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["command"] == "bench core" and len(doc["rows"]) == 4
    for row in doc["rows"]:
        assert 0 <= row["acc_mean"] <= 100 and row["n_eval"] == 2 and row["distill_seconds"] >= 0
    assert "± " in (tmp_path / "report.md").read_text()
    assert (tmp_path / "accuracy_vs_ipc.png").stat().st_size > 1000
    assert sorted(p.name for p in (tmp_path / "grids").iterdir()) == [
        "dm_ipc1.png", "dm_ipc2.png", "random_ipc1.png", "random_ipc2.png"
    ]
    assert "| dm | 2 |" in (tmp_path / "report.md").read_text()
    assert capsys.readouterr().out == ""  # library code logs; only the command line prints


def test_bench_core_fails_fast_on_bad_method_or_ipc(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown method"):
        bench_core(fake_benchmark(), ["nope"], [1], get_budget("smoke"), tmp_path, progress=False)
    with pytest.raises(ConfigError, match="smallest class"):
        bench_core(fake_benchmark(), ["random"], [100], get_budget("smoke"), tmp_path, progress=False)
    assert not any(tmp_path.iterdir())


def test_unknown_budget() -> None:
    with pytest.raises(ConfigError, match="small"):
        get_budget("huge")


def test_bench_core_resume_reuses_finished_pairs_only(tmp_path: Path) -> None:
    budget = get_budget("smoke")
    first = bench_core(fake_benchmark(), ["random", "dm"], [1], budget, tmp_path, progress=False)
    pair = tmp_path / "pairs" / "dm_ipc1.json"
    saved = json.loads(pair.read_text())
    saved["row"]["acc_mean"] = -1.0  # a marker: only a reused row can carry it
    pair.write_text(json.dumps(saved))
    (tmp_path / "pairs" / "random_ipc1.json").write_text("{truncated")
    again = bench_core(fake_benchmark(), ["random", "dm"], [1], budget, tmp_path, progress=False, resume=True)
    by_method = {row["method"]: row for row in again}
    assert by_method["dm"]["acc_mean"] == -1.0
    assert by_method["random"]["acc_mean"] == next(r for r in first if r["method"] == "random")["acc_mean"]
    fresh = bench_core(fake_benchmark(), ["dm"], [1], budget, tmp_path, progress=False, resume=False)
    assert fresh[0]["acc_mean"] != -1.0


def test_bench_core_trains_experts_once_per_dataset(tmp_path: Path) -> None:
    rows = bench_core(fake_benchmark(), ["mtt"], [1, 2], get_budget("smoke"), tmp_path, progress=False)
    cached = list((tmp_path / "experts").glob("*.safetensors"))
    assert len(cached) == 1 and len(rows) == 2
    stamp = cached[0].stat().st_mtime_ns
    bench_core(fake_benchmark(), ["mtt"], [2], get_budget("smoke"), tmp_path, progress=False)
    assert cached[0].stat().st_mtime_ns == stamp  # reused, not retrained


def test_bench_core_card_puts_each_ipc_sets_on_one_card(tmp_path: Path) -> None:
    from ddapps.bench.card import CardSettings

    card = CardSettings(regimes=("hard",), augment=(False,), baselines=("random",), nets=("mlp",), n_eval=2,
                        eval_epochs=1, budget="smoke")  # fmt: skip
    budget = get_budget("smoke")
    bench_core(fake_benchmark(), ["random", "dm", "herding"], [1, 2], budget, tmp_path, progress=False, card=card)
    for ipc in (1, 2):
        data = json.loads((tmp_path / f"card_ipc{ipc}" / "card.json").read_text())
        assert data["set_rows"] == ["dm", "herding"] and data["baseline_ipc"] == ipc  # random is the baseline row
        assert {r["row"] for r in data["results"]} == {"dm", "herding", "random"}
        assert data["sets"]["dm"]["distill_seconds"] is not None
    assert (tmp_path / "sets" / "dm_ipc2.safetensors").is_file()
    (tmp_path / "sets" / "dm_ipc1.safetensors").unlink()  # resume reruns a pair whose set the card needs
    stamp = (tmp_path / "pairs" / "dm_ipc2.json").stat().st_mtime_ns
    bench_core(fake_benchmark(), ["dm"], [1, 2], budget, tmp_path, progress=False, resume=True, card=card)
    assert (tmp_path / "sets" / "dm_ipc1.safetensors").is_file()
    assert (tmp_path / "pairs" / "dm_ipc2.json").stat().st_mtime_ns == stamp
