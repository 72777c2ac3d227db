"""Closed-form kernel ridge regression (KRR) and the loss the kernel meta-learning methods minimise.

KIP (Nguyen, Chen & Lee, ICLR 2021), RFAD (Loo et al., NeurIPS 2022) and FRePo (Zhou,
Nezhadarya & Ba, NeurIPS 2022) all fit a kernel ridge regressor on the support set ``(X_s, y_s)``
(the synthetic images and their labels) and score its predictions on a target batch
``(X_t, y_t)`` of real images:

    y_hat = K_ts (K_ss + lambda * tr(K_ss) / n * I)^-1 y_s
    L     = 0.5 * mean((y_t - y_hat)^2)

with ``n = |X_s|`` and the ridge ``lambda`` scaled by the mean diagonal of ``K_ss`` (so it does
not depend on the kernel's scale). Targets are centred one-hot vectors ``one_hot(y) - 1/C``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def centered_one_hot(labels: Tensor, num_classes: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """``one_hot(labels) - 1/num_classes`` as ``[N, num_classes]`` floats (the KIP/FRePo targets)."""
    return F.one_hot(labels.long(), num_classes).to(dtype) - 1.0 / num_classes


def krr_predict(k_ts: Tensor, k_ss: Tensor, y_s: Tensor, reg: float) -> Tensor:
    """Kernel ridge regression ``K_ts (K_ss + reg * tr(K_ss)/n * I)^-1 y_s``, ``[T, C]``.

    Solved by a Cholesky factorisation of the (symmetric positive definite) regularised support
    kernel, falling back to an LU solve when the factorisation fails numerically.
    """
    n = k_ss.shape[0]
    ridge = reg * torch.diagonal(k_ss).sum() / n
    system = k_ss + ridge * torch.eye(n, dtype=k_ss.dtype, device=k_ss.device)
    factor, info = torch.linalg.cholesky_ex(system)
    if int(info) == 0:
        alpha = torch.cholesky_solve(y_s, factor)
    else:
        alpha = torch.linalg.solve(system, y_s)
    return k_ts @ alpha


def krr_loss(k_ts: Tensor, k_ss: Tensor, y_s: Tensor, y_t: Tensor, reg: float) -> Tensor:
    """``0.5 * mean((y_t - krr_predict(...))^2)`` over targets and classes (a scalar)."""
    prediction = krr_predict(k_ts, k_ss, y_s.to(k_ss.dtype), reg)
    return 0.5 * ((y_t.to(prediction.dtype) - prediction) ** 2).mean()
