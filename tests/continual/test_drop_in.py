"""The distilled buffer as a new user drops it into Avalanche: defaults that finish, a named budget,
one log line per update, and the budget selection on a validation stream."""

from __future__ import annotations

import json
import logging

import pytest
import torch
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.training.plugins import EvaluationPlugin, ReplayPlugin
from avalanche.training.supervised import Naive

from ddapps.continual.budget import buffer_overrides
from ddapps.continual.distilled_buffer import DistilledBuffer
from ddapps.continual.gdumb import DistilledGDumbPlugin
from ddapps.continual.scenarios import load_split
from ddapps.continual.select import choose
from ddapps.errors import ConfigError
from ddapps.nets import create_net
from ddapps.utils.seeding import make_generator


def test_the_default_buffer_uses_the_small_budget_and_paper_is_one_argument_away() -> None:
    assert DistilledBuffer(50).overrides == buffer_overrides("dm", "small")
    assert DistilledBuffer(50).overrides["iterations"] == 2000
    assert DistilledBuffer(50, budget="paper").overrides == {}  # DM's paper config
    assert DistilledBuffer(50, "dm", {"iterations": 3}).overrides == {"iterations": 3}  # explicit wins
    assert DistilledGDumbPlugin(50).storage_policy.overrides == buffer_overrides("dm", "small")
    assert "iterations" not in buffer_overrides("random")  # keys the method lacks are dropped
    with pytest.raises(ConfigError, match="budget"):
        DistilledBuffer(50, budget="huge")


@pytest.mark.slow
def test_the_drop_in_script_with_defaults_finishes_within_the_memory_budget(caplog) -> None:
    # Prepare: the issue's script, defaults only: Naive + ReplayPlugin(DistilledBuffer(50)), five
    # two-class experiences of digits.
    scenario, real = load_split("split-digits")
    model = create_net("mlp", 1, 10, 8, generator=make_generator(0))
    buffer = DistilledBuffer(max_size=50)
    strategy = Naive(
        model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.01), criterion=torch.nn.CrossEntropyLoss(),
        train_mb_size=32, train_epochs=1, eval_mb_size=512, plugins=[ReplayPlugin(mem_size=50, storage_policy=buffer)],
        evaluator=EvaluationPlugin(accuracy_metrics(stream=True), loggers=[]),
    )  # fmt: skip
    # Execute
    with caplog.at_level(logging.INFO, logger="ddapps.continual"):
        for experience in scenario.train_stream:
            strategy.train(experience)
            # Assert: the float budget holds after every update.
            assert buffer.stored_floats() <= 50 * 64
    # Assert: every class is in memory, and one progress line per update.
    assert sorted(buffer.memory) == list(range(10))
    lines = [r.getMessage() for r in caplog.records if r.name == "ddapps.continual"]
    assert len(lines) == 5 and "small budget" in lines[0] and "image(s) per class" in lines[-1]


def test_a_validation_stream_is_carved_from_training_and_replaces_the_test_stream() -> None:
    _, plain = load_split("split-digits")
    scenario, real = load_split("split-digits", val_fraction=0.2, split_seed=3, evaluate_on="val")
    assert real.val is not None and real.test is real.val
    assert len(real.train) + len(real.val) == len(plain.train)
    counts = real.val.class_counts().float() / plain.train.class_counts().float()
    assert torch.allclose(counts, torch.full_like(counts, 0.2), atol=0.02)  # stratified
    assert sum(len(e.dataset) for e in scenario.test_stream) == len(real.val)
    with pytest.raises(ConfigError, match="validation"):
        load_split("split-digits", evaluate_on="val")


def test_choose_takes_the_cheapest_candidate_the_seeds_cannot_tell_from_the_best() -> None:
    rows = [{"value": 100, "val_acc_mean": 74.4, "ci_low": 66.8}, {"value": 2000, "val_acc_mean": 80.4, "ci_low": 78.4},
            {"value": 5000, "val_acc_mean": 81.5, "ci_low": 80.2}]  # fmt: skip
    assert choose(rows)["value"] == 2000  # inside the best's interval [80.2, ...], 2.5x cheaper
    assert choose([r | {"ci_low": 81.0} for r in rows])["value"] == 5000  # a tight interval: the best
    assert choose(rows[:1])["value"] == 100


@pytest.mark.slow
def test_select_command_scores_candidates_on_validation_only(tmp_path) -> None:
    from ddapps.cli import main

    out = tmp_path / "select"
    code = main([
        "continual-select", "--benchmark", "split-digits", "--candidates", "1,3", "--mem-size", "20", "--seeds", "0,1",
        "--gdumb-epochs", "2", "--quiet", "--out", str(out),
    ])  # fmt: skip
    assert code == 0
    doc = json.loads((out / "results.json").read_text())
    assert doc["selected_on"] == "validation" and doc["selected"]["iterations"] in (1, 3)
    assert [r["value"] for r in doc["rows"]] == [1, 3, None]  # candidates, then the class-balanced reference
    assert doc["config"]["validation_images"] > 0 and all(len(r["val_acc_per_seed"]) == 2 for r in doc["rows"])
    assert all(r["ci_low"] <= r["val_acc_mean"] <= r["ci_high"] for r in doc["rows"])


@pytest.mark.parametrize("strategy_name", ["LwF", "EWC", "SynapticIntelligence"])
def test_the_buffer_works_in_other_strategies_through_the_replay_plugin(strategy_name: str) -> None:
    # Avalanche 0.6's strategy wrappers take no storage policy themselves (Replay and BiC build their
    # plugin from mem_size alone); every SupervisedTemplate strategy takes ReplayPlugin(storage_policy=...).
    from avalanche.training import supervised

    scenario, _ = load_split("split-digits")
    model = create_net("mlp", 1, 10, 8, generator=make_generator(0), width=16)
    buffer = DistilledBuffer(20, "dm", {"iterations": 4, "batch_real": 8, "net": "mlp", "dsa": False}, seed=0)
    extra = {"LwF": {"alpha": 1.0, "temperature": 2.0}, "EWC": {"ewc_lambda": 0.4},
             "SynapticIntelligence": {"si_lambda": 0.1}}[strategy_name]  # fmt: skip
    strategy = getattr(supervised, strategy_name)(
        model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.01), criterion=torch.nn.CrossEntropyLoss(),
        train_mb_size=64, train_epochs=1, eval_mb_size=512, plugins=[ReplayPlugin(mem_size=20, storage_policy=buffer)],
        evaluator=EvaluationPlugin(accuracy_metrics(stream=True), loggers=[]), **extra,
    )  # fmt: skip
    for experience in scenario.train_stream[:2]:
        strategy.train(experience)
        assert buffer.stored_floats() <= 20 * 64
    assert sorted(buffer.memory) == [0, 1, 2, 3]
    assert any(k.startswith("Top1_Acc_Stream") for k in strategy.eval(scenario.test_stream[:2]))


def test_random_class_orders_are_seeded_permutations_that_the_stream_follows() -> None:
    from ddapps.continual.scenarios import class_order, split_scenario

    assert class_order(10) == list(range(10))
    a, b = class_order(10, "random", 0), class_order(10, "random", 1)
    assert sorted(a) == list(range(10)) and a == class_order(10, "random", 0) and a != b
    _, real = load_split("split-digits")
    first = split_scenario(real, 5, a).train_stream[0]
    assert sorted(int(y) for y in first.dataset.targets.uniques) == sorted(a[:2])
    with pytest.raises(ConfigError, match="class order"):
        class_order(10, "sorted")
