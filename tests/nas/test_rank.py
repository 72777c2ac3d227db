"""The rank study on a tiny fake benchmark: same architectures, four trainings, honest statistics."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from ddapps.errors import ConfigError
from ddapps.methods import create_distiller
from ddapps.nas import stats
from ddapps.nas.proxy_data import ProxySpec, random_subset
from ddapps.nas.rank import RankConfig, rank_study
from ddapps.nas.space import SpaceSpec
from ddapps.nas.training import StepBudget, train_steps
from ddapps.utils.seeding import make_generator
from tests.conftest import fake_benchmark

SPACE = SpaceSpec(name="small", depth=(1, 2), width=(4, 8), norm=("none", "instance"), act=("relu", "sigmoid"), pool=("avg",))


def _with_val():
    bench = fake_benchmark(per_class=16)
    held = torch.arange(len(bench.train)) % 4 == 0
    return replace(bench, train=bench.train.subset(torch.where(~held)[0]), val=bench.train.subset(torch.where(held)[0]))


def test_rank_study_rows_and_determinism() -> None:
    bench = _with_val()
    synset = create_distiller("random", {}).distill(bench, 2, generator=make_generator(0))
    config = RankConfig(n_archs=5, reference_steps=6, proxy_steps=2, batch_size=4, val_size=12, n_boot=20, seed=3)
    result = rank_study(bench, SPACE, synset, config, proxy_name="distilled:random")
    assert [r["proxy"] for r in result.rows] == ["distilled:random", "random-subset", "early-stop", "reference-seed2"]
    # The noise ceilings: each proxy's two runs, and the reference's second run against its first.
    ceilings = [r["ceiling_spearman"] for r in result.rows]  # None where a tiny run scores every net alike
    assert all(c is None or -1.0 <= c <= 1.0 for c in ceilings[:3]) and ceilings[3] is None
    assert all({"acc2_reference", "acc2_distilled:random"} <= set(a) for a in result.archs)
    assert result.rows[3]["spearman"] == pytest.approx(
        stats.spearman([a["acc2_reference"] for a in result.archs], [a["acc_reference"] for a in result.archs])
    )
    for row in result.rows:
        assert {"dataset", "proxy", "ipc", "n_archs", "spearman", "kendall", "top5_overlap", "proxy_seconds",
                "reference_seconds", "spearman_ci_low", "spearman_ci_high", "kendall_ci_low", "kendall_ci_high"} <= set(row)
        assert row["n_archs"] == 5 and row["ipc"] == 2 and 0.0 <= row["top5_overlap"] <= 1.0
        assert row["reference_seconds"] > 0 and row["proxy_seconds"] > 0
    assert len({a["arch"] for a in result.archs}) == 5
    again = rank_study(bench, SPACE, synset, config, proxy_name="distilled:random")
    strip = lambda archs: [{k: v for k, v in a.items() if not k.startswith("seconds")} for a in archs]  # noqa: E731
    assert strip(result.archs) == strip(again.archs)


def test_train_steps_is_bitwise_reproducible() -> None:
    bench = fake_benchmark()
    nets = []
    for _ in range(2):
        net = SPACE.build({"depth": 2, "width": 4, "norm": "instance", "act": "relu", "pool": "avg"}, 1, 3, 8, generator=make_generator(5))
        train_steps(net, bench.train.images, bench.train.labels, StepBudget(7, 5), generator=make_generator(6))
        nets.append(net)
    for a, b in zip(nets[0].state_dict().values(), nets[1].state_dict().values()):
        assert torch.equal(a, b)


def test_random_subset_and_bad_inputs() -> None:
    bench = fake_benchmark()
    x, y = random_subset(bench.train, 3, make_generator(0))
    assert x.shape[0] == 9 and torch.bincount(y).tolist() == [3, 3, 3]
    with pytest.raises(ConfigError):
        random_subset(bench.train, 13, make_generator(0))
    with pytest.raises(ConfigError):
        ProxySpec.parse("dm")
    with pytest.raises(ConfigError):
        RankConfig(n_archs=1)
    with pytest.raises(ConfigError):
        StepBudget(0)
    synset = create_distiller("random", {}).distill(bench, 2, generator=make_generator(0))
    with pytest.raises(ConfigError, match="validation"):
        rank_study(bench, SPACE, synset, RankConfig(n_archs=2, reference_steps=1, proxy_steps=1))
