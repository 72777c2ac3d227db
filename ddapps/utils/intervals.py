"""Intervals over seeds: the 95% Student-t interval of a mean, and of a paired difference."""

from __future__ import annotations

import math
import statistics
from typing import Sequence


def t_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Student-t interval of the mean of ``values`` (the mean itself for one value)."""
    from scipy import stats

    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, mean
    half = float(stats.t.ppf(0.5 + confidence / 2, len(values) - 1)) * statistics.stdev(values) / math.sqrt(len(values))
    return mean - half, mean + half


def paired_t_interval(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """``(mean difference, low, high)`` of ``a - b`` paired by position (the same seeds)."""
    if len(a) != len(b):
        raise ValueError(f"paired values need equal lengths, got {len(a)} and {len(b)}")
    diffs = [x - y for x, y in zip(a, b)]
    low, high = t_interval(diffs, confidence)
    return statistics.fmean(diffs), low, high
