"""The DP mechanism's randomness: secret by default, seeded only when asked (and then flagged)."""

from __future__ import annotations

import pytest
import torch
from scipy import stats

from ddapps.dp.noise import SecretNoise, SeededNoise, noise_source


def test_secret_normals_are_standard_normal() -> None:
    z = SecretNoise().normal((100_001,), torch.float64)
    assert z.shape == (100_001,) and z.dtype == torch.float64
    # Kolmogorov-Smirnov against N(0, 1): a wrong scale or shift gives p ~ 0
    assert stats.kstest(z.numpy(), "norm").pvalue > 1e-4
    assert abs(float(z.mean())) < 0.02 and float(z.std()) == pytest.approx(1.0, abs=0.02)


def test_secret_uniforms_lie_in_the_unit_interval_and_are_uniform() -> None:
    u = SecretNoise().uniform(50_000)
    assert float(u.min()) >= 0.0 and float(u.max()) < 1.0
    assert stats.kstest(u.numpy(), "uniform").pvalue > 1e-4


def test_secret_draws_differ_each_time_seeded_ones_repeat() -> None:
    assert not torch.equal(SecretNoise().normal((64,)), SecretNoise().normal((64,)))
    assert torch.equal(SeededNoise(3).normal((64,)), SeededNoise(3).normal((64,)))


def test_poisson_sample_keeps_each_index_with_the_rate() -> None:
    kept = SecretNoise().poisson_sample(torch.arange(20_000), 0.25)
    assert kept.numel() == pytest.approx(5_000, abs=300)  # ~5 sd of Binomial(20000, 0.25)
    assert bool((kept[1:] > kept[:-1]).all())  # a subset, in order, no repeats


def test_source_choice_draws_the_same_public_seed_either_way() -> None:
    g1, g2 = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    secret, seeded = noise_source(False, g1), noise_source(True, g2)
    assert secret.private and not seeded.private
    assert torch.equal(torch.rand(3, generator=g1), torch.rand(3, generator=g2))  # public stream unchanged
