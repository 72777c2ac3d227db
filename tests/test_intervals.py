"""Student-t intervals over seeds (ddapps.utils.intervals)."""

from __future__ import annotations

import math

import pytest

from ddapps.utils.intervals import paired_t_interval, t_interval


def test_t_interval_matches_the_textbook_formula() -> None:
    low, high = t_interval([1.0, 2.0, 3.0])
    half = 4.302652729911275 / math.sqrt(3)  # t_{0.975, 2} * s / sqrt(n), s = 1
    assert low == pytest.approx(2.0 - half, rel=1e-9) and high == pytest.approx(2.0 + half, rel=1e-9)
    assert t_interval([5.0]) == (5.0, 5.0)


def test_paired_interval_removes_the_shared_seed_effect() -> None:
    # a and b share a large per-seed effect; their difference is constant, so its interval is a point
    a, b = [70.0, 80.0, 90.0], [68.0, 78.0, 88.0]
    gap, low, high = paired_t_interval(a, b)
    assert gap == pytest.approx(2.0) and low == pytest.approx(2.0) and high == pytest.approx(2.0)
    unpaired_low, unpaired_high = t_interval([x - y for x, y in zip(a, reversed(b))])
    assert unpaired_high - unpaired_low > 10.0
    with pytest.raises(ValueError):
        paired_t_interval([1.0], [1.0, 2.0])
