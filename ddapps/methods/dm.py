"""Distribution matching (DM).

Zhao & Bilen, "Dataset Condensation with Distribution Matching", WACV 2023.

Each iteration samples a randomly initialised network ``psi`` (frozen) and, for every class ``c``,
a real batch; both real and synthetic images go through the same differentiable siamese
augmentation ``A`` (Zhao & Bilen, ICML 2021). The loss minimised over the synthetic images ``S`` is

    L(S) = sum_c || mean_{x in T_c} psi(A(x)) - mean_{s in S_c} psi(A(s)) ||^2

with ``psi`` the embedding before the classifier. There is no inner training loop, which makes DM
far cheaper than gradient or trajectory matching. Paper defaults: ConvNet-3, 20,000 iterations,
SGD on images with lr 1.0 and momentum 0.5, 256 real images per class, real initialisation, DSA.

Speed: all classes go through the network in one batched forward (real side under
``torch.no_grad``; under ``--precision bf16`` on a bfloat16 copy of the network, see
:func:`ddapps.utils.precision.frozen_embed`), ConvNet's first block is one batched matrix product
(:mod:`ddapps.nets.fused`), and the network's parameters are re-initialised in place each iteration.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
from torch import Tensor

from ddapps.augment import DSA, default_strategy
from ddapps.data import Benchmark
from ddapps.methods.base import METHODS, IterativeConfig
from ddapps.methods.iterative import IterativeDistiller
from ddapps.nets import create_net, reinitialize_
from ddapps.synthetic import SyntheticSet
from ddapps.utils.precision import frozen_embed
from ddapps.validation import check_number, check_positive


@dataclass(frozen=True)
class DMConfig(IterativeConfig):
    """DM hyper-parameters; defaults are the paper's (``main_DM.py``)."""

    iterations: int = 20000
    lr_img: float = 1.0
    momentum: float = 0.5
    batch_real: int = 256
    net: str = "convnet"
    net_options: dict[str, Any] = field(default_factory=dict)
    dsa: bool = True
    dsa_strategy: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_number("lr_img", self.lr_img)
        check_number("momentum", self.momentum, low_inclusive=True)
        check_positive("batch_real", self.batch_real)


@METHODS.register("dm")
class DistributionMatching(IterativeDistiller):
    """Distribution matching (Zhao & Bilen, WACV 2023): match class-wise mean embeddings."""

    name = "dm"
    config_class = DMConfig
    config: DMConfig
    smoke_config = {"iterations": 4, "batch_real": 8, "net_options": {"width": 16}}

    def make_optimizer(self, params: dict[str, Tensor]) -> torch.optim.Optimizer:
        return torch.optim.SGD([params["images"]], lr=self.config.lr_img, momentum=self.config.momentum)

    def augmentation_strategy(self) -> str:
        return self.strategy

    def setup(self, real: Benchmark, ipc: int, generator: torch.Generator) -> None:
        cfg = self.config
        self.net = create_net(cfg.net, real.channels, real.num_classes, real.image_size, **cfg.net_options)
        self.net.to(self.device).train().requires_grad_(False)
        strategy = cfg.dsa_strategy or default_strategy(real.name)
        self.dsa = DSA(strategy) if cfg.dsa else None
        self.strategy = strategy if cfg.dsa else "none"
        self.real_images = real.train.images.to(self.device)

    def loss(
        self, params: dict[str, Tensor], real: Benchmark, ipc: int, generator: torch.Generator, iteration: int
    ) -> Tensor:
        reinitialize_(self.net, generator)
        syn = params["images"]
        per_class = [syn[c * ipc : (c + 1) * ipc] for c in range(real.num_classes)]
        real_batches, syn_batches = self.class_batches(per_class, real, generator)
        return self.mean_embedding_gap(real_batches, syn_batches)[0]

    def class_batches(
        self, syn_per_class: Sequence[Tensor], real: Benchmark, generator: torch.Generator
    ) -> tuple[list[Tensor], list[Tensor]]:
        """Per owned class (:meth:`owns_class`): ``batch_real`` real images and the class's
        synthetic images, both under one shared (siamese) DSA draw when DSA is on."""
        real_batches, syn_batches = [], []
        for c, x_syn in enumerate(syn_per_class):
            idx = real.train.class_indices(c)
            pick = idx[torch.randperm(idx.numel(), generator=generator)[: self.config.batch_real]]
            aug = None
            if self.dsa is not None:
                aug = self.dsa.siamese_draw(pick.numel(), x_syn.shape[0], generator=generator, device=self.device)
            if not self.owns_class(c):
                continue
            x_real = self.real_images[pick.to(self.device)]
            if self.dsa is not None and aug is not None:
                x_real, x_syn = self.dsa.apply(x_real, aug), self.dsa.apply(x_syn, aug)
            real_batches.append(x_real)
            syn_batches.append(x_syn)
        return real_batches, syn_batches

    def mean_embedding_gap(
        self, real_batches: Sequence[Tensor], syn_batches: Sequence[Tensor]
    ) -> tuple[Tensor, Tensor]:
        """``(sum_c ||mean psi(real_c) - mean psi(syn_c)||^2, psi(syn))`` with ``psi = self.net.embed``.

        Every class must have the same number of synthetic images; the real side runs under
        ``no_grad`` (:func:`frozen_embed`) and all classes go through the network in one batched forward per side.
        """
        num_classes = len(real_batches)
        real_sizes = [x.shape[0] for x in real_batches]
        real_feat = frozen_embed(self.net, torch.cat(list(real_batches)))
        real_labels = torch.repeat_interleave(
            torch.arange(num_classes, device=self.device), torch.tensor(real_sizes, device=self.device)
        )
        real_mean = torch.zeros(num_classes, real_feat.shape[1], device=self.device).index_add_(
            0, real_labels, real_feat
        ) / torch.tensor(real_sizes, device=self.device, dtype=real_feat.dtype).unsqueeze(1)
        syn_feat = self.net.embed(torch.cat(list(syn_batches)))
        syn_mean = syn_feat.reshape(num_classes, -1, syn_feat.shape[1]).mean(dim=1)
        return ((real_mean - syn_mean) ** 2).sum(), syn_feat

    def finalize(self, params: dict[str, Tensor], real: Benchmark, ipc: int, **meta: Any) -> SyntheticSet:
        return self.make_synset(real, ipc, params["images"], dsa_strategy=self.strategy, **meta)
