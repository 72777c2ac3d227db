"""Random resized crops as one batched, differentiable resampling (``grid_sample``).

The crop of torchvision's ``RandomResizedCrop`` (the Inception augmentation of Szegedy et al.,
"Going Deeper with Convolutions", CVPR 2015): a box covering a fraction ``s ~ U(scale)`` of the
image area with aspect ratio ``r``, ``log r ~ U(log ratio)``, at a uniform position, resized to the
output size. SRe2L (Yin et al., NeurIPS 2023) recovers images through such crops and FKD-style
relabelling labels them; RDED (Sun et al., CVPR 2024) draws its candidate patches with them
(``ratio=(1, 1)``). Boxes are drawn first (:func:`sample_boxes`, from an explicit generator) and
applied second (:func:`apply_boxes`), so the same boxes can be applied again.

Like torchvision, up to 10 draws are tried per box and a box that does not fit in the image after
10 falls back to the whole image. Resampling is bilinear (``align_corners=False``) without
antialiasing, so that the crop is differentiable with respect to the images.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

ATTEMPTS = 10


def sample_boxes(
    n: int,
    *,
    generator: torch.Generator,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    aspect: float = 1.0,
    flip: bool = False,
) -> Tensor:
    """``float32 [n, 5]`` boxes ``(top, left, height, width, flipped)`` in fractions of the image side.

    ``aspect`` is the image's width / height (the area fraction is of the whole image). With
    ``flip`` each box is mirrored horizontally with probability 1/2 (the last column is 0 or 1).
    """
    area = torch.empty(n, ATTEMPTS).uniform_(scale[0], scale[1], generator=generator)
    log_r = torch.empty(n, ATTEMPTS).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=generator)
    r = log_r.exp()
    # width and height as fractions of the image's: w_px * h_px = s * W * H, w_px / h_px = r
    w = torch.sqrt(area * r / aspect)
    h = torch.sqrt(area / r * aspect)
    fits = (w <= 1) & (h <= 1)
    first = torch.where(fits.any(dim=1), fits.int().argmax(dim=1), torch.full((n,), -1))
    rows = torch.arange(n)
    ok = first >= 0
    w = torch.where(ok, w[rows, first.clamp(min=0)], torch.ones(n))
    h = torch.where(ok, h[rows, first.clamp(min=0)], torch.ones(n))
    top = torch.rand(n, generator=generator) * (1 - h)
    left = torch.rand(n, generator=generator) * (1 - w)
    flipped = (torch.rand(n, generator=generator) < 0.5).float() if flip else torch.zeros(n)
    return torch.stack([top, left, h, w, flipped], dim=1)


def apply_boxes(images: Tensor, boxes: Tensor, size: tuple[int, int]) -> Tensor:
    """Crop box ``i`` out of ``images[i]`` and resize it to ``size`` (differentiable in ``images``)."""
    boxes = boxes.to(device=images.device, dtype=images.dtype)
    top, left, h, w, flipped = boxes.unbind(dim=1)
    sign = 1 - 2 * flipped
    theta = torch.zeros(images.shape[0], 2, 3, device=images.device, dtype=images.dtype)
    # output coordinate u in [-1, 1] reads input coordinate centre + extent * u (normalised)
    theta[:, 0, 0] = w * sign
    theta[:, 0, 2] = 2 * left + w - 1
    theta[:, 1, 1] = h
    theta[:, 1, 2] = 2 * top + h - 1
    grid = F.affine_grid(theta, [images.shape[0], images.shape[1], *size], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
