"""``evaluate="validation"``: the server scores on a held-out part of train that no client holds."""

from __future__ import annotations

import pytest
import torch

from ddapps.errors import ConfigError
from ddapps.federated.task import load_benchmark, partitions

from .conftest import tiny_config


def test_validation_is_held_out_of_every_partition_and_the_same_for_every_seed() -> None:
    full = load_benchmark(tiny_config())
    held = load_benchmark(tiny_config(evaluate="validation"))
    assert len(held.train) + len(held.test) == len(full.train)
    assert len(held.test) == pytest.approx(0.1 * len(full.train), abs=held.num_classes)
    assert torch.bincount(held.test.labels, minlength=10).min() > 0  # stratified: every class scored
    rows = lambda split: {tuple(x.flatten().tolist()) for x in split.images}  # noqa: E731
    validation = rows(held.test)
    assert not validation & rows(held.train) and validation <= rows(full.train)
    assert not validation & rows(full.test)  # the test split is not what is scored
    for seed in (0, 1):
        config = tiny_config(evaluate="validation", seed=seed, max_per_client=0)
        assert load_benchmark(config).test.images.equal(held.test.images)
        parts = torch.cat(partitions(config))
        assert int(parts.max()) < len(held.train) and len(parts.unique()) == len(held.train)


def test_unknown_evaluation_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown evaluate 'val'"):
        tiny_config(evaluate="val")
