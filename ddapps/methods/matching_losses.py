"""Distances between two sets of network gradients, for gradient matching (DC and DSA).

Zhao, Mopuri & Bilen, "Dataset Condensation with Gradient Matching", ICLR 2021, Eq. 10: the
distance between the gradient ``G^T`` of the loss on real data and ``G^S`` on synthetic data is a
sum over layers ``l`` of a layer-wise distance, which for an output-by-input gradient matrix is

    d(A, B) = sum_i ( 1 - <A_i, B_i> / (||A_i|| ||B_i|| + eps) )

over the rows ``i`` (one per output node). A convolution gradient ``[out, in, h, w]`` is
reshaped to ``[out, in*h*w]`` first; a 1-D gradient (bias, normalization scale or shift) adds
nothing. Two whole-vector alternatives concatenate every parameter's gradient (1-D ones included):
``mse`` is the squared Euclidean distance and ``cos`` one minus their cosine.

Every function takes gradients with an optional leading batch dimension (``batched=True``: one
row of the batch per class), so per-class distances come out of one call.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor

from ddapps.errors import ConfigError

EPS = 1e-6
"""Added to the product of norms in the cosine, so a zero row gives distance 1, not NaN (a row
that is zero on both sides -- a dead unit -- thus counts 1 even though the two rows agree)."""


def _rowwise_cosine_distance(real: Sequence[Tensor], syn: Sequence[Tensor], lead: int) -> Tensor:
    total = torch.zeros(real[0].shape[:lead], dtype=real[0].dtype, device=real[0].device)
    for a, b in zip(real, syn, strict=True):
        if a.dim() - lead <= 1:
            continue  # biases and normalization parameters: the paper ignores them
        a = a.reshape(*a.shape[: lead + 1], -1)
        b = b.reshape(*b.shape[: lead + 1], -1)
        cosine = (a * b).sum(dim=-1) / (a.norm(dim=-1) * b.norm(dim=-1) + EPS)
        total = total + (1.0 - cosine).sum(dim=-1)
    return total


def _flat(grads: Sequence[Tensor], lead: int) -> Tensor:
    return torch.cat([g.reshape(*g.shape[:lead], -1) for g in grads], dim=-1)


def _mse(real: Sequence[Tensor], syn: Sequence[Tensor], lead: int) -> Tensor:
    return ((_flat(syn, lead) - _flat(real, lead)) ** 2).sum(dim=-1)


def _cos(real: Sequence[Tensor], syn: Sequence[Tensor], lead: int) -> Tensor:
    a, b = _flat(real, lead), _flat(syn, lead)
    return 1.0 - (a * b).sum(dim=-1) / (a.norm(dim=-1) * b.norm(dim=-1) + EPS)


DISTANCES: dict[str, Callable[[Sequence[Tensor], Sequence[Tensor], int], Tensor]] = {
    "ours": _rowwise_cosine_distance,
    "mse": _mse,
    "cos": _cos,
}
"""``dis_metric`` name -> distance; ``ours`` is the paper's layer-wise one."""


def check_metric(metric: str) -> str:
    """``metric`` if it names a distance of :data:`DISTANCES`; :class:`ConfigError` otherwise."""
    if metric not in DISTANCES:
        raise ConfigError(f"unknown dis_metric {metric!r}; choose one of: {', '.join(DISTANCES)}")
    return metric


def gradient_distance(
    real: Sequence[Tensor], syn: Sequence[Tensor], metric: str = "ours", *, batched: bool = False
) -> Tensor:
    """Distance between the gradients ``real`` and ``syn`` (one tensor per parameter, same order).

    With ``batched=True`` every tensor has a leading batch dimension ``B`` and the result is the
    ``[B]`` vector of distances; otherwise it is a scalar. Differentiable in both arguments.
    """
    check_metric(metric)
    if len(real) != len(syn) or not real:
        raise ConfigError(f"need two equally long, non-empty gradient lists, got {len(real)} and {len(syn)}")
    for a, b in zip(real, syn):
        if a.shape != b.shape:
            raise ConfigError(f"gradient shapes differ: {list(a.shape)} vs {list(b.shape)}")
    return DISTANCES[metric](real, syn, 1 if batched else 0)
