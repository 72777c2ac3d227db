"""How well a proxy ranks architectures: rank correlations, bootstrap intervals, top-k overlap.

Spearman's rho and Kendall's tau-b come from ``scipy.stats`` (ties handled as scipy does). The
confidence interval is the percentile bootstrap (Efron & Tibshirani, 1993): resample the
architectures with replacement ``n_boot`` times (indices drawn with a ``torch.Generator``),
recompute the statistic, take the 2.5th and 97.5th percentiles. Resamples on which the statistic
is undefined (a constant vector) are dropped and counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ddapps.errors import ConfigError


def _finite(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rank correlation, or None when undefined (fewer than 2 points, a constant side)."""
    from scipy.stats import spearmanr

    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    return _finite(spearmanr(x, y).statistic)


def kendall(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Kendall's tau-b, or None when undefined."""
    from scipy.stats import kendalltau

    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    return _finite(kendalltau(x, y).statistic)


def top_k(scores: Sequence[float], k: int) -> list[int]:
    """Indices of the ``k`` highest scores (ties broken by the lower index)."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    return order[:k]


def top_k_overlap(proxy: Sequence[float], reference: Sequence[float], k: int = 5) -> float:
    """Fraction (0-1) of the reference's top ``k`` architectures that are also in the proxy's top ``k``."""
    if k < 1:
        raise ConfigError(f"k must be >= 1, got {k}")
    k = min(k, len(reference))
    if k == 0:
        return 0.0
    return len(set(top_k(proxy, k)) & set(top_k(reference, k))) / k


@dataclass(frozen=True)
class Interval:
    """A bootstrap percentile interval and how many resamples defined the statistic."""

    low: float | None
    high: float | None
    n_valid: int


def bootstrap_interval(
    statistic: Callable[[Sequence[float], Sequence[float]], float | None],
    x: Sequence[float],
    y: Sequence[float],
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    generator: torch.Generator,
) -> Interval:
    """Percentile bootstrap interval of ``statistic(x, y)`` over resampled pairs."""
    if len(x) != len(y):
        raise ConfigError(f"x and y must have the same length, got {len(x)} and {len(y)}")
    if n_boot < 1 or not 0 < level < 1:
        raise ConfigError("n_boot must be >= 1 and level in (0, 1)")
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = len(xs)
    if n < 2:
        return Interval(None, None, 0)
    draws = torch.randint(0, n, (n_boot, n), generator=generator).numpy()
    values = [v for v in (statistic(xs[ix], ys[ix]) for ix in draws) if v is not None]
    if not values:
        return Interval(None, None, 0)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return Interval(float(low), float(high), len(values))


def top_count(n: int, fraction: float) -> int:
    """How many architectures the top ``fraction`` of ``n`` holds (at least 2, so a correlation is defined)."""
    if not 0 < fraction <= 1:
        raise ConfigError(f"a top fraction must be in (0, 1], got {fraction}")
    return min(n, max(2, math.ceil(fraction * n)))


def top_fraction_overlap(proxy: Sequence[float], truth: Sequence[float], fraction: float) -> float:
    """:func:`top_k_overlap` with ``k`` the top ``fraction`` of the architectures (FTD's top-k%)."""
    return top_k_overlap(proxy, truth, top_count(len(truth), fraction))


def top_fraction_spearman(proxy: Sequence[float], truth: Sequence[float], fraction: float) -> float | None:
    """Spearman's rho over the architectures in the ground truth's top ``fraction`` (does the proxy order
    the good ones?); None when undefined."""
    keep = top_k(truth, top_count(len(truth), fraction))
    return spearman([proxy[i] for i in keep], [truth[i] for i in keep])


def regret(proxy: Sequence[float], truth: Sequence[float]) -> float:
    """Ground truth of the best architecture minus that of the proxy's top pick (0: the proxy found the best)."""
    if not truth or len(proxy) != len(truth):
        raise ConfigError("regret needs equal, non-empty proxy and truth lists")
    return float(max(truth) - truth[top_k(proxy, 1)[0]])


def paired_bootstrap_difference(
    statistic: Callable[[Sequence[float], Sequence[float]], float | None],
    a: Sequence[float],
    b: Sequence[float],
    truth: Sequence[float],
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    generator: torch.Generator,
) -> Interval:
    """Percentile interval of ``statistic(a, truth) - statistic(b, truth)`` with the *same* resampled
    architectures on both sides (a paired bootstrap over architectures)."""
    if not len(a) == len(b) == len(truth):
        raise ConfigError("paired scores need equal lengths")

    def difference(pairs: Any, t: Sequence[float]) -> float | None:
        sa, sb = statistic(pairs[:, 0], t), statistic(pairs[:, 1], t)
        return None if sa is None or sb is None else sa - sb

    pairs: Any = np.column_stack([np.asarray(a, dtype=float), np.asarray(b, dtype=float)])
    return bootstrap_interval(difference, pairs, truth, n_boot=n_boot, level=level, generator=generator)
