"""ddapps.continual: the distilled storage policy inside plain Avalanche strategies (tiny budgets)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

# `make test` installs the `continual` extra: a missing Avalanche is a failure, not a skip.
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.training.plugins import EvaluationPlugin, ReplayPlugin
from avalanche.training.supervised import Naive

from ddapps.continual.distilled_buffer import DistilledBuffer
from ddapps.continual.distilled_memory import images_per_class
from ddapps.continual.gdumb import DistilledGDumbPlugin
from ddapps.continual.scenarios import load_split, split_scenario
from ddapps.errors import ConfigError
from ddapps.nets import create_net
from ddapps.utils.seeding import make_generator
from tests.conftest import fake_benchmark

DM_TINY = {"iterations": 4, "batch_real": 8, "net": "mlp", "net_options": {"width": 16}, "dsa": False}


@pytest.fixture(scope="module")
def digits():
    return load_split("split-digits")


def _naive(model, plugin, epochs=1):
    return Naive(
        model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.01), criterion=torch.nn.CrossEntropyLoss(),
        train_mb_size=64, train_epochs=epochs, eval_mb_size=512, plugins=[plugin], evaluator=EvaluationPlugin(accuracy_metrics(stream=True), loggers=[]),
    )  # fmt: skip


def test_naive_with_replay_plugin_trains_on_split_digits(digits):
    # Prepare: only Avalanche's documented API around our storage policy.
    scenario, _ = digits
    model = create_net("mlp", 1, 10, 8, generator=make_generator(0), width=16)
    buffer = DistilledBuffer(20, "dm", DM_TINY, seed=0, dataset_name="digits")
    strategy = _naive(model, ReplayPlugin(mem_size=20, storage_policy=buffer))
    # Execute
    for experience in scenario.train_stream[:3]:
        strategy.train(experience)
        # Assert: the budget holds after every experience.
        assert len(buffer.buffer) <= 20
        assert buffer.stored_floats() <= 20 * 64
    results = strategy.eval(scenario.test_stream)
    assert any(k.startswith("Top1_Acc_Stream") for k in results)
    assert sorted(buffer.memory) == [0, 1, 2, 3, 4, 5]
    x, y, t = buffer.buffer[0]
    assert x.shape == (1, 8, 8) and int(y) == 0 and t == 0


def test_soft_labels_are_paid_from_the_float_budget():
    real = fake_benchmark(num_classes=4, per_class=12, size=4)
    scenario = split_scenario(real, 2)
    buffer = DistilledBuffer(8, "random", labels="soft", num_classes=4, dataset_name="fake")
    for experience in scenario.train_stream:
        buffer.post_adapt(None, experience)
        assert buffer.stored_floats() <= buffer.max_floats() == 8 * 16
    # 16 image floats + 4 label floats per unit: 8*16 // (4*20) = 1 unit per class.
    assert {c: len(m) for c, m in buffer.memory.items()} == {0: 1, 1: 1, 2: 1, 3: 1}
    assert buffer.buffer[0][1].shape == (4,)
    assert images_per_class(100, 10, 784) == 10


@pytest.mark.parametrize("mode", ["subselect", "redistill"])
def test_older_classes_shrink_when_the_budget_falls(mode):
    real = fake_benchmark(num_classes=4, per_class=12, size=4)
    scenario = split_scenario(real, 2)
    first, second = scenario.train_stream

    def run():
        buffer = DistilledBuffer(8, "dm", DM_TINY, seed=3, shrink=mode, dataset_name="fake")
        buffer.post_adapt(None, first)
        before = {c: m.images.clone() for c, m in buffer.memory.items()}
        buffer.post_adapt(None, second)
        return before, buffer

    before, buffer = run()
    assert {c: b.shape[0] for c, b in before.items()} == {0: 4, 1: 4}
    assert {c: len(m) for c, m in buffer.memory.items()} == {0: 2, 1: 2, 2: 2, 3: 2}
    for c in (0, 1):
        kept = buffer.memory[c].images
        is_subset = all(any(torch.equal(k, b) for b in before[c]) for k in kept)
        assert is_subset == (mode == "subselect")
    _, again = run()  # same seed -> bitwise the same memory
    for c in buffer.memory:
        assert torch.equal(buffer.memory[c].images, again.memory[c].images)
    buffer.resize(None, 4)
    assert len(buffer.buffer) == 4 and buffer.stored_floats() <= 4 * 16


def test_gdumb_plugin_retrains_from_scratch_on_memory_only(digits):
    scenario, _ = digits
    model = create_net("mlp", 1, 10, 8, generator=make_generator(0), width=16)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    plugin = DistilledGDumbPlugin(mem_size=10, method="random", dataset_name="digits")
    seen: list[tuple[bool, int]] = []
    orig = plugin.after_train_dataset_adaptation

    def spy(strategy, **kwargs):  # is the model at its initial weights, what will it train on?
        orig(strategy, **kwargs)
        reset = all(torch.equal(strategy.model.state_dict()[k], v) for k, v in initial.items())
        seen.append((reset, len(strategy.adapted_dataset)))

    plugin.after_train_dataset_adaptation = spy
    strategy = _naive(model, plugin, epochs=2)
    strategy.train(scenario.train_stream[0])
    trained = {k: v.clone() for k, v in model.state_dict().items()}
    strategy.train(scenario.train_stream[1])
    assert seen == [(True, 10), (True, 8)]  # 10 // 4 classes = 2 each
    assert not all(torch.equal(trained[k], initial[k]) for k in initial)
    assert sorted(plugin.storage_policy.memory) == [0, 1, 2, 3]


def test_bad_arguments_are_config_errors():
    with pytest.raises(ConfigError):
        DistilledBuffer(0)
    with pytest.raises(ConfigError):
        DistilledBuffer(10, shrink="drop")
    with pytest.raises(ConfigError):
        DistilledBuffer(10, labels="soft")
    with pytest.raises(ConfigError):
        images_per_class(3, 4, 16)


def test_cli_writes_results_report_and_plot(tmp_path):
    from ddapps.cli import main

    out = tmp_path / "run"
    code = main([
        "continual", "--benchmark", "split-digits", "--buffer", "distilled:random,reservoir", "--mem-size", "20",
        "--protocol", "gdumb", "--seeds", "0", "--gdumb-epochs", "2", "--quiet", "--out", str(out),
    ])  # fmt: skip
    assert code == 0
    rows = json.loads((out / "results.json").read_text())["rows"]
    keys = {"benchmark", "buffer", "protocol", "mem_size", "seed_count", "final_acc_mean", "final_acc_std",
            "forgetting_mean", "seconds"}  # fmt: skip
    assert [r["buffer"] for r in rows] == ["distilled:random", "reservoir"] and keys <= set(rows[0])
    assert (out / "report.md").is_file() and (out / "accuracy_per_experience.png").is_file()
    assert main(["continual", "--benchmark", "split-nope", "--out", str(out)]) == 2


def test_cli_module_imports_without_avalanche():
    code = "import sys; sys.modules['avalanche'] = None; import ddapps.continual.cli, ddapps.continual"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cpu_budget_is_per_method_and_overridable():
    import argparse

    from ddapps.budgets import get_budget
    from ddapps.continual.cli import add_parser, distill_overrides

    dm_small = get_budget("small").section("continual")["methods"]["dm"]  # the named budget the CLI shares

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["continual", "--out", "x"])
    assert distill_overrides("dm", args) == dm_small and dm_small["iterations"] == 2000
    assert distill_overrides("dc", args)["iterations"] == 100  # the generic budget, keys dc lacks skipped
    assert "iterations" not in distill_overrides("random", args)
    args = parser.parse_args(["continual", "--out", "x", "--distill-iterations", "7", "--distill-set", "lr_img=2.0"])
    assert distill_overrides("dm", args) == {**dm_small, "iterations": 7, "lr_img": 2.0}
    args = parser.parse_args(["continual", "--out", "x", "--paper-distill"])
    assert distill_overrides("dm", args) == {}
