"""Gradient matching: Dataset Condensation (DC) and its siamese-augmented variant (DSA).

* ``dc`` -- Zhao, Mopuri & Bilen, "Dataset Condensation with Gradient Matching", ICLR 2021.
* ``dsa`` -- Zhao & Bilen, "Dataset Condensation with Differentiable Siamese Augmentation",
  ICML 2021: the same algorithm with one random transform ``A_w`` shared by the real and the
  synthetic batch of each class (their Eq. 5).

The synthetic set ``S`` is learned so that, along the training trajectory of randomly initialised
networks ``theta``, the gradient of the loss on ``S`` matches the gradient on the real data ``T``:

    L(S) = sum_c D( grad_theta CE(theta; A_w(T_c)),  grad_theta CE(theta; A_w(S_c)) )

with ``D`` the layer-wise distance of :mod:`ddapps.methods.matching_losses` (``dis_metric``) and
``A_w`` the identity for DC. One *iteration* (the paper's outer iteration, ``config.iterations``
of them) is: re-initialise the network; then ``outer_loop`` times: compute ``L(S)`` on a fresh
batch of ``batch_real`` real images per class, take one SGD step on the images (``lr_img``,
momentum 0.5), and -- except after the last step -- train the network for ``inner_loop`` epochs
on the current synthetic set (SGD, ``lr_net``, batches of ``batch_train``; DSA-augmented for
``dsa``). ``outer_loop``/``inner_loop`` default to the paper's values for the IPC
(:data:`LOOPS_BY_IPC`). Networks with batch normalisation first see ``batch_bn`` real images
per class in training mode, then their BN layers are frozen (eval mode) for the matching.

Design: an iteration of :class:`~ddapps.methods.iterative.IterativeDistiller` is a whole outer
iteration. ``loss`` runs the first ``outer_loop - 1`` image steps itself (with the same image
optimiser the base loop owns, built by ``make_optimizer``) and returns the matching loss of the
last step, on which the base loop takes the final step. Everything else an iteration touches
(the network's weights, the net optimiser, which has no momentum and hence no state) is rebuilt
from the iteration's generator, so the checkpoint (images + image optimiser) is the whole state
and a resumed run is bitwise identical to an uninterrupted one. The loss reported per iteration
is that of its last outer step.

Speed: the list of parameters is cached; the real side's per-class gradients are taken with
``torch.autograd.grad`` and no graph; the synthetic side's with ``torch.func.grad`` over
``functional_call`` on detached parameters, so the final ``backward`` reaches only the images
(no wasted second-order gradients into the network). Batching classes with ``torch.vmap`` was
measured slower on CPU (real side 4.7 vs 3.0 CPU-s for 2 classes x 256 MNIST images), as was
one synthetic forward for all classes followed by per-class gradients.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.func import functional_call
from torch.func import grad as func_grad

from ddapps.augment import DSA, default_strategy, parse_strategy
from ddapps.data import Benchmark
from ddapps.methods.base import METHODS, IterativeConfig
from ddapps.methods.iterative import DivergenceError, IterativeDistiller
from ddapps.methods.matching_losses import check_metric, gradient_distance
from ddapps.nets import batch_norm_layers, create_net, reinitialize_
from ddapps.synthetic import SyntheticSet
from ddapps.utils.precision import parameter_gradients
from ddapps.validation import check_count, check_fields, check_number, check_optional_positive, check_positive

LOOPS_BY_IPC: dict[int, tuple[int, int]] = {
    1: (1, 1),
    10: (10, 50),
    20: (20, 25),
    30: (30, 20),
    40: (40, 15),
    50: (50, 10),
}
"""IPC -> (outer_loop, inner_loop) of the DC paper's experiments."""


def loops_for_ipc(ipc: int) -> tuple[int, int]:
    """``(outer_loop, inner_loop)`` of the nearest IPC in :data:`LOOPS_BY_IPC` (ties: the smaller)."""
    nearest = min(LOOPS_BY_IPC, key=lambda known: (abs(known - ipc), known))
    return LOOPS_BY_IPC[nearest]


@dataclass(frozen=True)
class GradientMatchingConfig(IterativeConfig):
    """Hyper-parameters shared by DC and DSA; defaults are the DC paper's.

    ``outer_loop``/``inner_loop`` ``None`` take the paper's values for the IPC
    (:func:`loops_for_ipc`). ``batch_bn`` real images per class set the statistics of
    batch-normalised networks before each matching step.
    """

    lr_img: float = 0.1
    momentum: float = 0.5
    lr_net: float = 0.01
    batch_real: int = 256
    batch_train: int = 256
    batch_bn: int = 16
    outer_loop: int | None = None
    inner_loop: int | None = None
    dis_metric: str = "ours"
    net: str = "convnet"
    net_options: dict[str, Any] = field(default_factory=dict)
    init: str = "noise"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_fields(self, check_number, "lr_img", "lr_net")
        check_number("momentum", self.momentum, low_inclusive=True)
        check_fields(self, check_positive, "batch_real", "batch_train", "batch_bn")
        check_optional_positive("outer_loop", self.outer_loop)
        if self.inner_loop is not None:
            check_count("inner_loop", self.inner_loop)
        check_metric(self.dis_metric)

    def loops(self, ipc: int) -> tuple[int, int]:
        """``(outer_loop, inner_loop)`` for ``ipc``: the configured values, else the paper's."""
        outer, inner = loops_for_ipc(ipc)
        return (
            self.outer_loop if self.outer_loop is not None else outer,
            self.inner_loop if self.inner_loop is not None else inner,
        )


@dataclass(frozen=True)
class DCConfig(GradientMatchingConfig):
    """DC (ICLR 2021): Gaussian-noise initialisation, no augmentation."""


@dataclass(frozen=True)
class DSAConfig(GradientMatchingConfig):
    """DSA (ICML 2021): real initialisation (the authors' README); ``dsa_strategy`` ``None`` is
    the paper's strategy for the dataset (:func:`~ddapps.augment.default_strategy`)."""

    init: str = "real"
    dsa_strategy: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.dsa_strategy is not None:
            parse_strategy(self.dsa_strategy)


class GradientMatching(IterativeDistiller):
    """Shared algorithm of DC and DSA (see the module docstring); subclasses pick the augmentation."""

    config: GradientMatchingConfig
    image_optimizer: torch.optim.Optimizer
    smoke_config = {
        "iterations": 4,
        "batch_real": 8,
        "batch_train": 8,
        "outer_loop": 2,
        "inner_loop": 1,
        "net_options": {"width": 16},
    }

    # ---------------------------------------------------------------- IterativeDistiller hooks
    def make_optimizer(self, params: dict[str, Tensor]) -> torch.optim.Optimizer:
        self.image_optimizer = torch.optim.SGD([params["images"]], lr=self.config.lr_img, momentum=self.config.momentum)
        return self.image_optimizer

    def adopt_optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        self.image_optimizer = optimizer  # the outer loop's steps update the wrapping method's tensors

    @classmethod
    def ipc_defaults(cls, ipc: int) -> dict[str, Any]:
        outer, inner = loops_for_ipc(ipc)
        return {"outer_loop": outer, "inner_loop": inner}

    def augmentation_strategy(self) -> str:
        return self.dsa.strategy if self.dsa is not None else "none"

    def setup(self, real: Benchmark, ipc: int, generator: torch.Generator) -> None:
        cfg = self.config
        self.net = create_net(
            cfg.net, real.channels, real.num_classes, real.image_size, generator=generator, **cfg.net_options
        ).to(self.device)
        # Cached once: reinitialize_ and the optimisers change the values in place, never the tensors.
        self.net_params = list(self.net.parameters())
        self.detached_params = {name: p.detach() for name, p in self.net.named_parameters()}
        self.bn_layers = batch_norm_layers(self.net)
        # Plain SGD has no state, so one optimiser serves every iteration and nothing needs checkpointing.
        self.net_optimizer = torch.optim.SGD(self.net_params, lr=cfg.lr_net)
        self.dsa = self.make_augment(real)
        self.real_images = real.train.images.to(self.device)
        self.class_indices = [real.train.class_indices(c) for c in range(real.num_classes)]
        self.num_classes = real.num_classes

    def loss(
        self, params: dict[str, Tensor], real: Benchmark, ipc: int, generator: torch.Generator, iteration: int
    ) -> Tensor:
        # params["images"] is read afresh at every outer step: a factorized wrapper
        # (ddapps.methods.factorized) passes a view that decodes its current factors there.
        reinitialize_(self.net, generator)
        outer, inner = self.config.loops(ipc)
        for step in range(outer - 1):
            loss = self.matching_loss(params["images"], ipc, generator)
            value = float(loss.detach())
            if not math.isfinite(value):
                raise DivergenceError(
                    f"{self.name}: loss is {value} at iteration {iteration}, outer step {step}; lower lr_img"
                )
            self.image_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.image_optimizer.step()
            self.train_between(params["images"].detach(), ipc, inner, generator)
        return self.matching_loss(params["images"], ipc, generator)

    def finalize(self, params: dict[str, Tensor], real: Benchmark, ipc: int, **meta: Any) -> SyntheticSet:
        strategy = self.dsa.strategy if self.dsa is not None else "none"
        outer, inner = self.config.loops(ipc)
        return self.make_synset(
            real, ipc, params["images"], dsa_strategy=strategy, outer_loop=outer, inner_loop=inner, **meta
        )

    # ---------------------------------------------------------------- the algorithm
    def make_augment(self, real: Benchmark) -> DSA | None:
        """The siamese augmentation (``None``: DC has none)."""
        return None

    def matching_loss(self, images: Tensor, ipc: int, generator: torch.Generator) -> Tensor:
        """``L(S)`` for the current network: summed per-class gradient distances (owned classes,
        :meth:`owns_class`).

        Draws ``batch_real`` real images per class (and, for DSA, one transform per class shared
        by the real and the synthetic batch) from ``generator``. Differentiable in ``images``
        only. Batch-normalised networks get their statistics from real data first (see
        :meth:`set_bn_statistics`) and keep them frozen here.
        """
        self.net.train()
        if self.bn_layers:
            self.set_bn_statistics(generator)
        total = images.new_zeros(())
        for c in range(self.num_classes):
            pick = self.real_indices(c, generator)
            aug = None
            if self.dsa is not None:
                aug = self.dsa.siamese_draw(pick.numel(), ipc, generator=generator, device=self.device)
            if not self.owns_class(c):
                continue
            x_real, x_syn = self.real_images[pick], images[c * ipc : (c + 1) * ipc]
            if self.dsa is not None and aug is not None:
                x_real, x_syn = self.dsa.apply(x_real, aug), self.dsa.apply(x_syn, aug)
            g_real = self.real_gradients(x_real, c)
            g_syn = self.synthetic_gradients(x_syn, c)
            total = total + gradient_distance(g_real, g_syn, self.config.dis_metric)
        return total

    def real_indices(self, c: int, generator: torch.Generator) -> Tensor:
        """Hook: positions of class ``c``'s real batch for one matching step (``batch_real`` distinct)."""
        return self.sample_indices(c, self.config.batch_real, generator)

    def real_gradients(self, x: Tensor, label: int) -> list[Tensor]:
        """Gradients of the mean cross-entropy of class-``label`` images ``x`` (no graph kept)."""
        target = torch.full((x.shape[0],), label, dtype=torch.long, device=self.device)
        return parameter_gradients(self.net, x, target)  # bf16 network copy under --precision bf16

    def synthetic_gradients(self, x: Tensor, label: int) -> list[Tensor]:
        """As :meth:`real_gradients`, but differentiable with respect to ``x``."""
        target = torch.full((x.shape[0],), label, dtype=torch.long, device=self.device)
        grads = func_grad(self._functional_loss)(self.detached_params, x, target)
        return [grads[name] for name in self.detached_params]

    def _functional_loss(self, params: dict[str, Tensor], x: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(functional_call(self.net, params, (x,)), target)

    def sample_indices(self, c: int, n: int, generator: torch.Generator) -> Tensor:
        """``n`` distinct positions of class ``c`` in the training split (the whole class if fewer)."""
        idx = self.class_indices[c]
        return idx[torch.randperm(idx.numel(), generator=generator)[:n]].to(self.device)

    @torch.no_grad()
    def set_bn_statistics(self, generator: torch.Generator) -> None:
        """One training-mode forward of ``batch_bn`` real images per class, then BN layers frozen."""
        picks = [self.sample_indices(c, self.config.batch_bn, generator) for c in range(self.num_classes)]
        self.net.train()
        self.net(self.real_images[torch.cat(picks)])
        for layer in self.bn_layers:
            layer.eval()

    def train_between(self, images: Tensor, ipc: int, inner: int, generator: torch.Generator) -> None:
        """Train the network between two outer steps: ``inner`` epochs on the synthetic ``images``
        (DC/DSA); IDC (:mod:`ddapps.methods.idc`) trains on real data instead."""
        labels = torch.arange(self.num_classes, device=self.device).repeat_interleave(ipc)
        self.train_net(images, labels, inner, generator)

    def train_net(self, images: Tensor, labels: Tensor, epochs: int, generator: torch.Generator) -> None:
        """``epochs`` epochs of SGD (``lr_net``, batches of ``batch_train``) on the synthetic set."""
        self.net.train()
        n, batch = images.shape[0], self.config.batch_train
        for _ in range(epochs):
            order = torch.randperm(n, generator=generator).to(self.device)
            for start in range(0, n, batch):
                pick = order[start : start + batch]
                x = images[pick]
                if self.dsa is not None:
                    x = self.dsa(x, generator=generator)
                self.net_optimizer.zero_grad(set_to_none=True)
                if self.bn_layers:  # batch norm updates running statistics: train the net itself
                    F.cross_entropy(self.net(x), labels[pick]).backward()
                else:  # fp32 master weights; the forward/backward in bf16 under --precision bf16
                    for p, g in zip(self.net_params, self.batch_gradients(x, labels[pick])):
                        p.grad = g
                self.net_optimizer.step()

    def batch_gradients(self, x: Tensor, labels: Tensor) -> list[Tensor]:
        """Hook: the network's parameter gradients of the mean cross-entropy on one training batch
        (split over ranks in :mod:`ddapps.distributed`)."""
        return parameter_gradients(self.net, x, labels)


@METHODS.register("dc")
class DatasetCondensation(GradientMatching):
    """DC (Zhao, Mopuri & Bilen, ICLR 2021): match network gradients on real and synthetic data."""

    name = "dc"
    config_class = DCConfig
    config: DCConfig


@METHODS.register("dsa")
class SiameseAugmentedCondensation(GradientMatching):
    """DSA (Zhao & Bilen, ICML 2021): gradient matching through one shared random augmentation."""

    name = "dsa"
    config_class = DSAConfig
    config: DSAConfig

    def make_augment(self, real: Benchmark) -> DSA | None:
        return DSA(self.config.dsa_strategy or default_strategy(real.name))
