"""Low-rank synthetic images (``lowrank``).

Yang et al., low-rank dataset-distillation plugin, NeurIPS 2023: every synthetic image is stored
as a per-channel product ``x = A @ B`` with ``A: [C, H, r]`` and ``B: [C, r, W]`` (rank ``r = 2``
by default), which costs ``C * r * (H + W)`` floats instead of ``C * H * W``, so the same budget
holds ``floor(ipc * H * W / (r * (H + W)))`` images per class. The factors minimise the chosen
matcher's loss on the decoded images (see :mod:`ddapps.methods.factorized`):

    L(A, B) = L_matcher( {A_i @ B_i} ).

The plugin is applied to DC, DM and MTT in the paper; ``matcher`` picks ``dm`` (default here: the
cheapest, and CPU-friendly), ``dc``, ``dsa`` or ``mtt``. Initialisation: the best rank-``r``
approximation (truncated SVD) of real images (or of Gaussian noise with ``init="noise"``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ddapps.data import Benchmark
from ddapps.errors import ConfigError
from ddapps.methods.base import METHODS
from ddapps.methods.factorized import FactorizedConfig, FactorizedDistiller, Layout
from ddapps.validation import check_positive


@dataclass(frozen=True)
class LowRankConfig(FactorizedConfig):
    """Low-rank plugin options: ``rank`` r of every channel (paper: 2) and the matcher's."""

    rank: int = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive("rank", self.rank)


@METHODS.register("lowrank")
class LowRankDistiller(FactorizedDistiller):
    """Low-rank factorized images (Yang et al., NeurIPS 2023) learned with a matcher's loss."""

    name = "lowrank"
    factorization = "lowrank"
    config_class = LowRankConfig
    config: LowRankConfig
    smoke_config = {"iterations": 4, "rank": 4, "matcher_options": {"batch_real": 8}, "net_options": {"width": 16}}

    def layout(self, real: Benchmark, ipc: int) -> Layout:
        (h, w), r = real.image_size, self.config.rank
        if r > min(h, w):
            raise ConfigError(f"rank {r} exceeds the image size {h}x{w}")
        units = ipc * h * w // (r * (h + w))
        if units < 1:
            raise ConfigError(f"rank {r} images ({r * (h + w)} floats per channel) exceed ipc={ipc} of {h}x{w} images")
        return Layout(units=units, per_unit=1, config={"rank": r})

    def encode(self, images: Tensor, layout: Layout) -> dict[str, Tensor]:
        u, s, vh = torch.linalg.svd(images, full_matrices=False)
        r, root = layout.config["rank"], s[..., : layout.config["rank"]].sqrt()
        a = u[..., :r] * root.unsqueeze(-2)
        b = root.unsqueeze(-1) * vh[..., :r, :]
        return {"A": a.contiguous(), "B": b.contiguous()}
