"""Neural Feature Regression with Pooling (FRePo).

Zhou, Nezhadarya & Ba, "Dataset Distillation using Neural Feature Regression", NeurIPS 2022.
Instead of an infinite-width kernel, FRePo regresses on the features ``f(x)`` of a finite network
(its penultimate layer) and keeps a pool of ``pool_size`` such networks at different stages of
training on the synthetic set. Each iteration picks a pool member at random (a member that has
taken ``max_online_updates`` steps is first replaced by a fresh initialisation), minimises over
the synthetic images ``X_s`` and their learnable labels ``y_s``

    K = f(X) f(X')^T / D,   L = 0.5 * mean((y_t - K_ts (K_ss + lambda tr(K_ss)/n I)^-1 y_s)^2)

on a real target batch with centred one-hot labels (``lambda = 1e-6``), then trains that member
for ``online_steps`` Adam steps (lr ``lr_net``) on the updated synthetic set with an MSE loss to
``y_s``. The feature extractor is held fixed inside the meta-gradient, so no inner loop is unrolled.

Defaults: pool of 10 ConvNet-3 (width 128, average pooling, no normalisation), reset after 100
online updates, labels learned (initialised to centred one-hot), 1024 target images.
Substitutions, stated: the images and labels are optimised with Adam at lr 3e-4 instead of the
paper's LAMB at 3e-4 (LAMB scales each step by ``||x|| / ||update||``, i.e. about ``lr`` per
element for images of unit RMS, which is what Adam's step is); the label-margin term some
implementations add to the MSE is not used; pool members all start fresh at the first iteration
(no staggered warm-up). The pool (weights, Adam moments, step counts) is saved in checkpoints
through :meth:`extra_state`, so a resumed run is bit-exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ddapps.data import Benchmark
from ddapps.methods.base import METHODS
from ddapps.methods.kernel.common import KernelConfig, KernelDistiller
from ddapps.methods.kernel.pool import ModelPool
from ddapps.nets import create_net
from ddapps.validation import check_count, check_number, check_positive


@dataclass(frozen=True)
class FRePoConfig(KernelConfig):
    """FRePo hyper-parameters; defaults are the paper's (Adam in place of LAMB)."""

    lr_img: float = 3e-4
    lr_label: float = 3e-4
    reg: float = 1e-6
    batch_real: int = 1024
    learn_labels: bool = True
    float64: bool = False
    pool_size: int = 10
    max_online_updates: int = 100
    online_steps: int = 1
    lr_net: float = 3e-4
    net: str = "convnet"
    net_options: dict[str, Any] = field(default_factory=lambda: {"norm": "none"})

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive("pool_size", self.pool_size)
        check_positive("max_online_updates", self.max_online_updates)
        check_count("online_steps", self.online_steps)
        check_number("lr_net", self.lr_net)


@METHODS.register("frepo")
class FRePo(KernelDistiller):
    """FRePo (Zhou et al., NeurIPS 2022): KRR on the features of an online-trained model pool."""

    name = "frepo"
    config_class = FRePoConfig
    config: FRePoConfig
    smoke_config = {
        "iterations": 4,
        "batch_real": 16,
        "pool_size": 2,
        "max_online_updates": 2,
        "net_options": {"norm": "none", "width": 8},
    }

    def setup(self, real: Benchmark, ipc: int, generator: torch.Generator) -> None:
        super().setup(real, ipc, generator)
        cfg = self.config
        shape = (real.channels, real.num_classes, real.image_size)
        nets = [
            create_net(cfg.net, *shape, generator=generator, **cfg.net_options).to(self.device).eval()
            for _ in range(cfg.pool_size)
        ]
        self.pool = ModelPool(nets, lr=cfg.lr_net, max_updates=cfg.max_online_updates)
        self.current = 0

    def kernels(self, x_s: Tensor, x_t: Tensor, generator: torch.Generator, iteration: int) -> tuple[Tensor, Tensor]:
        i = int(torch.randint(len(self.pool), (1,), generator=generator))
        if self.pool.expired(i):
            self.pool.reset_(i, generator)
        self.current = i
        net = self.pool.nets[i]
        with torch.no_grad():
            f_t = net.embed(x_t).to(self.dtype)
        f_s = net.embed(x_s).to(self.dtype)
        scale = 1.0 / f_s.shape[1]
        return scale * (f_s @ f_s.T), scale * (f_t @ f_s.T)

    def after_step(self, params: dict[str, Tensor]) -> None:
        labels = self.support_labels(params)
        for _ in range(self.config.online_steps):
            self.pool.train_step_(self.current, params["images"], labels)

    def extra_state(self) -> dict[str, Tensor]:
        return {f"pool.{k}": v for k, v in self.pool.state().items()}

    def load_extra_state(self, state: dict[str, Tensor]) -> None:
        self.pool.load_state({k.removeprefix("pool."): v for k, v in state.items()})
