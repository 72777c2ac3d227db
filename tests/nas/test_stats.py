"""Ranking statistics on hand-made rankings."""

from __future__ import annotations

import pytest

from ddapps.errors import ConfigError
from ddapps.nas.stats import bootstrap_interval, kendall, spearman, top_k, top_k_overlap
from ddapps.utils.seeding import make_generator


def test_perfect_reversed_and_known_correlations() -> None:
    ref = [10.0, 20.0, 30.0, 40.0, 50.0]
    assert spearman(ref, ref) == pytest.approx(1.0)
    assert kendall(ref, ref) == pytest.approx(1.0)
    assert spearman(ref[::-1], ref) == pytest.approx(-1.0)
    assert kendall(ref[::-1], ref) == pytest.approx(-1.0)
    swapped = [10.0, 20.0, 30.0, 50.0, 40.0]  # one adjacent swap: rho = 1 - 6*2/(5*24), tau = 1 - 2*1/10
    assert spearman(swapped, ref) == pytest.approx(0.9)
    assert kendall(swapped, ref) == pytest.approx(0.8)


def test_undefined_correlations_are_none() -> None:
    assert spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]) is None
    assert kendall([1.0], [2.0]) is None


def test_top_k_overlap() -> None:
    ref = [9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0]
    proxy = [9.0, 1.0, 7.0, 6.0, 5.0, 4.0, 8.0]  # arch 1 drops out of the top 5, arch 6 enters
    assert top_k(ref, 3) == [0, 1, 2]
    assert top_k_overlap(ref, ref, 5) == 1.0
    assert top_k_overlap(proxy, ref, 5) == pytest.approx(4 / 5)
    with pytest.raises(ConfigError):
        top_k_overlap(proxy, ref, 0)


def test_bootstrap_interval_brackets_the_estimate_and_is_reproducible() -> None:
    ref = [float(i) for i in range(24)]
    proxy = [v + (3.0 if i % 4 == 0 else 0.0) for i, v in enumerate(ref)]
    first = bootstrap_interval(spearman, proxy, ref, n_boot=200, generator=make_generator(0))
    again = bootstrap_interval(spearman, proxy, ref, n_boot=200, generator=make_generator(0))
    assert first == again
    assert first.low <= spearman(proxy, ref) <= first.high <= 1.0
    assert first.n_valid == 200
    perfect = bootstrap_interval(kendall, ref, ref, n_boot=50, generator=make_generator(1))
    assert perfect.low == pytest.approx(1.0) and perfect.high == pytest.approx(1.0)
