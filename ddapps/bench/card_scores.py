"""The scores of the evaluation card, computed by ddapps from its own accuracies (never copied).

DD-Ranking (Li et al., "DD-Ranking: Rethinking the Evaluation of Dataset Distillation",
arXiv 2505.13300; README of NUS-HPC-AI-Lab/DD-Ranking at commit b8b0966):

* hard-label recovery ``HLR = Acc(real, hard) - Acc(syn, hard)``;
* improvement over random ``IOR = Acc(syn, any) - Acc(rdm, any)``, both under the same
  ("personalized") evaluation -- here one label regime;
* label-robust score ``LRS = (exp(a) - 1/e) / (e - 1/e)`` with ``a = w IOR - (1 - w) HLR``, ``w = 0.5``;
* augmentation-robust score ``ARS``: the same normalisation of
  ``b = g (Acc(syn, aug) - Acc(rdm, aug)) + (1 - g) (Acc(syn, no aug) - Acc(rdm, no aug))``, ``g = 0.5``.

Accuracies enter as fractions in [0, 1], so ``a`` and ``b`` lie in [-1, 1] and both scores in
[0, 1] as the paper states (DD-Ranking's code passes percentages, for which they do not; the
caveats are in docs/evaluation.md). Every score is computed per
evaluation seed from paired runs (the same network initialisations and augmentation draws for the
set and the random baseline) and reported as the mean with a 95% Student-t interval over seeds.
DD-Ranking also chooses the learning rate on test accuracy; the card chooses nothing on test.
"""

from __future__ import annotations

import math
from typing import Sequence

from ddapps.utils.intervals import paired_t_interval, t_interval

DD_RANKING_WEIGHT = 0.5
"""``w`` of LRS and ``g`` of ARS (DD-Ranking's leaderboard default)."""


def normalized_exp(x: float) -> float:
    """DD-Ranking's map of [-1, 1] onto [0, 1]: ``(e^x - e^-1) / (e - e^-1)``."""
    return (math.exp(x) - math.exp(-1)) / (math.e - math.exp(-1))


def lrs(ior: float, hlr: float, w: float = DD_RANKING_WEIGHT) -> float:
    """Label-robust score from IOR and HLR given as fractions (not percent)."""
    return normalized_exp(w * ior - (1 - w) * hlr)


def ars(gain_aug: float, gain_no_aug: float, g: float = DD_RANKING_WEIGHT) -> float:
    """Augmentation-robust score from the gains over random with and without augmentation (fractions)."""
    return normalized_exp(g * gain_aug + (1 - g) * gain_no_aug)


def summary(values: Sequence[float]) -> dict[str, float | list[float]]:
    """``{"mean", "low", "high", "values"}``: the mean and its 95% t-interval over seeds."""
    low, high = t_interval(values)
    return {"mean": sum(values) / len(values), "low": low, "high": high, "values": list(values)}


def paired_gain(a: Sequence[float], b: Sequence[float]) -> dict[str, float | list[float]]:
    """``a - b`` paired by seed: mean, 95% t-interval and the per-seed differences."""
    mean, low, high = paired_t_interval(a, b)
    return {"mean": mean, "low": low, "high": high, "values": [x - y for x, y in zip(a, b)]}


def per_seed_lrs(
    syn_any: Sequence[float], rdm_any: Sequence[float], syn_hard: Sequence[float], real_hard: Sequence[float]
) -> list[float]:
    """LRS of each seed from percent accuracies (IOR and HLR of that seed)."""
    return [lrs((s - r) / 100, (h_real - h) / 100) for s, r, h, h_real in zip(syn_any, rdm_any, syn_hard, real_hard)]


def per_seed_ars(
    syn_aug: Sequence[float], rdm_aug: Sequence[float], syn_no_aug: Sequence[float], rdm_no_aug: Sequence[float]
) -> list[float]:
    """ARS of each seed from percent accuracies."""
    return [ars((a - b) / 100, (c - d) / 100) for a, b, c, d in zip(syn_aug, rdm_aug, syn_no_aug, rdm_no_aug)]
