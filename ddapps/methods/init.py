"""Initialisation of synthetic images: real samples, Gaussian noise, or a warm start."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ddapps.data import Benchmark
from ddapps.errors import ConfigError
from ddapps.synthetic import SyntheticSet

INIT_MODES = ("real", "noise")


def initial_images(
    real: Benchmark,
    ipc: int,
    mode: str,
    generator: torch.Generator,
    init: SyntheticSet | None = None,
    factor: int = 1,
) -> Tensor:
    """Class-sorted ``[K * ipc, C, H, W]`` starting images.

    Classes present in ``init`` start from its images; the remaining slots are filled with
    ``mode``: ``real`` (random real images of the class, as DM/DSA/MTT do) or ``noise``
    (standard Gaussian in normalised space, as DC's default). With ``factor > 1`` each real
    starting image is a ``factor x factor`` tile of downsampled real images (:func:`tile_images`),
    so every piece of a multi-formation set starts as a whole image of its class (IDC, IDM).
    """
    if mode not in INIT_MODES:
        raise ConfigError(f"unknown init mode {mode!r}; choose one of: {', '.join(INIT_MODES)}")
    shape = (real.channels, *real.image_size)
    blocks = []
    for c in range(real.num_classes):
        warm = _warm_images(init, c)
        missing = ipc - warm.shape[0]
        if mode == "real":
            fresh = (
                tile_images(real.train.sample_class(c, missing * factor**2, generator), factor) if missing else warm[:0]
            )
        else:
            fresh = torch.randn((missing, *shape), generator=generator)
        blocks.append(torch.cat([warm.to(fresh.dtype), fresh.to("cpu")]) if warm.numel() else fresh.to("cpu"))
    return torch.cat(blocks).float().contiguous()


def tile_images(images: Tensor, factor: int) -> Tensor:
    """``[n * f * f, C, H, W]`` -> ``[n, C, H, W]``: groups of ``f*f`` images, each downsampled
    (area) to ``H/f x W/f`` and laid out as an ``f x f`` tile; ``factor=1`` returns them unchanged."""
    if factor == 1:
        return images
    n, c, (h, w) = images.shape[0] // factor**2, images.shape[1], images.shape[2:]
    if h % factor or w % factor:
        raise ConfigError(f"factor {factor} does not divide the image size {h}x{w}")
    small = F.interpolate(images, size=(h // factor, w // factor), mode="area")
    tiles = small.reshape(n, factor, factor, c, h // factor, w // factor).permute(0, 3, 1, 4, 2, 5)
    return tiles.reshape(n, c, h, w)


def _warm_images(init: SyntheticSet | None, c: int) -> Tensor:
    if init is None or init.images is None:
        return torch.empty(0)
    return init.images[init.hard_labels() == c].detach().cpu()
