"""The rank study against NAS-Bench-201's ground truth: sampling, scores, zero-cost baselines, the command."""

from __future__ import annotations

import json

import pytest
import torch

from ddapps.errors import ConfigError
from ddapps.nas import stats
from ddapps.nas.nb201 import all_archs, build_nb201, format_arch, is_connected
from ddapps.nas.truth_study import TruthStudyConfig, sample_archs
from ddapps.nas.zero_cost import param_count, synflow, zero_cost_score
from ddapps.utils.seeding import make_generator
from tests.conftest import SHARED_DATA


def _fake_truth() -> dict:
    """Every cell with a distinct made-up accuracy (a fixed permutation of 0..15624 / 200)."""
    archs = list(all_archs())
    order = torch.randperm(len(archs), generator=make_generator(7)).tolist()
    return {a: {"cifar10": order[i] / 200.0} for i, a in enumerate(archs)}


def test_top_fraction_scores_and_regret_on_a_known_ranking():
    truth = [float(i) for i in range(20)]  # architecture i has ground truth i
    perfect, reversed_ = truth[:], truth[::-1]
    assert stats.top_fraction_overlap(perfect, truth, 0.1) == 1.0  # top 2 of 20
    assert stats.top_fraction_overlap(reversed_, truth, 0.1) == 0.0
    assert stats.top_fraction_spearman(perfect, truth, 0.2) == pytest.approx(1.0)
    assert stats.top_fraction_spearman(reversed_, truth, 0.2) == pytest.approx(-1.0)
    assert stats.regret(perfect, truth) == 0.0 and stats.regret(reversed_, truth) == 19.0
    with pytest.raises(ConfigError):
        stats.top_count(20, 0.0)


def test_the_paired_bootstrap_separates_a_good_proxy_from_a_bad_one_on_the_same_architectures():
    gen = make_generator(0)
    truth = torch.rand(40, generator=gen).tolist()
    good = [t + 0.05 * float(torch.randn(1, generator=gen)) for t in truth]
    bad = torch.rand(40, generator=gen).tolist()
    ci = stats.paired_bootstrap_difference(stats.spearman, good, bad, truth, n_boot=300, generator=make_generator(1))
    assert ci.low is not None and ci.low > 0.3 and ci.n_valid == 300
    same = stats.paired_bootstrap_difference(stats.spearman, good, good, truth, n_boot=50, generator=make_generator(1))
    assert same.low == same.high == 0.0


def test_stratified_sampling_spans_the_accuracy_range_with_connected_cells_only():
    truth = _fake_truth()
    archs = sample_archs(truth, 30, "stratified", "cifar10", make_generator(0))
    accs = sorted(truth[a]["cifar10"] for a in archs)
    connected = sorted(truth[a]["cifar10"] for a in truth if is_connected(a))
    assert len(set(archs)) == 30 and all(is_connected(a) for a in archs)
    assert accs[0] <= connected[len(connected) // 30] and accs[-1] >= connected[-len(connected) // 30 - 1]
    assert archs == sample_archs(truth, 30, "stratified", "cifar10", make_generator(0))  # seeded


def test_top_heavy_sampling_draws_half_from_the_best_five_percent():
    truth = _fake_truth()
    archs = sample_archs(truth, 20, "top-heavy", "cifar10", make_generator(0))
    connected = sorted(truth[a]["cifar10"] for a in truth if is_connected(a))
    cut = connected[len(connected) - int(0.05 * len(connected))]
    assert sum(truth[a]["cifar10"] >= cut for a in archs) == 10
    with pytest.raises(ConfigError, match="sampling"):
        TruthStudyConfig(sampling="best")


def test_zero_cost_scores_see_no_data_and_leave_the_network_untouched():
    conv = ("nor_conv_3x3",) * 6
    skip = ("skip_connect",) * 6
    net = build_nb201(conv, 3, 10, channels=4, cells_per_stage=1, generator=make_generator(0))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    score = synflow(net, (3, 16, 16))
    assert score > 0 and all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert synflow(net, (3, 16, 16)) == score  # deterministic
    small = build_nb201(skip, 3, 10, channels=4, cells_per_stage=1, generator=make_generator(0))
    assert param_count(net) > param_count(small) == zero_cost_score("params", small, (3, 16, 16))
    with pytest.raises(ConfigError, match="zero-cost"):
        zero_cost_score("jacov", net, (3, 16, 16))


@pytest.mark.slow
def test_the_nas_bench_201_rank_command_runs_on_cifar10_with_a_tiny_budget(tmp_path):
    from ddapps.cli import main

    out = tmp_path / "nb201"
    code = main([
        "nas", "rank", "--space", "nas-bench-201", "--dataset", "cifar10", "--data-dir", str(SHARED_DATA),
        "--proxy", "distilled:dm", "--ipc", "1", "--sample", "6", "--seeds", "0,1", "--proxy-steps", "2",
        "--batch-size", "16", "--val-size", "40", "--n-boot", "20", "--nb201-channels", "4", "--proxy-resolution", "16",
        "--distill-set", "iterations=2", "--distill-set", "batch_real=8", "--distill-set", "dsa=false",
        "--herding-set", "feature_epochs=1", "--herding-set", "feature_samples=200", "--herding-set", 'net_options={"width":8}',
        "--threads", "1", "--quiet", "--out", str(out),
    ])  # fmt: skip
    assert code == 0
    result = json.loads((out / "results.json").read_text())
    proxies = {r["proxy"] for r in result["rows"]}
    assert proxies == {"distilled:dm", "herding", "random-subset", "early-stop", "params", "synflow"}
    assert len(result["architectures"]) == 6 and len(result["per_seed"]) == 12
    assert {c["baseline"] for c in result["comparisons"]} >= {"random-subset", "params", "synflow"}
    assert all(r["ceiling_spearman_mean"] is not None for r in result["rows"] if r["kind"] == "data")
    assert (out / "truth_scatter.png").is_file() and "Paired differences" in (out / "report.md").read_text()
    truth = {a["arch"]: a["truth"] for a in result["architectures"]}
    assert all(is_connected(tuple(op.split("~")[0] for op in k.replace("+", "").split("|") if op)) for k in truth)
    assert format_arch(("none",) * 6) not in truth
    # A missing ground-truth file is one clear line, before any data loads.
    assert main(["nas", "rank", "--space", "nas-bench-201", "--dataset", "cifar10", "--truth",
                 str(tmp_path / "none.csv"), "--out", str(tmp_path / "x")]) == 2  # fmt: skip


@pytest.mark.slow
def test_a_tpe_search_on_nas_bench_201_reports_the_ground_truth_of_its_pick_and_of_random_search(tmp_path):
    from safetensors.torch import load_file

    from ddapps.cli import main
    from ddapps.nas.nb201 import parse_arch

    out = tmp_path / "search"
    code = main([
        "nas", "search", "--space", "nas-bench-201", "--dataset", "cifar10", "--data-dir", str(SHARED_DATA),
        "--proxy", "distilled:dm", "--ipc", "1", "--distill-set", "iterations=2", "--distill-set", "batch_real=8",
        "--distill-set", "dsa=false", "--strategy", "tpe", "--trials", "3", "--proxy-steps", "2", "--batch-size", "16",
        "--val-size", "40", "--retrain-steps", "2", "--nb201-channels", "4", "--threads", "1", "--quiet",
        "--out", str(out),
    ])  # fmt: skip
    assert code == 0
    result = json.loads((out / "results.json").read_text())
    assert [r["strategy"] for r in result["rows"]] == ["tpe", "random"]
    for row in result["rows"]:
        assert row["trials"] == 3 and row["picked_truth"] <= row["best_visited_truth"] <= row["space_best_truth"]
        assert row["regret"] == pytest.approx(row["space_best_truth"] - row["picked_truth"])
    exported = json.loads((out / "best_architecture.json").read_text())
    assert exported["arch"] == result["rows"][0]["picked"] and len(parse_arch(exported["arch"])) == 6
    weights = load_file(str(out / "best_weights.safetensors"))
    net = build_nb201(parse_arch(exported["arch"]), 3, 10, channels=4, cells_per_stage=1)
    net.load_state_dict(weights)  # the exported weights are the exported architecture's
