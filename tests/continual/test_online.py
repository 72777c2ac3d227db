"""Online continual learning: experiences arrive as small mini-experiences seen once, and the
distilled memory merges its stored units with each mini-experience's images under a compute cap."""

from __future__ import annotations

import pytest
import torch

from ddapps.continual.distilled_buffer import DistilledBuffer
from ddapps.continual.distilled_memory import ClassMemory, merge_classes
from ddapps.continual.experiment import ContinualConfig, LearnerConfig, run_comparison
from ddapps.continual.scenarios import load_split
from ddapps.continual.storage_policies import BufferOptions
from ddapps.errors import ConfigError
from ddapps.utils.seeding import make_generator

DM_CAP = {"iterations": 3, "batch_real": 16, "net": "mlp", "net_options": {"width": 16}, "dsa": False}


def test_merge_distils_stored_units_with_new_images_and_a_small_class_keeps_all_it_has():
    # Prepare: class 0 has 4 stored units and brings 3 new images; class 1 is new with 2 images.
    gen = make_generator(0)
    stored = {0: ClassMemory(torch.randn(4, 1, 8, 8, generator=gen), torch.zeros(4, dtype=torch.int64))}
    images = torch.randn(5, 1, 8, 8, generator=gen)
    labels = torch.tensor([0, 0, 0, 1, 1])
    # Execute
    out = merge_classes(
        images, labels, [0, 1], 6, stored, method="dm", overrides=DM_CAP, generator=make_generator(1),
        dataset_name="digits", label_mode="hard", num_classes=None,
    )  # fmt: skip
    # Assert: class 0 grows to min(6, 4 + 3) units, class 1 keeps its 2 (it does not cap class 0).
    assert len(out[0]) == 6 and len(out[1]) == 2
    assert out[0].labels.tolist() == [0] * 6 and out[1].labels.tolist() == [1, 1]
    assert torch.isfinite(out[0].images).all()


def test_a_merging_buffer_stays_within_budget_over_an_online_stream():
    from avalanche.benchmarks.scenarios.online import split_online_stream

    scenario, _ = load_split("split-digits")
    buffer = DistilledBuffer(20, "dm", DM_CAP, seed=0, dataset_name="digits", revisit="merge")
    updates = 0
    for experience in scenario.train_stream[:2]:
        for mini in split_online_stream([experience], 25, shuffle=True, seed=0):
            buffer.update_from_dataset(mini.dataset)
            updates += 1
            assert buffer.stored_floats() <= 20 * 64
    # After two experiences, four classes share 20 slots: 5 each, all filled.
    assert updates > 10 and sorted(len(m) for m in buffer.memory.values()) == [5, 5, 5, 5]
    with pytest.raises(ConfigError, match="revisit"):
        DistilledBuffer(20, revisit="append")


def test_an_online_stream_is_seen_once_under_replay():
    common = dict(benchmark="split-digits", buffers=("reservoir",), seeds=(0,))
    with pytest.raises(ConfigError, match="replay"):
        ContinualConfig(**common, protocols=("gdumb",), online_size=10)
    with pytest.raises(ConfigError, match="replay"):
        ContinualConfig(**common, protocols=("replay",), online_size=10, learner=LearnerConfig(epochs=2))
    with pytest.raises(ConfigError, match="online_size"):
        ContinualConfig(**common, protocols=("replay",), online_size=0)


@pytest.mark.slow
def test_online_replay_learns_the_stream_and_is_reproducible():
    scenario, real = load_split("split-digits")
    config = ContinualConfig(
        benchmark="split-digits", buffers=("distilled:dm", "reservoir"), protocols=("replay",), mem_size=50,
        seeds=(0,), learner=LearnerConfig(net="mlp", batch_size=10), online_size=50,
        buffer_options=BufferOptions(overrides=DM_CAP, dataset_name="digits"),
    )  # fmt: skip
    first = run_comparison(config, scenario, real)
    again = run_comparison(config, scenario, real)
    for run, rerun in zip(first, again):
        assert len(run.acc_per_experience) == 5
        assert run.acc_per_experience == rerun.acc_per_experience  # same seed, same stream, same memory
        assert max(run.acc_per_experience) > 15.0  # above the 10% of chance over the ten test classes
