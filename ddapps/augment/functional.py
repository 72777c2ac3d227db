"""Differentiable image operations of DSA, applied with explicit per-image values.

Zhao & Bilen, "Dataset Condensation with Differentiable Siamese Augmentation", ICML 2021
(arXiv:2102.08259), Sec. 3.2: every transform must be differentiable w.r.t. the images so that the
gradient of the matching loss reaches the synthetic set through the augmentation.

Each function takes a float tensor ``x`` of shape ``[N, C, H, W]`` and per-image values whose first
dimension is ``N``; nothing here is random. All are vectorised over the batch and run on the
device of ``x`` (the values are moved there and cast to its dtype).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def _per_image(v: Tensor, x: Tensor) -> Tensor:
    """``v`` ([N]) cast to ``x``'s dtype/device and shaped to broadcast against ``[N, C, H, W]``."""
    return v.to(device=x.device, dtype=x.dtype).reshape(-1, 1, 1, 1)


def adjust_brightness(x: Tensor, shift: Tensor) -> Tensor:
    """``x + shift`` per image (the paper samples ``shift = (U - 0.5) * brightness``)."""
    return x + _per_image(shift, x)


def adjust_saturation(x: Tensor, factor: Tensor) -> Tensor:
    """``(x - m) * factor + m`` with ``m`` the per-pixel mean over channels (``U * saturation``)."""
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * _per_image(factor, x) + mean


def adjust_contrast(x: Tensor, factor: Tensor) -> Tensor:
    """``(x - m) * factor + m`` with ``m`` the mean of each image (``U + contrast``)."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * _per_image(factor, x) + mean


def adjust_color(x: Tensor, brightness: Tensor, saturation: Tensor, contrast: Tensor) -> Tensor:
    """The paper's ``color`` group: brightness, then saturation, then contrast."""
    x = adjust_saturation(adjust_brightness(x, brightness), saturation)
    return adjust_contrast(x, contrast)


def translate(x: Tensor, shift: Tensor) -> Tensor:
    """Shift each image by whole pixels, filling with zeros (the paper's ``crop``).

    ``shift`` is ``[N, 2]`` integer-valued ``(dx, dy)``: ``out[..., i, j] = x[..., i - dy, j - dx]``
    where that pixel exists, else 0. Implemented as one gather (no padding copy, no host sync).
    """
    n, _, h, w = x.shape
    shift = shift.to(device=x.device).long()
    rows = torch.arange(h, device=x.device)[None, :] - shift[:, 1:2]  # [N, H]
    cols = torch.arange(w, device=x.device)[None, :] - shift[:, 0:1]  # [N, W]
    valid = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None]
    gathered = x.permute(0, 2, 3, 1)[
        batch, rows.clamp(0, h - 1)[:, :, None], cols.clamp(0, w - 1)[:, None, :]
    ]  # [N, H, W, C]
    out = gathered.permute(0, 3, 1, 2)
    return torch.where(valid[:, None], out, out.new_zeros(())).contiguous()


def cutout(x: Tensor, center: Tensor, size: tuple[int, int]) -> Tensor:
    """Zero a ``size = (side_w, side_h)`` rectangle centred at ``center`` ([N, 2], ``(cx, cy)``).

    The rectangle spans columns ``cx - side_w // 2`` to ``cx - side_w // 2 + side_w - 1`` (rows
    likewise) and is clipped at the border.
    """
    _, _, h, w = x.shape
    side_w, side_h = size
    center = center.to(device=x.device).long()
    x0 = (center[:, 0] - side_w // 2)[:, None]
    y0 = (center[:, 1] - side_h // 2)[:, None]
    xs = torch.arange(w, device=x.device)[None, :]
    ys = torch.arange(h, device=x.device)[None, :]
    in_rows = (ys >= y0) & (ys < y0 + side_h)  # [N, H]
    in_cols = (xs >= x0) & (xs < x0 + side_w)  # [N, W]
    inside = in_rows[:, :, None] & in_cols[:, None, :]
    return torch.where(inside[:, None], x.new_zeros(()), x)


def hflip(x: Tensor, mask: Tensor) -> Tensor:
    """Mirror left-right the images where ``mask`` ([N], bool) is true."""
    mask = mask.to(device=x.device, dtype=torch.bool).reshape(-1, 1, 1, 1)
    return torch.where(mask, x.flip(3), x)


def _warp(x: Tensor, theta: Tensor) -> Tensor:
    grid = F.affine_grid(theta, list(x.shape), align_corners=True)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def scale(x: Tensor, factors: Tensor) -> Tensor:
    """Scale the sampling grid per axis: ``factors`` is ``[N, 2]`` ``(sx, sy)``.

    The output samples ``x`` at ``(sx * u, sy * v)`` in normalised coordinates (bilinear,
    zeros outside), i.e. ``theta = [[sx, 0, 0], [0, sy, 0]]`` for ``affine_grid``.
    """
    f = factors.to(device=x.device, dtype=x.dtype)
    theta = x.new_zeros(x.shape[0], 2, 3)
    theta[:, 0, 0] = f[:, 0]
    theta[:, 1, 1] = f[:, 1]
    return _warp(x, theta)


def rotate(x: Tensor, angle_deg: Tensor) -> Tensor:
    """Rotate each image by ``angle_deg`` ([N], degrees) about its centre (bilinear, zero fill).

    ``theta = [[cos a, sin a, 0], [-sin a, cos a, 0]]`` in normalised coordinates.
    """
    a = angle_deg.to(device=x.device, dtype=x.dtype) * (math.pi / 180.0)
    cos, sin = torch.cos(a), torch.sin(a)
    theta = torch.stack(
        [torch.stack([cos, sin, torch.zeros_like(a)], dim=1), torch.stack([-sin, cos, torch.zeros_like(a)], dim=1)],
        dim=1,
    )
    return _warp(x, theta)
