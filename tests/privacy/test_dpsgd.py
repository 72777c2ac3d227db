"""DP-SGD baseline: the accounted epsilon respects the target, the noise matters, the record is complete."""

from __future__ import annotations

import math

import pytest
import torch

pytest.importorskip("opacus")

from ddapps.dp.accounting import epsilon  # noqa: E402
from ddapps.errors import ConfigError  # noqa: E402
from ddapps.nets import create_net  # noqa: E402
from ddapps.privacy.dpsgd import DPSGDConfig, train_dpsgd  # noqa: E402
from ddapps.utils.seeding import make_generator  # noqa: E402
from tests.conftest import fake_benchmark  # noqa: E402

SMALL = dict(batch_size=8, epochs=3, lr=0.5)


def _train(config: DPSGDConfig, seed: int = 0, n: int | None = None) -> tuple[torch.nn.Module, dict]:
    real = fake_benchmark(public_stats=True)
    images, labels = real.train.images[:n], real.train.labels[:n]
    net = create_net("mlp", real.channels, real.num_classes, real.image_size, generator=make_generator(seed), width=16)
    return train_dpsgd(net, images, labels, config, generator=make_generator(seed + 1))


def _weights(net: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in net.parameters()])


def test_reports_an_epsilon_within_the_target() -> None:
    net, record = _train(DPSGDConfig(dp_epsilon=2.0, **SMALL))
    assert record["private"] and record["noise_source"].startswith("torch generator seeded from os.urandom")
    assert 1.9 <= record["epsilon"] <= 2.0 and record["nominal_epsilon"] == record["epsilon"]
    # 36 records, expected batch 8: q = 1/5, 5 batches per epoch
    assert record["sample_rate"] == pytest.approx(1 / 5) and record["steps"] == 15 and record["noise_multiplier"] > 0
    assert epsilon(record["noise_multiplier"], record["sample_rate"], record["steps"], record["delta"]) == pytest.approx(
        record["epsilon"]
    )
    assert not net.training and not any(hasattr(p, "grad_sample") and p.grad_sample is not None for p in net.parameters())


def test_noise_changes_with_epsilon_and_is_reproducible_only_when_seeded() -> None:
    loose, r_loose = _train(DPSGDConfig(dp_epsilon=8.0, dp_deterministic_noise=True, **SMALL))
    tight, r_tight = _train(DPSGDConfig(dp_epsilon=0.5, dp_deterministic_noise=True, **SMALL))
    again, _ = _train(DPSGDConfig(dp_epsilon=0.5, dp_deterministic_noise=True, **SMALL))
    assert r_tight["noise_multiplier"] > r_loose["noise_multiplier"] > 0
    assert not r_tight["private"] and r_tight["epsilon"] is None and 0.4 < r_tight["nominal_epsilon"] <= 0.5
    assert torch.equal(_weights(tight), _weights(again))  # seeded: the same run
    assert not torch.allclose(_weights(tight), _weights(loose))
    secret_a, _ = _train(DPSGDConfig(dp_epsilon=0.5, **SMALL))
    secret_b, _ = _train(DPSGDConfig(dp_epsilon=0.5, **SMALL))
    assert not torch.equal(_weights(secret_a), _weights(secret_b))  # secret noise: never the same run


def test_inf_clips_without_noise() -> None:
    _, record = _train(DPSGDConfig(dp_epsilon=math.inf, **SMALL))
    assert record["noise_multiplier"] == 0.0 and record["epsilon"] is None and record["nominal_epsilon"] is None
    assert record["private"] is False and record["target_epsilon"] is None


def test_empty_poisson_batches_still_step() -> None:
    # 4 records, expected batch 1: a quarter of the batches are empty, and each is a (noisy) step
    _, record = _train(DPSGDConfig(dp_epsilon=4.0, batch_size=1, epochs=5, lr=0.1), n=4)
    assert record["steps"] == 20 and record["sample_rate"] == pytest.approx(0.25) and record["epsilon"] <= 4.0


def test_bad_config() -> None:
    with pytest.raises(ConfigError, match="epsilon"):
        DPSGDConfig(dp_epsilon=0.0)
    with pytest.raises(ConfigError, match="clip"):
        DPSGDConfig(clip_norm=math.inf)
    with pytest.raises(ConfigError, match="batch_size"):
        DPSGDConfig(batch_size=0)
