"""Factorized synthetic sets: stored parameters + a decoder that turns them into training images.

A decoder is a pure, registered function: loading a synthetic set selects it by *name* from
:data:`DECODERS`, so a file can never make ddapps run code of its own. Storage is accounted
honestly: :func:`stored_floats` counts every number a set stores, decoded images are not stored.

Decoders shipped here:

* ``multiformation`` -- IDC (Kim et al., "Dataset Condensation via Efficient Synthetic-Data
  Parameterization", ICML 2022): each stored image is cut into ``factor x factor`` patches and each
  patch is upsampled back to full size, giving ``factor**2`` training images per stored image.
* ``lowrank`` -- Yang et al. ("Towards Efficient Deep Hashing Retrieval ..."/low-rank DD plugin,
  NeurIPS 2023): image ``= A @ B`` per channel with ``A: [N,C,H,r]`` and ``B: [N,C,r,W]``.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import torch.nn.functional as F
from torch import Tensor

from ddapps.errors import ConfigError
from ddapps.registry import Registry

Decoder = Callable[[Mapping[str, Tensor], Tensor, Mapping[str, Any]], tuple[Tensor, Tensor]]
"""``decoder(factors, labels, config) -> (images, labels)``; must be differentiable in factors."""

DECODERS: Registry[Decoder] = Registry("factorization")


@DECODERS.register("multiformation")
def decode_multiformation(
    factors: Mapping[str, Tensor], labels: Tensor, config: Mapping[str, Any]
) -> tuple[Tensor, Tensor]:
    """IDC multi-formation: ``factors["images"] [N,C,H,W]`` -> ``[N*f*f, C, H, W]``."""
    images = factors["images"]
    f = int(config.get("factor", 2))
    if f < 1:
        raise ConfigError(f"multiformation factor must be >= 1, got {f}")
    if f == 1:
        return images, labels
    n, c, h, w = images.shape
    if h % f or w % f:
        raise ConfigError(f"multiformation factor {f} does not divide image size {h}x{w}")
    ph, pw = h // f, w // f
    patches = images.reshape(n, c, f, ph, f, pw).permute(0, 2, 4, 1, 3, 5)
    patches = patches.reshape(n * f * f, c, ph, pw)
    decoded = F.interpolate(patches, size=(h, w), mode="bilinear", align_corners=False)
    return decoded, labels.repeat_interleave(f * f, dim=0)


@DECODERS.register("lowrank")
def decode_lowrank(
    factors: Mapping[str, Tensor], labels: Tensor, config: Mapping[str, Any]
) -> tuple[Tensor, Tensor]:
    """Low-rank images: ``A [N,C,H,r] @ B [N,C,r,W]`` -> ``[N,C,H,W]``."""
    return factors["A"] @ factors["B"], labels


def stored_floats(images: Tensor | None, factors: Mapping[str, Tensor], labels: Tensor) -> int:
    """Number of floating-point values stored (images or factors, plus soft labels)."""
    total = 0 if images is None else images.numel()
    total += sum(t.numel() for t in factors.values())
    if labels.is_floating_point():
        total += labels.numel()
    return total
