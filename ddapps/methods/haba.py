"""Hallucinator-basis factorization (``haba``).

Liu, Wang, Yang, Ye & Wang, "Dataset Distillation via Factorization", NeurIPS 2022 (HaBa): the set
is ``N`` bases per class plus ``n_hallucinators`` (paper: 5) small networks shared by all classes;
hallucinator ``j`` turns basis ``b`` into the training image ``H_j(b)`` with ``b``'s label (decoder
``hallucinator`` of :mod:`ddapps.factorization`: conv encoder, learned per-channel scale and
shift, conv-transpose decoder, plus the basis itself). Bases and hallucinator weights minimise
the matcher's loss on the ``N * n_hallucinators`` decoded images per class:

    L(bases, theta) = L_matcher( {H_j(b; theta_j)} ).

The paper's matcher is MTT (default here; it needs expert trajectories, see ``mtt``);
``matcher="dm"`` (or ``dc``/``dsa``) runs it cheaply on CPU. Left out: the paper's adversarial
contrastive terms (hallucinator-pair feature diversity and the basis/image mutual-information
terms); only the matching loss is minimised.

Budget: the hallucinators' weights are charged to the set. ``N`` is the largest count that fits
``K * ipc * C * H * W`` floats; when even one full-size basis per class does not fit (e.g. IPC 1),
bases are stored at ``1/base_scale`` of the resolution (the smallest of 2, 4, ... that fits) and
upsampled before the hallucinators (``base_scale`` fixes it instead). ``n_hallucinators`` is a
maximum: on budgets too small for their weights (tiny images at IPC 1) fewer are used. The chosen
values are saved in the set's ``factorization_config``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from ddapps.data import Benchmark
from ddapps.errors import ConfigError
from ddapps.factorization import hallucinator_numel, hallucinator_shapes, packed_columns
from ddapps.methods.base import METHODS
from ddapps.methods.factorized import FactorizedConfig, FactorizedDistiller, Layout
from ddapps.validation import check_number, check_optional_positive, check_positive

DECODER_INIT_STD = 0.1
"""Relative scale of the decoder weights at initialisation: hallucinated images start as their
basis plus a small, hallucinator-specific perturbation."""


@dataclass(frozen=True)
class HaBaConfig(FactorizedConfig):
    """HaBa options; defaults follow the paper (5 hallucinators, MTT matcher)."""

    iterations: int = 15000
    matcher: str = "mtt"
    n_hallucinators: int = 5
    hidden: int = 3
    kernel: int = 3
    lr_hallucinators: float = 1e-2
    base_scale: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive("n_hallucinators", self.n_hallucinators)
        check_positive("hidden", self.hidden)
        if check_positive("kernel", self.kernel) % 2 == 0:
            raise ConfigError(f"kernel must be a positive odd number, got {self.kernel}")
        check_number("lr_hallucinators", self.lr_hallucinators)
        check_optional_positive("base_scale", self.base_scale)


@METHODS.register("haba")
class HaBaDistiller(FactorizedDistiller):
    """HaBa (Liu et al., NeurIPS 2022): bases x hallucinators, learned with a matcher's loss."""

    name = "haba"
    factorization = "hallucinator"
    config_class = HaBaConfig
    config: HaBaConfig
    smoke_config = {
        "iterations": 4,
        "matcher": "dm",
        "n_hallucinators": 2,
        "hidden": 6,
        "base_scale": 2,
        "matcher_options": {"batch_real": 8},
        "net_options": {"width": 16},
    }

    def layout(self, real: Benchmark, ipc: int) -> Layout:
        cfg, (h, w) = self.config, real.image_size
        if cfg.base_scale is not None:
            scales = [cfg.base_scale]
        else:
            scales = [2**i for i in range(int(math.log2(min(h, w))) + 1)]
        for count in range(cfg.n_hallucinators, 0, -1):
            for s in scales:
                units = self._bases_that_fit(real, ipc, count, s)
                if units >= 1:
                    config = {
                        "n_hallucinators": count,
                        "channels": real.channels,
                        "hidden": cfg.hidden,
                        "kernel": cfg.kernel,
                        "image_size": [h, w],
                        "base_scale": s,
                    }
                    return Layout(units=units, per_unit=count, config=config)
        raise ConfigError(f"haba: not even one hallucinator and one basis per class fit ipc={ipc}; lower hidden")

    def _bases_that_fit(self, real: Benchmark, ipc: int, count: int, scale: int) -> int:
        """Most bases per class at ``1/scale`` resolution beside ``count`` hallucinators (0: none)."""
        (h, w), k = real.image_size, real.num_classes
        if h % scale or w % scale:
            return 0
        weights = hallucinator_numel(real.channels, self.config.hidden, self.config.kernel, count)
        budget = k * ipc * real.channels * h * w
        per_basis = real.channels * (h // scale) * (w // scale)
        units = budget // (k * per_basis)
        while units >= 1 and k * units * (per_basis + packed_columns(weights, k * units)) > budget:
            units -= 1
        return units

    def encode(self, images: Tensor, layout: Layout) -> dict[str, Tensor]:
        s = layout.config["base_scale"]
        if s > 1:
            images = F.interpolate(images, scale_factor=1 / s, mode="area")
        return {"bases": images.contiguous()}

    def shared_factors(self, layout: Layout, rows: int, generator: torch.Generator) -> dict[str, Tensor]:
        cfg = self.config
        channels, count = layout.config["channels"], layout.config["n_hallucinators"]
        fan_enc, fan_dec = channels * cfg.kernel**2, cfg.hidden * cfg.kernel**2
        init: dict[str, Callable[[tuple[int, ...]], Tensor]] = {
            "enc_weight": lambda shape: torch.randn(shape, generator=generator) / math.sqrt(fan_enc),
            "enc_bias": torch.zeros,
            "scale": torch.ones,
            "shift": torch.zeros,
            "dec_weight": lambda shape: torch.randn(shape, generator=generator) * DECODER_INIT_STD / math.sqrt(fan_dec),
            "dec_bias": torch.zeros,
        }
        shapes = hallucinator_shapes(channels, cfg.hidden, cfg.kernel)
        flat = torch.cat([init[key](shape).reshape(-1) for _ in range(count) for key, shape in shapes.items()])
        cols = packed_columns(flat.numel(), rows)
        return {"hallucinators": F.pad(flat, (0, rows * cols - flat.numel())).reshape(rows, cols)}

    def factor_lr(self, key: str) -> float:
        return self.config.lr_hallucinators if key == "hallucinators" else super().factor_lr(key)
