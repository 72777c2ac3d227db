"""Fitting iteration counts to a time budget (ddapps.bench.time_budget, used by apps/bench_gpu.sh)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ddapps.bench.time_budget import fit_iterations, main
from ddapps.errors import ConfigError

SECONDS = {"dm": 0.02, "dsa": 2.0, "mtt": 0.3}
ASKED = {"dm": 2000, "dsa": 100, "mtt": 500}
ROOT = Path(__file__).resolve().parents[1]


def test_cheap_method_keeps_its_count_and_leaves_time_to_the_others():
    fitted = fit_iterations(SECONDS, ASKED, seconds_left=400, reserve=45)
    # 265 s to share: dm needs 40 s (kept); mtt and dsa get 112.5 s each
    assert fitted == {"dm": 2000, "dsa": 56, "mtt": 375}
    assert sum(fitted[m] * SECONDS[m] for m in fitted) <= 400 - 3 * 45


def test_counts_are_never_raised_and_never_below_one():
    assert fit_iterations(SECONDS, ASKED, seconds_left=10_000) == ASKED
    assert fit_iterations(SECONDS, ASKED, seconds_left=10, reserve=45) == {"dm": 1, "dsa": 1, "mtt": 1}


def test_missing_or_bad_measurements_are_refused():
    with pytest.raises(ConfigError, match="mtt"):
        fit_iterations({"dm": 0.1}, {"dm": 5, "mtt": 5}, 100)
    with pytest.raises(ConfigError, match="> 0"):
        fit_iterations({"dm": 0.0}, {"dm": 5}, 100)


def test_command_line_prints_counts_in_the_given_order(tmp_path, capsys):
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"rows": [{"method": m, "seconds_per_iter": s} for m, s in SECONDS.items()]}))
    assert main([str(results), "400", "45", "mtt=500", "dm=2000", "dsa=100"]) == 0
    assert capsys.readouterr().out.split() == ["375", "2000", "56"]
    assert main([str(results), "400", "45", "zca=3"]) == 2
    assert "zca" in capsys.readouterr().err
    for bad in (["missing.json", "400", "45", "dm=3"], [str(results), "400", "45", "dm=three"]):
        assert main(bad) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: time_budget:") and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_bench_gpu_script_cpu_dry_run_fits_its_budget(tmp_path):
    """apps/bench_gpu.sh end to end on the CPU (digits, tiny nets): with a budget already spent,
    every method runs the 1 iteration the fitting leaves, and summary.json records it."""
    env = os.environ | {
        "PYTHON": sys.executable, "DEVICE": "cpu", "DATASET": "digits", "IPC": "1", "ITERS_DM": "4",
        "ITERS_DSA": "4", "ITERS_MTT": "4", "EVAL_EPOCHS": "2", "N_EVAL": "1", "EXPERTS": "1",
        "EXPERT_EPOCHS": "2", "WIDTH": "8", "BATCH_REAL": "16", "SPEED_ITERS": "1", "SPEED_REPEATS": "1",
        "MATMUL_SIZE": "128", "BUDGET_S": "1",
    }
    done = subprocess.run(["bash", str(ROOT / "apps" / "bench_gpu.sh"), str(tmp_path / "out")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "iterations dm 1, dsa 1, mtt 1" in done.stdout
    rows = json.loads((tmp_path / "out" / "summary.json").read_text())["rows"]
    assert [(r["method"], r["iterations"]) for r in rows] == [("dm", 1), ("dsa", 1), ("mtt", 1)]
    assert all(r["seconds_per_iter"] > 0 and 0 <= r["acc_mean"] <= 100 for r in rows)
