"""Attack statistics: the epsilon lower bound, TPR intervals, balanced shadows and per-example LiRA."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

pytest.importorskip("scipy")
pytest.importorskip("sklearn")

from ddapps.errors import ConfigError  # noqa: E402
from ddapps.privacy import mia  # noqa: E402


def test_clopper_pearson_closed_forms() -> None:
    # k = 0 and k = n have closed forms: high = 1 - (a/2)^(1/n), low = (a/2)^(1/n)
    low, high = mia.clopper_pearson(np.array([0, 50]), 50)
    assert low[0] == 0.0 and high[0] == pytest.approx(1 - 0.025 ** (1 / 50))
    assert low[1] == pytest.approx(0.025 ** (1 / 50)) and high[1] == 1.0
    low, high = mia.clopper_pearson(np.array([25]), 50)
    assert low[0] < 0.5 < high[0]


def test_epsilon_lower_bound_on_known_counts() -> None:
    n = 1000
    # a perfect test on n members / n non-members: log(TPR_lo / FPR_hi) with the closed forms above
    a = 0.025 ** (1 / n)
    assert mia.epsilon_lower_bound_counts(np.array([n]), n, np.array([0]), n, 0.0) == pytest.approx(math.log(a / (1 - a)))
    # TPR 0.5 at FPR 0.05: about log(10) minus the confidence margins, so a little below 2.3
    eps = mia.epsilon_lower_bound_counts(np.array([500]), n, np.array([50]), n, 0.0)
    tpr_lo = mia.clopper_pearson(np.array([500]), n)[0][0]
    fpr_hi = mia.clopper_pearson(np.array([50]), n)[1][0]
    assert eps == pytest.approx(math.log(tpr_lo / fpr_hi)) and 1.5 < eps < math.log(10)
    # the complement direction counts too: TNR 0.5 against FNR 0.05
    assert mia.epsilon_lower_bound_counts(np.array([950]), n, np.array([500]), n, 0.0) == pytest.approx(eps)
    # delta is subtracted from the numerator; random guessing gives 0 (clipped)
    assert mia.epsilon_lower_bound_counts(np.array([500]), n, np.array([50]), n, 0.1) < eps
    assert mia.epsilon_lower_bound_counts(np.array([500]), n, np.array([500]), n, 0.0) == 0.0
    with pytest.raises(ConfigError):
        mia.epsilon_lower_bound_counts(np.array([1]), 0, np.array([0]), 5, 0.0)


def test_threshold_counts_and_bound_from_scores() -> None:
    tp, fp = mia.threshold_counts(np.array([3.0, 2.0, 2.0]), np.array([1.0, 2.0]))
    # thresholds 1, 2, 3: score >= t
    assert tp.tolist() == [3, 3, 1] and fp.tolist() == [2, 1, 0]
    members, nonmembers = np.arange(100, 200, dtype=float), np.arange(100, dtype=float)
    assert mia.epsilon_lower_bound(members, nonmembers, 0.0) == pytest.approx(
        mia.epsilon_lower_bound_counts(np.array([100]), 100, np.array([0]), 100, 0.0)
    )


def test_tpr_intervals_resample_both_groups() -> None:
    gen = torch.Generator().manual_seed(0)
    rng = np.random.default_rng(0)
    members, nonmembers = rng.normal(1.0, 1.0, 400), rng.normal(0.0, 1.0, 400)
    result = mia.evaluate_attack(members, nonmembers, n_boot=100, generator=gen)
    for key in ("auc", "tpr_at_0.1fpr", "tpr_at_1fpr"):
        assert result[f"{key}_ci_low"] <= result[key] <= result[f"{key}_ci_high"]
    assert result["tpr_at_1fpr_ci_high"] > result["tpr_at_1fpr_ci_low"]  # noisy scores: a real interval
    assert result["tpr_at_0.1fpr"] <= result["tpr_at_1fpr"]
    assert result == mia.evaluate_attack(members, nonmembers, n_boot=100, generator=torch.Generator().manual_seed(0))
    none = mia.evaluate_attack(members, nonmembers, n_boot=0, generator=gen)
    assert none["tpr_at_1fpr_ci_low"] is None and none["auc_ci_high"] is None


def test_balanced_shadow_masks() -> None:
    masks = mia.balanced_shadow_masks(8, 500, torch.Generator().manual_seed(0))
    assert masks.shape == (8, 500) and masks.dtype == torch.bool
    assert torch.all(masks.sum(dim=0) == 4)  # every example IN for exactly half the shadows
    assert 200 < int(masks[0].sum()) < 300  # each shadow sees about half the pool
    assert len({tuple(col.tolist()) for col in masks.T}) > 30  # the IN halves differ between examples
    assert torch.equal(masks, mia.balanced_shadow_masks(8, 500, torch.Generator().manual_seed(0)))
    with pytest.raises(ConfigError, match="even"):
        mia.balanced_shadow_masks(3, 10, torch.Generator())


def test_lira_uses_per_example_variance() -> None:
    # example 0: IN values 1, 3 (variance 2); example 1: a single IN value -> the global variance
    phi = torch.tensor([[1.0, 7.0], [3.0, 0.0], [0.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    mask = torch.tensor([[True, True], [True, False], [False, False], [False, False]])
    mu, var = mia.gaussian_fit(phi, mask)
    assert mu.tolist() == [2.0, 7.0] and var[0].item() == pytest.approx(2.0) and var[1].item() == pytest.approx(2.0)
    # the floor applies where the observations agree
    _, var_out = mia.gaussian_fit(phi, ~mask)
    assert var_out[0].item() == pytest.approx(mia.MIN_VAR)
    # same IN/OUT means, different spreads: the tight example's ratio is larger
    shadow_in = torch.tensor([[True, True], [True, True], [False, False], [False, False]])
    shadow_phi = torch.tensor([[4.9, 3.0], [5.1, 7.0], [-0.1, -2.0], [0.1, 2.0]])
    scores = mia.lira_scores(torch.tensor([5.0, 5.0]), shadow_phi, shadow_in)
    assert scores[0] > scores[1] > 0
