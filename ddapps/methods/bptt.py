"""Dataset distillation by back-propagation through unrolled training (BPTT).

Wang, Zhu, Torralba & Efros, "Dataset Distillation", arXiv 1811.10959 (2018), Algorithm 1 with
several steps and epochs, "random init" variant.

Each iteration draws a freshly initialised network ``theta_0 ~ p(theta)`` and trains it
*differentiably* on the synthetic set ``S`` for ``inner_epochs x inner_steps`` SGD steps, step ``i``
on its own fixed class-balanced batch ``S_i`` (``step_ipc`` images per class) with its own learned
learning rate ``eta_i``:

    theta_{i+1} = theta_i - eta_i * grad_theta CE(f(theta_i, S_i), y_i)

(the same batch sequence is repeated every epoch, as in the paper). It then minimises over the
synthetic images ``S`` and the learning rates ``eta``

    L(S, eta) = CE(f(theta_N, x), y),    (x, y) a batch of ``batch_real`` real images,

back-propagating through the whole unrolled training (:func:`~ddapps.methods.trajectory.unroll.unroll_sgd`).
``eta_i = softplus(rho_i)`` stays positive; ``rho`` is learned alongside the images.

Memory grows linearly with ``inner_steps * inner_epochs``: every unrolled step keeps its
activations and its parameter vector for the backward pass.

Paper defaults (some from the authors' released settings, not re-verified against the paper:
n/v): 10 steps x 3 epochs, one image per class per step, images initialised from N(0, 1), Adam
(lr 0.01, betas 0.5/0.999) on images and learning rates, eta initialised at 0.02, real batch 1024
(n/v), optimiser lr halved every 40 of 400 real-data epochs (here: every ``lr_decay_every``
iterations, n/v). The paper trains LeNet (MNIST) / AlexNet (CIFAR); like the other methods here
the default network is ConvNet-3 (``net``/``net_options``).

Evaluation: the learned rates belong to the distilled schedule (a fixed number of steps from a
fresh init), not to the standard protocol's 300-epoch SGD with momentum, so by default the set
carries no ``lr`` and is evaluated with the standard protocol; the rates are kept in
``meta["learned_lrs"]``. ``eval_lr="learned"`` stores their mean as the set's ``lr``, which the
protocol then trains with (the convention of ``mtt``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ddapps.augment import DSA, default_strategy
from ddapps.data import Benchmark
from ddapps.errors import ConfigError
from ddapps.methods.base import METHODS, IterativeConfig
from ddapps.methods.iterative import IterativeDistiller
from ddapps.methods.trajectory.flat import FlatSpec
from ddapps.methods.trajectory.unroll import StepPlan, unroll_sgd
from ddapps.nets import create_net, reinitialize_
from ddapps.synthetic import SyntheticSet
from ddapps.validation import check_choice, check_fields, check_number, check_positive, check_rate

EVAL_LR_MODES = ("protocol", "learned")


@dataclass(frozen=True)
class BPTTConfig(IterativeConfig):
    """BPTT hyper-parameters; defaults are the paper's (see the module docstring)."""

    iterations: int = 20000
    inner_steps: int = 10
    inner_epochs: int = 3
    step_ipc: int = 1
    lr_img: float = 0.01
    betas: tuple[float, float] = (0.5, 0.999)
    lr_init: float = 0.02
    lr_decay: float = 0.5
    lr_decay_every: int = 2000
    batch_real: int = 1024
    init: str = "noise"
    net: str = "convnet"
    net_options: dict[str, Any] = field(default_factory=dict)
    dsa: bool = False
    dsa_strategy: str | None = None
    eval_lr: str = "protocol"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_fields(self, check_positive, "inner_steps", "inner_epochs", "step_ipc", "batch_real", "lr_decay_every")
        check_fields(self, check_number, "lr_img", "lr_init")
        check_rate("lr_decay", self.lr_decay)
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        check_choice("eval_lr", self.eval_lr, EVAL_LR_MODES)

    @property
    def total_steps(self) -> int:
        """Unrolled SGD steps per iteration (one learned rate each)."""
        return self.inner_steps * self.inner_epochs


def inverse_softplus(value: float) -> float:
    """``rho`` with ``softplus(rho) == value`` (``value > 0``)."""
    return value + math.log(-math.expm1(-value))


def step_batches(num_classes: int, ipc: int, inner_steps: int, step_ipc: int) -> list[Tensor]:
    """Indices into the class-sorted set used by each of the ``inner_steps`` steps of one epoch.

    Step ``s`` takes, from every class, the images ``(s * step_ipc + j) mod ipc`` for
    ``j < min(step_ipc, ipc)``: one image per class per step (the paper's setting) walks through
    ``ipc`` images in ``ipc`` steps; with ``ipc=1`` every step uses the whole set.
    """
    per = min(step_ipc, ipc)
    batches = []
    for s in range(inner_steps):
        within = torch.tensor([(s * step_ipc + j) % ipc for j in range(per)])
        batches.append((torch.arange(num_classes).unsqueeze(1) * ipc + within).reshape(-1))
    return batches


@METHODS.register("bptt")
class BackpropThroughTime(IterativeDistiller):
    """Dataset distillation (Wang et al., 2018): unrolled training from random inits; see the module doc."""

    name = "bptt"
    config_class = BPTTConfig
    config: BPTTConfig
    smoke_config = {
        "iterations": 4,
        "inner_steps": 2,
        "inner_epochs": 2,
        "batch_real": 16,
        "lr_decay_every": 2,
        "net_options": {"width": 8},
    }

    def init_params(
        self, real: Benchmark, ipc: int, init: SyntheticSet | None, generator: torch.Generator
    ) -> dict[str, Tensor]:
        start = float(init.lr) if init is not None and init.lr is not None else self.config.lr_init
        rho = torch.full((self.config.total_steps,), inverse_softplus(start))
        params = super().init_params(real, ipc, init, generator)
        params["raw_lr"] = rho.to(self.device).requires_grad_(True)
        return params

    def make_optimizer(self, params: dict[str, Tensor]) -> torch.optim.Optimizer:
        cfg = self.config
        self.optimizer = torch.optim.Adam([params["images"], params["raw_lr"]], lr=cfg.lr_img, betas=cfg.betas)
        return self.optimizer

    def setup(self, real: Benchmark, ipc: int, generator: torch.Generator) -> None:
        cfg = self.config
        self.net = create_net(
            cfg.net, real.channels, real.num_classes, real.image_size, generator=generator, **cfg.net_options
        )
        self.net.to(self.device).train().requires_grad_(False)
        self.spec = FlatSpec.of(self.net)
        strategy = cfg.dsa_strategy or default_strategy(real.name)
        self.dsa = DSA(strategy) if cfg.dsa else None
        self.strategy = strategy if cfg.dsa else "none"
        batches = step_batches(real.num_classes, ipc, cfg.inner_steps, cfg.step_ipc)
        self.batches = tuple(b.to(self.device) for b in batches * cfg.inner_epochs)
        self.labels = torch.arange(real.num_classes, device=self.device).repeat_interleave(ipc)
        self.real_images = real.train.images.to(self.device)
        self.real_labels = real.train.labels.to(self.device)

    def loss(
        self, params: dict[str, Tensor], real: Benchmark, ipc: int, generator: torch.Generator, iteration: int
    ) -> Tensor:
        cfg = self.config
        for group in self.optimizer.param_groups:  # a pure function of the iteration: resume-safe
            group["lr"] = cfg.lr_img * cfg.lr_decay ** (iteration // cfg.lr_decay_every)
        reinitialize_(self.net, generator)
        start = self.spec.flatten(self.net).to(self.device)
        augs = tuple(
            None if self.dsa is None else self.dsa.sample(b.numel(), generator=generator, device=self.device)
            for b in self.batches
        )
        plan = StepPlan(self.batches, augs)
        lrs = F.softplus(params["raw_lr"])
        theta = unroll_sgd(self.net, self.spec, start, params["images"], self.labels, lrs, plan, self.dsa)
        n = self.real_images.shape[0]
        pick = torch.randperm(n, generator=generator)[: cfg.batch_real].to(self.device)
        return F.cross_entropy(self.spec.forward(self.net, theta, self.real_images[pick]), self.real_labels[pick])

    def finalize(self, params: dict[str, Tensor], real: Benchmark, ipc: int, **meta: Any) -> SyntheticSet:
        cfg = self.config
        lrs = F.softplus(params["raw_lr"].detach()).to("cpu", torch.float32)
        schedule = {"inner_steps": cfg.inner_steps, "inner_epochs": cfg.inner_epochs, "step_ipc": cfg.step_ipc}
        synset = self.make_synset(
            real,
            ipc,
            params["images"],
            dsa_strategy=self.strategy,
            learned_lrs=[float(v) for v in lrs],
            distilled_schedule=schedule,
            eval_lr=cfg.eval_lr,
            **meta,
        )
        return replace(synset, lr=lrs.mean().reshape(())) if cfg.eval_lr == "learned" else synset
