"""Per-channel normalization: pixels to float in [0, 1], then ``(x - mean) / std``.

The constants are the ones the dataset-distillation papers (DC/DSA/DM/MTT) use, so results are
comparable; datasets without published constants get statistics of their training split, or,
when those statistics must not be computed from the data (differential privacy: they would be
released without noise), the fixed :data:`PUBLIC_STATS`.
"""

from __future__ import annotations

import numpy as np
import torch

# name -> (mean, std), per channel, for images scaled to [0, 1].
PAPER_STATS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "mnist": ((0.1307,), (0.3081,)),
    "fashion-mnist": ((0.2861,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
    "cifar100": ((0.5071, 0.4866, 0.4409), (0.2673, 0.2564, 0.2762)),
    "svhn": ((0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)),
}

PUBLIC_STATS = (0.5, 0.5)
"""Mean and std for every channel when no published constants exist and the data's own statistics
must stay private: maps [0, 1] to [-1, 1], a function of the pixel range alone."""


def to_unit_float(images: np.ndarray | torch.Tensor, scale: float) -> torch.Tensor:
    """A new float32 tensor ``images / scale`` (``scale`` is 255 for uint8 pixels, 16 for digits)."""
    if isinstance(images, np.ndarray):
        out = torch.from_numpy(images.astype(np.float32))  # always a fresh, writable copy
    else:
        out = images.to(torch.float32)
        if out.data_ptr() == images.data_ptr():  # .to() aliases a float32 input
            out = out.clone()
    if scale != 1.0:
        out.div_(scale)
    return out


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) std of ``images`` [N, C, H, W]; a zero std becomes 1."""
    if images.shape[0] == 0:
        channels = images.shape[1]
        return (0.0,) * channels, (1.0,) * channels
    std, mean = torch.std_mean(images, dim=(0, 2, 3), correction=0)  # no full-size copy
    std = torch.where(std > 0, std, torch.ones_like(std))
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def normalize_(images: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """Normalize ``images`` [N, C, H, W] in place, channel by channel, and return it."""
    for c, (m, s) in enumerate(zip(mean, std)):
        images[:, c].sub_(m).div_(s)
    return images


def denormalize(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """Undo :func:`normalize_` on ``x`` [..., C, H, W] (a new tensor, values back in [0, 1])."""
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(-1, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(-1, 1, 1)
    return x * s + m
