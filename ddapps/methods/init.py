"""Initialisation of synthetic images: real samples, Gaussian noise, or a warm start."""

from __future__ import annotations

import torch
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
) -> Tensor:
    """Class-sorted ``[K * ipc, C, H, W]`` starting images.

    Classes present in ``init`` start from its images; the remaining slots are filled with
    ``mode``: ``real`` (random real images of the class, as DM/DSA/MTT do) or ``noise``
    (standard Gaussian in normalised space, as DC's default).
    """
    if mode not in INIT_MODES:
        raise ConfigError(f"unknown init mode {mode!r}; choose one of: {', '.join(INIT_MODES)}")
    shape = (real.channels, *real.image_size)
    blocks = []
    for c in range(real.num_classes):
        warm = _warm_images(init, c)
        missing = ipc - warm.shape[0]
        if mode == "real":
            fresh = real.train.sample_class(c, missing, generator) if missing else warm[:0]
        else:
            fresh = torch.randn((missing, *shape), generator=generator)
        blocks.append(torch.cat([warm.to(fresh.dtype), fresh.to("cpu")]) if warm.numel() else fresh.to("cpu"))
    return torch.cat(blocks).float().contiguous()


def _warm_images(init: SyntheticSet | None, c: int) -> Tensor:
    if init is None or init.images is None:
        return torch.empty(0)
    return init.images[init.hard_labels() == c].detach().cpu()
