"""Matching Training Trajectories (MTT).

Cazenavette, Wang, Torralba, Efros & Zhu, "Dataset Distillation by Matching Training
Trajectories", CVPR 2022.

Each iteration picks a random expert and a start epoch ``t < max_start_epoch``, initialises a
student at the expert's parameters ``theta*_t``, trains it for ``syn_steps`` differentiable SGD
steps on (DSA-augmented) synthetic minibatches with a learnable learning rate ``eta``, and
minimises over the synthetic images and ``eta``

    L = ||theta_N - theta*_{t+M}||^2 / ||theta*_t - theta*_{t+M}||^2,    M = expert_epochs.

Images are optimised with SGD (lr ``lr_img``, momentum 0.5) and ``eta`` with SGD (lr ``lr_lr``,
momentum 0.5); ``eta`` is clamped to stay positive and becomes the set's ``lr``, which the
evaluation protocol trains with. Paper defaults: 5000 iterations, lr_img 1000, lr_lr 1e-5, eta
initialised at 0.01, 20 student steps on all images, M = 3, max_start_epoch 25, real
initialisation, DSA, ConvNet-3.

Memory: the default ``memory="constant"`` computes the exact same gradient as autograd through
the unrolled graph, in memory independent of ``syn_steps`` (TESLA; Cui et al., ICML 2023; see
:mod:`ddapps.methods.trajectory.unroll`), at the cost of one extra forward + backward per step.
Measured on a 2-core CPU, MNIST IPC 10, ``syn_steps=30``: 1.8 GiB peak vs 10.4 GiB for
``memory="standard"`` (the paper's fully unrolled graph) and 12.0 GiB for the paper's code, with
about 24% more time than ``standard``. Choose ``standard`` when memory is plentiful and time counts.

Experts come from ``expert_file`` (written by ``ddapps experts``); with ``auto_experts=True`` they
are trained first (into ``expert_file`` when it is given, which later runs reuse), with the
:class:`~ddapps.methods.trajectory.experts.ExpertConfig` overrides in ``experts``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor

from ddapps.augment import DSA, default_strategy
from ddapps.data import Benchmark
from ddapps.errors import ConfigError
from ddapps.methods.base import METHODS, IterativeConfig
from ddapps.methods.iterative import DivergenceError, IterativeDistiller
from ddapps.methods.trajectory.buffer import ExpertBuffer
from ddapps.methods.trajectory.experts import ExpertConfig, train_experts
from ddapps.methods.trajectory.unroll import match_loss, match_loss_constant_memory, plan_steps
from ddapps.nets import create_net
from ddapps.synthetic import SyntheticSet
from ddapps.validation import check_choice, check_fields, check_number, check_optional_positive, check_positive

MEMORY_MODES = ("standard", "constant")
MIN_SYN_LR = 1e-6
"""The learned learning rate is clamped to at least this after every step (it must stay positive)."""


@dataclass(frozen=True)
class MTTConfig(IterativeConfig):
    """MTT hyper-parameters; defaults are the paper's (``distill.py``)."""

    iterations: int = 5000
    lr_img: float = 1000.0
    lr_lr: float = 1e-5
    syn_lr: float = 0.01
    momentum: float = 0.5
    syn_steps: int = 20
    expert_epochs: int = 3
    max_start_epoch: int = 25
    batch_syn: int | None = None
    dsa: bool = True
    dsa_strategy: str | None = None
    net: str = "convnet"
    net_options: dict[str, Any] = field(default_factory=dict)
    expert_file: str | None = None
    auto_experts: bool = False
    experts: dict[str, Any] = field(default_factory=dict)
    experts_seed: int = 0
    memory: str = "constant"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_fields(self, check_number, "lr_img", "syn_lr")
        check_number("lr_lr", self.lr_lr, low_inclusive=True)
        check_fields(self, check_positive, "syn_steps", "expert_epochs", "max_start_epoch")
        check_optional_positive("batch_syn", self.batch_syn)
        check_choice("memory mode", self.memory, MEMORY_MODES)
        self.expert_config()  # validates the `experts` overrides

    def expert_config(self) -> ExpertConfig:
        """The experts to auto-train: paper defaults, this config's net, then ``experts`` overrides."""
        return ExpertConfig.from_overrides({"net": self.net, "net_options": self.net_options} | dict(self.experts))


@METHODS.register("mtt")
class MatchingTrainingTrajectories(IterativeDistiller):
    """Matching Training Trajectories (Cazenavette et al., CVPR 2022); see the module docstring."""

    name = "mtt"
    config_class = MTTConfig
    config: MTTConfig
    smoke_config = {
        "iterations": 4,
        "syn_steps": 3,
        "expert_epochs": 1,
        "max_start_epoch": 1,
        "net_options": {"width": 16},
        "auto_experts": True,
        "experts": {"num_experts": 2, "epochs": 2, "batch_size": 12},
    }

    def init_params(
        self, real: Benchmark, ipc: int, init: SyntheticSet | None, generator: torch.Generator
    ) -> dict[str, Tensor]:
        start_lr = float(init.lr) if init is not None and init.lr is not None else self.config.syn_lr
        params = super().init_params(real, ipc, init, generator)
        params["lr"] = torch.tensor(start_lr, device=self.device).requires_grad_(True)
        return params

    def make_optimizer(self, params: dict[str, Tensor]) -> torch.optim.Optimizer:
        cfg = self.config
        return torch.optim.SGD(
            [{"params": [params["images"]], "lr": cfg.lr_img}, {"params": [params["lr"]], "lr": cfg.lr_lr}],
            lr=cfg.lr_img,
            momentum=cfg.momentum,
        )

    def augmentation_strategy(self) -> str:
        return self.strategy

    def setup(self, real: Benchmark, ipc: int, generator: torch.Generator) -> None:
        cfg = self.config
        self.buffer = self._experts(real)
        self.buffer.check_compatible(real.describe(), cfg.net, cfg.net_options)
        if cfg.max_start_epoch - 1 + cfg.expert_epochs > self.buffer.epochs:
            raise ConfigError(
                f"max_start_epoch {cfg.max_start_epoch} + expert_epochs {cfg.expert_epochs} - 1 exceeds the "
                f"{self.buffer.epochs} epochs of the experts"
            )
        self.net = create_net(
            cfg.net, real.channels, real.num_classes, real.image_size, generator=generator, **cfg.net_options
        )
        self.net.to(self.device).train().requires_grad_(False)
        self.buffer.spec.check(self.net)
        strategy = cfg.dsa_strategy or default_strategy(real.name)
        self.dsa = DSA(strategy) if cfg.dsa else None
        self.strategy = strategy if cfg.dsa else "none"
        self.labels = torch.arange(real.num_classes, device=self.device).repeat_interleave(ipc)

    def _experts(self, real: Benchmark) -> ExpertBuffer:
        cfg = self.config
        if cfg.auto_experts:
            return train_experts(
                real,
                cfg.expert_config(),
                cfg.expert_file,
                seed=cfg.experts_seed,
                device=self.device,
                progress=self.progress,
            )
        if cfg.expert_file is None:
            raise ConfigError(
                "mtt needs expert trajectories: run `ddapps experts --dataset ... --out FILE` and pass "
                "--set expert_file=FILE (or --set auto_experts=true to train them first)"
            )
        return ExpertBuffer.load(cfg.expert_file)

    def loss(
        self, params: dict[str, Tensor], real: Benchmark, ipc: int, generator: torch.Generator, iteration: int
    ) -> Tensor:
        cfg = self.config
        expert = int(torch.randint(self.buffer.num_experts, (1,), generator=generator))
        epoch = int(torch.randint(cfg.max_start_epoch, (1,), generator=generator))
        start = self.buffer.params(expert, epoch).to(self.device)
        target = self.buffer.params(expert, epoch + cfg.expert_epochs).to(self.device)
        images = params["images"]
        plan = plan_steps(images.shape[0], cfg.syn_steps, cfg.batch_syn, self.dsa, generator, self.device)
        match = match_loss_constant_memory if cfg.memory == "constant" else match_loss
        loss = match(self.net, self.buffer.spec, start, target, images, self.labels, params["lr"], plan, self.dsa)
        value = float(loss.detach())
        if not math.isfinite(value):
            raise DivergenceError(
                f"mtt: trajectory-matching loss is {value} at iteration {iteration} (syn_lr "
                f"{float(params['lr'].detach()):.3g}); lower lr_img, lr_lr or syn_steps"
            )
        return loss

    def after_step(self, params: dict[str, Tensor]) -> None:
        with torch.no_grad():
            if not torch.isfinite(params["lr"]) or not torch.isfinite(params["images"]).all():
                raise DivergenceError("mtt: synthetic images or syn_lr became non-finite; lower lr_img or lr_lr")
            params["lr"].clamp_(min=MIN_SYN_LR)

    def finalize(self, params: dict[str, Tensor], real: Benchmark, ipc: int, **meta: Any) -> SyntheticSet:
        lr = params["lr"].detach().to("cpu", torch.float32).reshape(())
        experts = {
            "file": self.config.expert_file,
            "num_experts": self.buffer.num_experts,
            "epochs": self.buffer.epochs,
            "seed": self.buffer.meta["seed"],
            "lr_teacher": self.buffer.meta["lr_teacher"],
            "test_accuracy": self.buffer.test_accuracy,
        }
        synset = self.make_synset(
            real, ipc, params["images"], dsa_strategy=self.strategy, syn_lr=float(lr), experts=experts, **meta
        )
        return replace(synset, lr=lr)
