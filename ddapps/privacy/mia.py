"""Membership-inference scores and their evaluation (pure functions on tensors/arrays).

* Loss threshold (Yeom et al., CSF 2018): score ``-loss(f(x), y)``; members have lower loss.
* LiRA (Carlini et al., "Membership Inference Attacks From First Principles", S&P 2022): the
  target's logit-scaled confidence ``phi = log p_y - log(1 - p_y)`` on ``(x, y)`` is compared with
  Gaussians fitted to ``phi`` of shadow models trained with ``(x, y)`` IN and OUT of their data;
  the score is the log-likelihood ratio. With few shadows the variances are pooled over examples
  (the paper's fixed-variance variant); an example with no IN (or OUT) shadow uses the pooled mean
  of all IN (OUT) values.
* Evaluation: ROC AUC (scikit-learn), TPR at 1% FPR, and percentile bootstrap intervals that
  resample members and non-members separately.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from ddapps.errors import ConfigError


def logit_confidence(logits: Tensor, labels: Tensor) -> Tensor:
    """``phi = log p_y - log(1 - p_y)``, computed stably from logits."""
    logp = logits.log_softmax(dim=1)
    log_py = logp.gather(1, labels.view(-1, 1)).squeeze(1)
    others = logp.scatter(1, labels.view(-1, 1), -math.inf)
    return log_py - torch.logsumexp(others, dim=1)


def loss_scores(logits: Tensor, labels: Tensor) -> Tensor:
    """Loss-threshold score: minus the per-example cross-entropy (higher means 'member')."""
    return -torch.nn.functional.cross_entropy(logits, labels, reduction="none")


def lira_scores(target_phi: Tensor, shadow_phi: Tensor, shadow_in: Tensor) -> Tensor:
    """LiRA log-likelihood ratio per example.

    Args:
        target_phi: ``[N]`` logit confidence of the target model.
        shadow_phi: ``[S, N]`` the same for ``S`` shadow models.
        shadow_in: ``[S, N]`` bool, whether example ``n`` was in shadow ``s``'s data.
    """
    if shadow_phi.shape != shadow_in.shape or shadow_phi.shape[1] != target_phi.shape[0]:
        raise ConfigError("shadow_phi, shadow_in and target_phi shapes disagree")
    inn, out = shadow_in.double(), (~shadow_in).double()
    phi = shadow_phi.double()
    if inn.sum() < 2 or out.sum() < 2:
        raise ConfigError("LiRA needs at least two IN and two OUT shadow observations")
    mu_in = _masked_mean(phi, inn)
    mu_out = _masked_mean(phi, out)
    var_in = (((phi - mu_in) ** 2) * inn).sum() / inn.sum().clamp_min(1)
    var_out = (((phi - mu_out) ** 2) * out).sum() / out.sum().clamp_min(1)
    var_in, var_out = var_in.clamp_min(1e-6), var_out.clamp_min(1e-6)
    t = target_phi.double()
    ll_in = -0.5 * ((t - mu_in) ** 2 / var_in + torch.log(var_in))
    ll_out = -0.5 * ((t - mu_out) ** 2 / var_out + torch.log(var_out))
    return (ll_in - ll_out).float()


def _masked_mean(phi: Tensor, mask: Tensor) -> Tensor:
    """Per-example mean over the masked shadows; the global masked mean where none is masked."""
    count = mask.sum(dim=0)
    overall = (phi * mask).sum() / mask.sum()
    per = (phi * mask).sum(dim=0) / count.clamp_min(1)
    return torch.where(count > 0, per, overall)


def tpr_at_fpr(members: np.ndarray, nonmembers: np.ndarray, fpr: float = 0.01) -> float:
    """Largest true-positive rate at a false-positive rate of at most ``fpr``."""
    from sklearn.metrics import roc_curve

    y, s = _stack(members, nonmembers)
    fprs, tprs, _ = roc_curve(y, s)
    ok = fprs <= fpr
    return float(tprs[ok].max()) if ok.any() else 0.0


def auc(members: np.ndarray, nonmembers: np.ndarray) -> float:
    """ROC AUC of ``score > threshold`` predicting membership."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(*_stack(members, nonmembers)))


def evaluate_attack(
    members: np.ndarray, nonmembers: np.ndarray, *, n_boot: int, generator: torch.Generator, level: float = 0.95
) -> dict[str, float]:
    """AUC with a percentile bootstrap interval, and TPR at 1% FPR."""
    members, nonmembers = np.asarray(members, float), np.asarray(nonmembers, float)
    if len(members) < 2 or len(nonmembers) < 2:
        raise ConfigError("an attack needs at least two members and two non-members")
    boots = []
    for _ in range(n_boot):
        i = torch.randint(len(members), (len(members),), generator=generator).numpy()
        j = torch.randint(len(nonmembers), (len(nonmembers),), generator=generator).numpy()
        boots.append(auc(members[i], nonmembers[j]))
    lo, hi = (np.quantile(boots, [(1 - level) / 2, (1 + level) / 2]) if boots else (math.nan, math.nan))
    return {
        "auc": auc(members, nonmembers),
        "auc_ci_low": float(lo),
        "auc_ci_high": float(hi),
        "tpr_at_1fpr": tpr_at_fpr(members, nonmembers, 0.01),
    }


def _stack(members: np.ndarray, nonmembers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.concatenate([np.ones(len(members)), np.zeros(len(nonmembers))])
    return y, np.concatenate([np.asarray(members, float), np.asarray(nonmembers, float)])
