"""Privacy accounting: our epsilon is Opacus' RDP accountant's, and calibration inverts it."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("opacus")

from opacus.accountants import RDPAccountant  # noqa: E402
from opacus.accountants.utils import get_noise_multiplier  # noqa: E402

from ddapps.dp.accounting import calibrate_noise, epsilon  # noqa: E402
from ddapps.errors import ConfigError  # noqa: E402


@pytest.mark.parametrize(("sigma", "q", "steps"), [(1.1, 0.01, 1000), (0.8, 0.5, 4), (5.0, 0.04, 200)])
def test_epsilon_equals_opacus_accountant(sigma: float, q: float, steps: int) -> None:
    # Prepare: the library's own accountant, stepped one step at a time
    acc = RDPAccountant()
    for _ in range(steps):
        acc.step(noise_multiplier=sigma, sample_rate=q)
    # Execute / Assert
    assert epsilon(sigma, q, steps, 1e-5) == pytest.approx(acc.get_epsilon(delta=1e-5), rel=1e-12)


@pytest.mark.parametrize(("target", "q", "steps"), [(1.0, 0.04, 300), (10.0, 0.5, 4), (3.0, 0.01, 1000)])
def test_calibrate_noise_inverts_epsilon(target: float, q: float, steps: int) -> None:
    sigma = calibrate_noise(target, 1e-5, q, steps)
    spent = epsilon(sigma, q, steps, 1e-5)
    assert target - 0.01 <= spent <= target
    # agrees with Opacus' own search (same accountant, same tolerance)
    ref = get_noise_multiplier(target_epsilon=target, target_delta=1e-5, sample_rate=q, steps=steps)
    assert sigma == pytest.approx(ref, rel=0.02)


def test_no_noise_cases() -> None:
    assert calibrate_noise(None, 1e-5, 0.1, 10) == 0.0
    assert calibrate_noise(math.inf, 1e-5, 0.1, 10) == 0.0
    assert calibrate_noise(1.0, 1e-5, 0.1, 0) == 0.0
    assert epsilon(0.0, 0.1, 10, 1e-5) == math.inf
    assert epsilon(1.0, 0.1, 0, 1e-5) == 0.0


@pytest.mark.parametrize(
    ("sigma", "q", "steps", "delta"),
    [(1.0, 0.0, 10, 1e-5), (1.0, 1.5, 10, 1e-5), (1.0, 0.1, -1, 1e-5), (1.0, 0.1, 10, 0.0), (-1.0, 0.1, 10, 1e-5)],
)
def test_epsilon_rejects_bad_arguments(sigma: float, q: float, steps: int, delta: float) -> None:
    with pytest.raises(ConfigError):
        epsilon(sigma, q, steps, delta)


@pytest.mark.parametrize(("target", "q", "steps", "delta"), [(0.0, 0.1, 10, 1e-5), (-1.0, 0.1, 10, 1e-5), (1.0, 2.0, 10, 1e-5)])
def test_calibrate_rejects_bad_arguments(target: float, q: float, steps: int, delta: float) -> None:
    with pytest.raises(ConfigError):
        calibrate_noise(target, delta, q, steps)
