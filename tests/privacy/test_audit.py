"""Membership-inference audit: attack scores, the overfit sanity check, the pipeline and the CLI."""

from __future__ import annotations

import dataclasses
import json
import math
import time

import numpy as np
import pytest
import torch

pytest.importorskip("opacus")
pytest.importorskip("sklearn")

import ddapps.privacy.audit as audit  # noqa: E402
from ddapps.cli import main  # noqa: E402
from ddapps.data import load_dataset  # noqa: E402
from ddapps.errors import ConfigError  # noqa: E402
from ddapps.privacy import mia  # noqa: E402
from ddapps.privacy.audit import TARGETS, AuditConfig, run_audit, run_audit_seeds  # noqa: E402
from ddapps.privacy.cli import COLUMNS  # noqa: E402
from tests.conftest import fake_benchmark  # noqa: E402

# batch_real above the class sizes: Poisson rate 1, so no DP batch is ever empty
TINY = dict(pool_size=36, ipc=2, shadows=2, iterations=4, batch_real=64, distill_net_options={"width": 8},
            net_options={"width": 16}, epochs=20, n_boot=20, dpsgd_epochs=2, dpsgd_batch_size=8)


def test_attack_metrics_on_known_scores() -> None:
    gen = torch.Generator().manual_seed(0)
    perfect = mia.evaluate_attack(np.arange(10, 20), np.arange(10), n_boot=50, generator=gen, delta=0.0)
    assert perfect["auc"] == 1.0 and perfect["auc_ci_low"] == 1.0
    assert perfect["tpr_at_1fpr"] == 1.0 and perfect["tpr_at_0.1fpr"] == 1.0 and perfect["tpr_at_1fpr_ci_low"] == 1.0
    # 10 of 10 members caught at no false positive: Clopper-Pearson gives log(0.025^0.1 / (1 - 0.025^0.1))
    assert perfect["eps_lb"] == pytest.approx(math.log(0.025**0.1 / (1 - 0.025**0.1)), rel=1e-6)
    chance = mia.evaluate_attack(np.zeros(10), np.zeros(10), n_boot=10, generator=gen)
    assert chance["auc"] == 0.5 and chance["eps_lb"] == 0.0


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
    assert {r["attack"] for r in rows} == {"loss", "lira"}
    for row in rows:
        assert row["auc"] > 0.6 and row["auc_ci_low"] > 0.5, row
        assert row["private"] is False and row["within_bound"] is None


def test_pipeline_runs_every_target_kind() -> None:
    config = AuditConfig(targets=TARGETS, epsilons=(1.0, math.inf), dp_deterministic_noise=True, **TINY)
    real = fake_benchmark(public_stats=True)
    result = run_audit(real, config, seed=0)
    rows = result["rows"]
    assert [(r["target"], r["epsilon"]) for r in rows[::2]] == [
        ("real", None), ("random", None), ("dm-real", None), ("dm-noise", None), ("dp-dm", 1.0), ("dp-dm", "inf"),
        ("dp-sgd", 1.0), ("dp-sgd", "inf"), ("dp-dc", 1.0), ("dp-dc", "inf")]
    assert {r["attack"] for r in rows} == {"loss", "lira"} and {r["subset"] for r in rows} == {"all"}
    for r in rows:
        assert list(r) == list(COLUMNS)
        assert 0 <= r["auc"] <= 1 and r["auc_ci_low"] <= r["auc"] <= r["auc_ci_high"] and 0 <= r["test_acc"] <= 100
        assert r["tpr_at_1fpr_ci_low"] <= r["tpr_at_1fpr"] <= r["tpr_at_1fpr_ci_high"] and r["eps_lb"] >= 0
        # deterministic noise: nothing is private; finite-epsilon DP rows still compare with the accounted epsilon
        assert r["private"] is False
        assert (r["within_bound"] is None) == (r["epsilon"] in (None, "inf"))
    assert len(result["memorization"]) == 7 and len(result["pairs"]) == 7
    assert {(p["target"], p["label"]) for p in result["privacy"]} >= {("dp-sgd", "dp-sgd(eps=1)"), ("dp-dm", "dp-dm(eps=inf)")}
    # random real selection copies members: nearest-member distance zero
    random_row = next(m for m in result["memorization"] if m["target"] == "random")
    assert random_row["nn_dist_member_min"] == pytest.approx(0.0, abs=1e-5)
    # deterministic (public randomness from the seed, DP noise seeded): checked on the cheaper kinds
    again = dataclasses.replace(config, targets=("random", "dp-dm", "dp-sgd"), epsilons=(1.0,))
    assert run_audit(real, again, seed=0)["rows"] == [r for r in rows if r["target"] in again.targets and r["epsilon"] != "inf"]


def test_secret_noise_rows_are_private_and_compared_with_their_epsilon() -> None:
    config = AuditConfig(targets=("dp-dm", "dp-sgd"), epsilons=(2.0, math.inf), **TINY)
    rows = run_audit(fake_benchmark(public_stats=True), config, seed=0)["rows"]
    finite = [r for r in rows if r["epsilon"] == 2.0]
    assert finite and all(r["private"] and 0 < r["eps_spent"] <= 2.0 for r in finite)
    assert all(isinstance(r["within_bound"], bool) for r in finite)
    assert all(not r["private"] and r["within_bound"] is None for r in rows if r["epsilon"] == "inf")


def test_canary_rows_are_scored_on_canaries() -> None:
    config = AuditConfig(targets=("real",), canaries=8, **TINY)
    real = fake_benchmark()
    split = audit.draw_split(real, config, seed=0)
    canary = split.is_canary
    assert int(canary.sum()) == 8 and int((canary & split.is_member).sum()) == 4  # half the canaries are members
    assert torch.all(split.labels[canary] != real.train.labels[split.pool[canary]])  # every canary is mislabelled
    assert torch.equal(split.labels[~canary], real.train.labels[split.pool[~canary]])
    rows = run_audit(real, config, seed=0)["rows"]
    assert [(r["attack"], r["subset"]) for r in rows] == [("loss", "all"), ("loss", "canary"), ("lira", "all"), ("lira", "canary")]


def test_sizes_are_checked_before_training(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def no_training(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("trained before the sizes were checked")

    monkeypatch.setattr(audit, "build_model", no_training)
    real = load_dataset("digits")
    with pytest.raises(ConfigError, match=r"need at least 2\*ipc=20 member images per class.*use --pool-size >= (\d+)") as err:
        run_audit_seeds(real, AuditConfig(targets=("random",), pool_size=300), [0, 1])
    fits = int(err.value.args[0].rsplit(">= ", 1)[1].split()[0])
    assert 300 < fits <= len(real.train)
    assert audit.size_problem(real, AuditConfig(targets=("random",), pool_size=fits), [0, 1]) is None
    with pytest.raises(ConfigError, match="pool_size"):
        run_audit(fake_benchmark(public_stats=True), AuditConfig(pool_size=1000), seed=0)


def test_bad_config() -> None:
    with pytest.raises(ConfigError, match="unknown target"):
        AuditConfig(targets=("nope",))
    with pytest.raises(ConfigError, match="even"):
        AuditConfig(shadows=3)
    with pytest.raises(ConfigError, match="canaries"):
        AuditConfig(canaries=2)
    with pytest.raises(ConfigError, match="public constants"):
        run_audit(fake_benchmark(), AuditConfig(targets=("dp-sgd",), epsilons=(1.0,), **TINY), seed=0)
    assert AuditConfig().n_canaries == 20 and AuditConfig(pool_size=100).n_canaries == 0


def test_summary_has_mean_and_sample_std_over_seeds() -> None:
    rows = [{"target": "real", "init": "-", "epsilon": None, "attack": "loss", "subset": "all", "auc": a, "tpr_at_0.1fpr": 0.0,
             "tpr_at_1fpr": 0.1, "eps_lb": 0.0, "test_acc": 50.0, "private": False, "within_bound": None} for a in (0.6, 0.8)]
    (entry,) = audit.summarize(rows)
    assert entry["n_seeds"] == 2 and entry["auc_mean"] == pytest.approx(0.7)
    assert entry["auc_std"] == pytest.approx(np.std([0.6, 0.8], ddof=1)) and entry["test_acc_std"] == 0.0
    assert audit.summarize(rows[:1])[0]["auc_std"] is None


def test_cli_writes_outputs(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    rc = main(["privacy", "audit", "--dataset", "digits", "--targets", "real,dp-dm,dp-sgd", "--epsilons", "10",
               "--pool-size", "300", "--ipc", "2", "--shadows", "2", "--canaries", "8", "--iterations", "3",
               "--batch-real", "64", "--distill-width", "8", "--width", "16", "--epochs", "5", "--dpsgd-epochs", "2",
               "--n-boot", "5", "--seeds", "0,1", "--out", str(tmp_path), "--quiet"])
    assert rc == 0
    doc = json.loads((tmp_path / "results.json").read_text())
    assert list(doc["rows"][0]) == list(COLUMNS)
    assert len(doc["rows"]) == 2 * 3 * 2 * 2  # seeds x targets x attacks x subsets
    dp = [r for r in doc["rows"] if r["target"] in ("dp-dm", "dp-sgd")]
    assert all(r["private"] and r["eps_spent"] <= 10.0 and isinstance(r["within_bound"], bool) for r in dp)
    assert len(doc["summary"]) == 3 * 2 * 2 and all(s["n_seeds"] == 2 and s["auc_std"] is not None for s in doc["summary"])
    assert doc["memorization"][0]["epsilon"] == 10.0 and doc["config"]["canaries"] == 8
    assert {p["target"] for p in doc["privacy"]} == {"dp-dm", "dp-sgd"}
    assert (tmp_path / "closest_pairs.png").stat().st_size > 0
    report = (tmp_path / "report.md").read_text()
    assert "Mean ± std over seeds 0, 1" in report and "NOT private" not in report


def test_cli_deterministic_noise_says_not_private(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rc = main(["privacy", "audit", "--dataset", "digits", "--targets", "dp-dm", "--epsilons", "5", "--pool-size", "300",
               "--ipc", "2", "--shadows", "0", "--canaries", "0", "--iterations", "2", "--batch-real", "64",
               "--distill-width", "8", "--width", "16", "--epochs", "2", "--n-boot", "0", "--dp-deterministic-noise",
               "--out", str(tmp_path), "--quiet"])
    assert rc == 0
    doc = json.loads((tmp_path / "results.json").read_text())
    assert [r["private"] for r in doc["rows"]] == [False] and doc["rows"][0]["auc_ci_low"] is None
    assert doc["config"]["dp_deterministic_noise"] is True
    assert "NOT private (deterministic noise)" in (tmp_path / "report.md").read_text()


def test_cli_size_error_names_the_fix(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    rc = main(["privacy", "audit", "--dataset", "digits", "--pool-size", "100", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and "need at least 2*ipc=20 member images per class" in err and "use --pool-size >=" in err
    assert not (tmp_path / "results.json").exists()


def test_cli_bad_target_is_one_line_error(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    rc = main(["privacy", "audit", "--dataset", "digits", "--targets", "bogus", "--out", str(tmp_path)])
    assert rc == 2 and "unknown target" in capsys.readouterr().err


@pytest.mark.slow
def test_default_digits_audit_fits_the_ci_budget(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # exactly `ddapps privacy audit --dataset digits --out DIR`: the defaults are the CPU budget
    start = time.monotonic()
    assert main(["privacy", "audit", "--dataset", "digits", "--out", str(tmp_path)]) == 0
    elapsed = time.monotonic() - start
    doc = json.loads((tmp_path / "results.json").read_text())
    targets = {r["target"] for r in doc["rows"]}
    assert targets == {"real", "random", "dm-real", "dm-noise", "dp-dm", "dp-sgd"}
    assert {r["subset"] for r in doc["rows"]} == {"all", "canary"} and {r["attack"] for r in doc["rows"]} == {"loss", "lira"}
    real_lira = next(r for r in doc["rows"] if r["target"] == "real" and r["attack"] == "lira" and r["subset"] == "all")
    assert real_lira["auc"] > 0.5
    assert elapsed < 600, f"the default digits audit took {elapsed:.0f} s"


def test_utility_cli_writes_curve(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rc = main(["privacy", "utility", "--dataset", "digits", "--methods", "dp-dm,dp-sgd", "--epsilons", "1,inf",
               "--seeds", "0,1", "--train-size", "100", "--ipc", "2", "--iterations", "2", "--batch-real", "64",
               "--distill-width", "8", "--width", "16", "--epochs", "5", "--dpsgd-epochs", "2", "--out", str(tmp_path),
               "--quiet"])
    assert rc == 0
    doc = json.loads((tmp_path / "results.json").read_text())
    assert len(doc["rows"]) == 2 * 2 * 2 and {r["n_train"] for r in doc["rows"]} == {100}
    assert [(s["method"], s["epsilon"]) for s in doc["summary"]] == [("dp-dm", 1.0), ("dp-dm", "inf"), ("dp-sgd", 1.0), ("dp-sgd", "inf")]
    assert all(s["n_seeds"] == 2 and s["acc_std"] is not None and 0 <= s["acc_mean"] <= 100 for s in doc["summary"])
    assert [s["private"] for s in doc["summary"]] == [True, False, True, False]
    assert (tmp_path / "utility.png").stat().st_size > 0 and "utility.png" in (tmp_path / "report.md").read_text()


def test_utility_sizes_are_checked(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    rc = main(["privacy", "utility", "--dataset", "digits", "--methods", "dp-dm", "--train-size", "50", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and "need at least ipc=10 training images per class" in err and "use --train-size >=" in err


def test_combine_merges_seeds_and_refuses_other_settings(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    common = ["privacy", "audit", "--dataset", "digits", "--targets", "real", "--pool-size", "300", "--shadows", "2",
              "--epochs", "3", "--n-boot", "5", "--canaries", "0", "--quiet"]  # fmt: skip
    assert main([*common, "--seeds", "0", "--out", str(tmp_path / "a")]) == 0
    assert main([*common, "--seeds", "1", "--out", str(tmp_path / "b")]) == 0
    assert main(["privacy", "combine", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "c")]) == 0
    doc = json.loads((tmp_path / "c" / "results.json").read_text())
    assert doc["config"]["seeds"] == [0, 1] and all(s["n_seeds"] == 2 for s in doc["summary"])
    assert all(s["auc_std"] is not None for s in doc["summary"])  # a sample std needs the two seeds together
    assert main([*common[:-1], "--epochs", "4", "--seeds", "2", "--quiet", "--out", str(tmp_path / "d")]) == 0
    capsys.readouterr()
    assert main(["privacy", "combine", str(tmp_path / "a"), str(tmp_path / "d"), "--out", str(tmp_path / "e")]) == 2
    assert "differ in more than their seeds" in capsys.readouterr().err
    assert main(["privacy", "combine", str(tmp_path / "a"), str(tmp_path / "a"), "--out", str(tmp_path / "f")]) == 2


def test_combine_puts_utility_curves_of_other_methods_in_one_plot(tmp_path) -> None:  # type: ignore[no-untyped-def]
    common = ["privacy", "utility", "--dataset", "digits", "--epsilons", "5,inf", "--train-size", "200", "--ipc", "2",
              "--iterations", "2", "--batch-real", "64", "--distill-width", "8", "--width", "16", "--epochs", "2",
              "--dpsgd-epochs", "1", "--quiet"]  # fmt: skip
    assert main([*common, "--methods", "dp-dm", "--out", str(tmp_path / "a")]) == 0
    assert main([*common, "--methods", "dp-sgd", "--out", str(tmp_path / "b")]) == 0
    assert main(["privacy", "combine", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "c")]) == 0
    doc = json.loads((tmp_path / "c" / "results.json").read_text())
    assert sorted({s["method"] for s in doc["summary"]}) == ["dp-dm", "dp-sgd"] and len(doc["summary"]) == 4
    assert (tmp_path / "c" / "utility.png").stat().st_size > 1000
    assert main(["privacy", "combine", str(tmp_path / "a"), str(tmp_path / "a"), "--out", str(tmp_path / "d")]) == 2
