"""Membership-inference audit: attack scores, the overfit sanity check, the pipeline and the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

pytest.importorskip("opacus")
pytest.importorskip("sklearn")

from ddapps.cli import main  # noqa: E402
from ddapps.data import load_dataset  # noqa: E402
from ddapps.errors import ConfigError  # noqa: E402
from ddapps.privacy import mia  # noqa: E402
from ddapps.privacy.audit import TARGETS, AuditConfig, run_audit  # noqa: E402
from tests.conftest import fake_benchmark  # noqa: E402

TINY = dict(pool_size=36, ipc=2, shadows=2, iterations=4, batch_real=4, distill_net_options={"width": 8},
            net_options={"width": 16}, epochs=20, n_boot=20)


def test_attack_metrics_on_known_scores() -> None:
    gen = torch.Generator().manual_seed(0)
    perfect = mia.evaluate_attack(np.arange(10, 20), np.arange(10), n_boot=50, generator=gen)
    assert perfect["auc"] == 1.0 and perfect["tpr_at_1fpr"] == 1.0 and perfect["auc_ci_low"] == 1.0
    chance = mia.evaluate_attack(np.zeros(10), np.zeros(10), n_boot=10, generator=gen)
    assert chance["auc"] == 0.5


def test_logit_confidence_matches_definition() -> None:
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
    p = logits.softmax(1)[torch.arange(2), torch.tensor([0, 2])]
    expected = torch.log(p) - torch.log1p(-p)
    assert torch.allclose(mia.logit_confidence(logits, torch.tensor([0, 2])), expected, atol=1e-5)


def test_lira_ranks_in_distribution_higher() -> None:
    shadow_in = torch.tensor([[True, False], [False, True], [True, False], [False, True]])
    shadow_phi = torch.where(shadow_in, torch.tensor(5.0), torch.tensor(0.0)) + torch.tensor([[0.1], [-0.1], [0.2], [-0.2]])
    scores = mia.lira_scores(torch.tensor([5.0, 0.0]), shadow_phi, shadow_in)
    assert scores[0] > 0 > scores[1]


def test_overfit_model_is_detected() -> None:
    # a tiny real subset (50 members of digits) trained long: membership must leak
    real = load_dataset("digits")
    config = AuditConfig(targets=("real",), pool_size=100, shadows=2, epochs=200, n_boot=200)
    rows = run_audit(real, config, seed=0)["rows"]
    for row in rows:
        assert row["auc"] > 0.6 and row["auc_ci_low"] > 0.5, row


def test_pipeline_runs_every_target_kind() -> None:
    config = AuditConfig(targets=TARGETS, epsilons=(1.0, math.inf), **TINY)
    result = run_audit(fake_benchmark(), config, seed=0)
    rows = result["rows"]
    assert [(r["target"], r["epsilon"]) for r in rows[::2]] == [
        ("real", None), ("random", None), ("dm-real", None), ("dm-noise", None), ("dp-dm", 1.0), ("dp-dm", "inf"),
        ("dp-dc", 1.0), ("dp-dc", "inf")]
    assert {r["attack"] for r in rows} == {"loss", "lira"}
    for r in rows:
        assert 0 <= r["auc"] <= 1 and r["auc_ci_low"] <= r["auc"] <= r["auc_ci_high"] and 0 <= r["test_acc"] <= 100
    assert len(result["memorization"]) == 7 and len(result["pairs"]) == 7
    # random real selection copies members: nearest-member distance zero
    random_row = next(m for m in result["memorization"] if m["target"] == "random")
    assert random_row["nn_dist_member_min"] == pytest.approx(0.0, abs=1e-5)
    assert run_audit(fake_benchmark(), config, seed=0)["rows"] == rows  # deterministic


def test_bad_config() -> None:
    with pytest.raises(ConfigError, match="unknown target"):
        AuditConfig(targets=("nope",))
    with pytest.raises(ConfigError, match="pool_size"):
        run_audit(fake_benchmark(), AuditConfig(pool_size=1000), seed=0)


def test_cli_writes_outputs(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    rc = main(["privacy", "audit", "--dataset", "digits", "--targets", "real,dp-dm", "--epsilons", "10",
               "--pool-size", "200", "--ipc", "2", "--shadows", "1", "--iterations", "3", "--batch-real", "4",
               "--distill-width", "8", "--width", "16", "--epochs", "5", "--n-boot", "5", "--out", str(tmp_path), "--quiet"])
    assert rc == 0
    doc = json.loads((tmp_path / "results.json").read_text())
    assert set(doc["rows"][0]) == {"target", "init", "epsilon", "attack", "auc", "auc_ci_low", "auc_ci_high", "tpr_at_1fpr", "test_acc"}
    assert len(doc["rows"]) == 4 and doc["memorization"][0]["epsilon"] == 10.0
    assert (tmp_path / "closest_pairs.png").stat().st_size > 0 and (tmp_path / "report.md").is_file()


def test_cli_bad_target_is_one_line_error(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    rc = main(["privacy", "audit", "--dataset", "digits", "--targets", "bogus", "--out", str(tmp_path)])
    assert rc == 2 and "unknown target" in capsys.readouterr().err
