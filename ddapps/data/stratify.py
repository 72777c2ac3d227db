"""Stratified splits drawn with a seeded ``torch.Generator`` (never the global RNG)."""

from __future__ import annotations

import numpy as np
import torch


def stratified_holdout(
    labels: np.ndarray | torch.Tensor, fraction: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(keep, held)``: sorted index tensors with ``round(fraction * n_c)`` of each class held out.

    Each class with at least two members keeps at least one and, when ``fraction > 0``, holds out
    at least one, so both sides see every class that can be split.
    """
    y = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
    gen = torch.Generator().manual_seed(int(seed))
    keep, held = [], []
    num_classes = int(y.max()) + 1 if len(y) else 0
    for c in range(num_classes):
        ix = torch.nonzero(y == c, as_tuple=True)[0]
        n = len(ix)
        k = int(round(fraction * n))
        if n >= 2 and fraction > 0:
            k = min(max(k, 1), n - 1)
        else:
            k = 0
        ix = ix[torch.randperm(n, generator=gen)]
        held.append(ix[:k])
        keep.append(ix[k:])
    empty = torch.zeros(0, dtype=torch.int64)
    keep_t = torch.sort(torch.cat(keep)).values if keep else empty
    held_t = torch.sort(torch.cat(held)).values if held else empty
    return keep_t, held_t
