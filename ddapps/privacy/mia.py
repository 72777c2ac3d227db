"""Membership-inference scores and their evaluation (pure functions on tensors/arrays).

* Loss threshold (Yeom et al., CSF 2018): score ``-loss(f(x), y)``; members have lower loss.
* LiRA (Carlini et al., "Membership Inference Attacks From First Principles", S&P 2022): the
  target's logit-scaled confidence ``phi = log p_y - log(1 - p_y)`` on ``(x, y)`` is compared with
  Gaussians fitted, per example, to ``phi`` of shadow models trained with ``(x, y)`` IN and OUT of
  their data; the score is the log-likelihood ratio. Shadow membership is balanced
  (:func:`balanced_shadow_masks`): every example is IN for exactly half the shadows, as in the
  paper's experiments. Means and variances are per example; an example with fewer than two IN (or
  OUT) observations falls back to the global mean/variance of all IN (OUT) values, and every
  variance is floored (``min_var``) so that a few identical observations cannot give an infinite
  ratio.
* Evaluation: ROC AUC (scikit-learn), TPR at 0.1% and 1% FPR (Carlini et al. 2022 argue for the
  low-FPR regime), percentile bootstrap intervals that resample members and non-members
  separately, and an empirical lower bound on epsilon (:func:`epsilon_lower_bound`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ddapps.errors import ConfigError

FPRS = {"tpr_at_0.1fpr": 0.001, "tpr_at_1fpr": 0.01}
MIN_VAR = 1e-4


def logit_confidence(logits: Tensor, labels: Tensor) -> Tensor:
    """``phi = log p_y - log(1 - p_y)``, computed stably from logits."""
    logp = logits.log_softmax(dim=1)
    log_py = logp.gather(1, labels.view(-1, 1)).squeeze(1)
    others = logp.scatter(1, labels.view(-1, 1), -math.inf)
    return log_py - torch.logsumexp(others, dim=1)


def loss_scores(logits: Tensor, labels: Tensor) -> Tensor:
    """Loss-threshold score: minus the per-example cross-entropy (higher means 'member')."""
    return -torch.nn.functional.cross_entropy(logits, labels, reduction="none")


def balanced_shadow_masks(shadows: int, n: int, generator: torch.Generator) -> Tensor:
    """``[shadows, n]`` bool: example ``i`` is IN for exactly ``shadows / 2`` shadows.

    For each example a uniformly random permutation of the shadows (the ranks of i.i.d. uniforms);
    the first half are IN (Carlini et al. 2022 train each shadow on a random half so that every
    example has as many IN as OUT models).
    """
    if shadows < 2 or shadows % 2:
        raise ConfigError(f"balanced shadows need an even number >= 2, got {shadows}")
    ranks = torch.rand(n, shadows, generator=generator).argsort(dim=1).argsort(dim=1)
    return (ranks < shadows // 2).T.contiguous()


def lira_scores(target_phi: Tensor, shadow_phi: Tensor, shadow_in: Tensor, *, min_var: float = MIN_VAR) -> Tensor:
    """LiRA log-likelihood ratio per example (per-example Gaussians; see the module doc).

    Args:
        target_phi: ``[N]`` logit confidence of the target model.
        shadow_phi: ``[S, N]`` the same for ``S`` shadow models.
        shadow_in: ``[S, N]`` bool, whether example ``n`` was in shadow ``s``'s data.
        min_var: floor of every variance.
    """
    if shadow_phi.shape != shadow_in.shape or shadow_phi.shape[1] != target_phi.shape[0]:
        raise ConfigError("shadow_phi, shadow_in and target_phi shapes disagree")
    phi = shadow_phi.double()
    mu_in, var_in = gaussian_fit(phi, shadow_in, min_var)
    mu_out, var_out = gaussian_fit(phi, ~shadow_in, min_var)
    t = target_phi.double()
    ll_in = -0.5 * ((t - mu_in) ** 2 / var_in + torch.log(var_in))
    ll_out = -0.5 * ((t - mu_out) ** 2 / var_out + torch.log(var_out))
    return (ll_in - ll_out).float()


def gaussian_fit(phi: Tensor, mask: Tensor, min_var: float = MIN_VAR) -> tuple[Tensor, Tensor]:
    """Per-example mean and (unbiased) variance of ``phi [S, N]`` over the shadows where ``mask``.

    Examples with fewer than two masked observations take the global mean and variance of all
    masked values (deviations from each example's own mean where it has two or more); every
    variance is at least ``min_var``.
    """
    m = mask.to(phi.dtype)
    count = m.sum(dim=0)
    if count.sum() < 2:
        raise ConfigError("LiRA needs at least two IN and two OUT shadow observations")
    overall = (phi * m).sum() / count.sum()
    per = (phi * m).sum(dim=0) / count.clamp_min(1)
    mu = torch.where(count > 0, per, overall)
    sq = ((phi - mu) ** 2 * m).sum(dim=0)
    enough = count >= 2
    dof = (count - 1).clamp_min(1)
    global_var = (
        sq[enough].sum() / dof[enough].sum() if enough.any() else ((phi - overall) ** 2 * m).sum() / (count.sum() - 1)
    )
    var = torch.where(enough, sq / dof, global_var)
    return mu, var.clamp_min(min_var)


def clopper_pearson(successes: np.ndarray, trials: int, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided exact (Clopper-Pearson) binomial interval ``(low, high)`` for each count."""
    from scipy.stats import beta

    k = np.asarray(successes, float)
    alpha = 1.0 - level
    with np.errstate(invalid="ignore"):
        low = np.where(k > 0, beta.ppf(alpha / 2, k, trials - k + 1), 0.0)
        high = np.where(k < trials, beta.ppf(1 - alpha / 2, k + 1, trials - k), 1.0)
    return low, high


def epsilon_lower_bound_counts(
    tp: np.ndarray, n_pos: int, fp: np.ndarray, n_neg: int, delta: float, level: float = 0.95
) -> float:
    """Empirical epsilon lower bound from the confusion counts of a family of membership tests.

    An (epsilon, delta)-DP training algorithm bounds every test: ``TPR <= e^eps FPR + delta`` and
    ``1 - FPR <= e^eps (1 - TPR) + delta`` (Kairouz et al. 2015). Jagielski et al. ("Auditing
    differentially private machine learning", NeurIPS 2020) and Nasr et al. ("Adversary
    instantiation", S&P 2021) turn measured rates into a high-confidence lower bound with
    Clopper-Pearson intervals: ``TPR_lo`` and ``FPR_hi`` (endpoints of two-sided ``level``
    intervals), and

        eps_lb = max over tests of max(log((TPR_lo - delta) / FPR_hi), log((1 - FPR_hi - delta) / (1 - TPR_lo)))

    clipped at 0. ``tp``/``fp`` are the counts of each test (e.g. each threshold) over ``n_pos``
    members and ``n_neg`` non-members. Taking the max over many tests on the same data makes the
    bound optimistic (the papers pick the threshold on separate runs); read it as an estimate.
    """
    if n_pos < 1 or n_neg < 1:
        raise ConfigError("the epsilon lower bound needs at least one member and one non-member")
    if not 0 <= delta < 1:
        raise ConfigError(f"delta must be in [0, 1), got {delta}")
    tpr_lo, _ = clopper_pearson(tp, n_pos, level)
    _, fpr_hi = clopper_pearson(fp, n_neg, level)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.log(np.maximum(tpr_lo - delta, 0.0) / fpr_hi)
        b = np.log(np.maximum(1.0 - fpr_hi - delta, 0.0) / (1.0 - tpr_lo))
    best = np.nanmax(np.concatenate([a, b, [0.0]]))
    return float(max(best, 0.0))


def threshold_counts(members: np.ndarray, nonmembers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(tp, fp)`` of the test ``score >= t`` for every distinct score ``t``."""
    members, nonmembers = np.sort(np.asarray(members, float)), np.sort(np.asarray(nonmembers, float))
    thresholds = np.unique(np.concatenate([members, nonmembers]))
    tp = len(members) - np.searchsorted(members, thresholds, side="left")
    fp = len(nonmembers) - np.searchsorted(nonmembers, thresholds, side="left")
    return tp, fp


def epsilon_lower_bound(members: np.ndarray, nonmembers: np.ndarray, delta: float, level: float = 0.95) -> float:
    """:func:`epsilon_lower_bound_counts` over every threshold of the attack's scores."""
    tp, fp = threshold_counts(members, nonmembers)
    return epsilon_lower_bound_counts(tp, len(members), fp, len(nonmembers), delta, level)


def roc_metrics(members: np.ndarray, nonmembers: np.ndarray) -> dict[str, float]:
    """AUC and the TPRs of :data:`FPRS` (largest TPR at a false-positive rate of at most each)."""
    from sklearn.metrics import roc_auc_score, roc_curve

    y, s = _stack(members, nonmembers)
    fprs, tprs, _ = roc_curve(y, s)
    out = {"auc": float(roc_auc_score(y, s))}
    for name, fpr in FPRS.items():
        ok = fprs <= fpr
        out[name] = float(tprs[ok].max()) if ok.any() else 0.0
    return out


def tpr_at_fpr(members: np.ndarray, nonmembers: np.ndarray, fpr: float = 0.01) -> float:
    """Largest true-positive rate at a false-positive rate of at most ``fpr``."""
    from sklearn.metrics import roc_curve

    fprs, tprs, _ = roc_curve(*_stack(members, nonmembers))
    ok = fprs <= fpr
    return float(tprs[ok].max()) if ok.any() else 0.0


def auc(members: np.ndarray, nonmembers: np.ndarray) -> float:
    """ROC AUC of ``score > threshold`` predicting membership."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(*_stack(members, nonmembers)))


def evaluate_attack(
    members: np.ndarray,
    nonmembers: np.ndarray,
    *,
    n_boot: int,
    generator: torch.Generator,
    delta: float = 1e-5,
    level: float = 0.95,
) -> dict[str, Any]:
    """AUC and TPR at 0.1%/1% FPR, each with a percentile bootstrap interval, and ``eps_lb``.

    The bootstrap resamples members and non-members separately (``n_boot`` times; intervals are
    ``None`` when ``n_boot`` is 0). ``eps_lb`` is :func:`epsilon_lower_bound` at ``delta``.
    """
    members, nonmembers = np.asarray(members, float), np.asarray(nonmembers, float)
    if len(members) < 2 or len(nonmembers) < 2:
        raise ConfigError("an attack needs at least two members and two non-members")
    point = roc_metrics(members, nonmembers)
    boots: dict[str, list[float]] = {key: [] for key in point}
    for _ in range(n_boot):
        i = torch.randint(len(members), (len(members),), generator=generator).numpy()
        j = torch.randint(len(nonmembers), (len(nonmembers),), generator=generator).numpy()
        for key, value in roc_metrics(members[i], nonmembers[j]).items():
            boots[key].append(value)
    out: dict[str, Any] = {}
    for key, value in point.items():
        lo, hi = np.quantile(boots[key], [(1 - level) / 2, (1 + level) / 2]) if n_boot else (None, None)
        out |= {key: value, f"{key}_ci_low": _float(lo), f"{key}_ci_high": _float(hi)}
    out["eps_lb"] = epsilon_lower_bound(members, nonmembers, delta, level)
    return out


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _stack(members: np.ndarray, nonmembers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.concatenate([np.ones(len(members)), np.zeros(len(nonmembers))])
    return y, np.concatenate([np.asarray(members, float), np.asarray(nonmembers, float)])
