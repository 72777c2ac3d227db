"""Expert trajectories for trajectory matching.

Cazenavette et al., "Dataset Distillation by Matching Training Trajectories", CVPR 2022, Sec. 3:
train ``num_experts`` networks from independent random initialisations on the real training set
with plain SGD (lr 0.01, no momentum, no weight decay, batch 256, DSA augmentation of every
batch) for 50 epochs, and record the parameters at initialisation and after every epoch. The
method then matches segments ``theta*_t -> theta*_{t+M}`` of these trajectories.

Expert ``i`` is trained from its own generator, derived from ``(seed, i)``; each finished expert
is appended to ONE safetensors file that is rewritten atomically, so a killed run resumes at the
next expert and gives exactly the file an uninterrupted run gives. Snapshots are copies of the
weights (not views that would follow later training).

Cost: the whole buffer is held in memory while training and every save rewrites the file; at the
paper's scale (100 experts x 51 snapshots of ConvNet-3's ~320k parameters) that is 6.5 GB.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

import ddapps
from ddapps.augment import DSA, default_strategy
from ddapps.data import Benchmark
from ddapps.errors import ConfigError
from ddapps.evaluation.training import test_accuracy
from ddapps.methods.base import make_config
from ddapps.methods.iterative import DivergenceError
from ddapps.methods.trajectory.buffer import FORMAT_VERSION, ExpertBuffer, dataset_identity, write_experts
from ddapps.methods.trajectory.flat import FlatSpec
from ddapps.nets import create_net, reinitialize_
from ddapps.utils.seeding import derive_seed, draw_seed, make_generator


@dataclass(frozen=True)
class ExpertConfig:
    """How experts are trained; defaults are the paper's (``buffer.py`` of MTT).

    ``max_train_samples`` trains on a seeded random subset of the training split (CPU budgets);
    ``None`` uses all of it.
    """

    num_experts: int = 100
    epochs: int = 50
    lr_teacher: float = 0.01
    momentum: float = 0.0
    weight_decay: float = 0.0
    batch_size: int = 256
    dsa: bool = True
    dsa_strategy: str | None = None
    net: str = "convnet"
    net_options: dict[str, Any] = field(default_factory=dict)
    max_train_samples: int | None = None

    def __post_init__(self) -> None:
        for name in ("num_experts", "epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"experts: {name} must be a positive integer, got {value!r}")
        if not self.lr_teacher > 0 or self.momentum < 0 or self.weight_decay < 0:
            raise ConfigError("experts: lr_teacher must be > 0, momentum and weight_decay >= 0")
        if self.max_train_samples is not None and self.max_train_samples < 1:
            raise ConfigError(f"experts: max_train_samples must be >= 1, got {self.max_train_samples}")
        if not isinstance(self.net_options, dict):
            raise ConfigError("experts: net_options must be an object")

    @classmethod
    def from_overrides(cls, overrides: "ExpertConfig | Mapping[str, Any] | None") -> "ExpertConfig":
        """Paper defaults with ``overrides`` applied (unknown keys are a :class:`ConfigError`)."""
        return make_config(cls, overrides)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ExpertEvent:
    """Reported after each finished (and saved) expert."""

    expert: int
    """Number of experts finished so far."""
    total: int
    seconds: float
    test_accuracy: float


def train_experts(
    benchmark: Benchmark,
    config: ExpertConfig | Mapping[str, Any] | None = None,
    path: str | Path | None = None,
    *,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    device: str | torch.device = "cpu",
    progress: bool = False,
    resume: bool = True,
    on_expert: Callable[[ExpertEvent], None] | None = None,
) -> ExpertBuffer:
    """Train experts on ``benchmark.train`` and return their trajectories.

    Args:
        benchmark: the real data (its test split only feeds the recorded test accuracies).
        config: :class:`ExpertConfig` or a dict of overrides of its paper defaults.
        path: the safetensors file, rewritten atomically after every expert (``None``: memory only).
        seed: base seed; or ``generator``, from which one seed is drawn; default seed 0.
        resume: continue an existing ``path`` written with the same settings and seed (more
            experts may be added to it); with ``False`` an existing file is replaced.
        on_expert: called after each expert is saved.
    """
    cfg = ExpertConfig.from_overrides(config)
    if seed is not None and generator is not None:
        raise ConfigError("pass either seed or generator, not both")
    base_seed = int(seed) if seed is not None else draw_seed(generator) if generator is not None else 0
    device = torch.device(device)
    strategy = (cfg.dsa_strategy or default_strategy(benchmark.name)) if cfg.dsa else "none"
    net = create_net(
        cfg.net,
        benchmark.channels,
        benchmark.num_classes,
        benchmark.image_size,
        generator=make_generator(derive_seed(base_seed, "build")),
        **cfg.net_options,
    ).to(device)
    spec = FlatSpec.of(net)
    meta = _header(cfg, benchmark, spec, base_seed, strategy)
    trajectories: list[Tensor] = []
    if path is not None and resume and Path(path).is_file():
        existing = _existing(path, meta)
        if existing.num_experts >= cfg.num_experts:
            return existing
        trajectories = [existing.trajectory(i) for i in range(existing.num_experts)]
        meta["test_accuracy"] = existing.test_accuracy
    images, labels = _training_data(benchmark, cfg.max_train_samples, base_seed)
    images, labels = images.to(device), labels.to(device)
    dsa = DSA(strategy) if cfg.dsa else None
    bar = tqdm(
        range(len(trajectories), cfg.num_experts),
        initial=len(trajectories),
        total=cfg.num_experts,
        desc="experts",
        disable=not progress,
    )
    for index in bar:
        start = time.perf_counter()
        gen = make_generator(derive_seed(base_seed, "expert", index))
        trajectories.append(_train_one(net, spec, images, labels, cfg, dsa, gen, index))
        accuracy = test_accuracy(net, benchmark.test.images, benchmark.test.labels, device=device)
        meta["test_accuracy"].append(accuracy)
        meta["num_experts"] = len(trajectories)
        if path is not None:
            write_experts(path, {f"expert.{i}": t for i, t in enumerate(trajectories)}, meta)
        bar.set_postfix(test_acc=f"{accuracy:.1f}", refresh=False)
        if on_expert is not None:
            on_expert(ExpertEvent(len(trajectories), cfg.num_experts, time.perf_counter() - start, accuracy))
    return ExpertBuffer(meta, trajectories=trajectories)


def _header(cfg: ExpertConfig, benchmark: Benchmark, spec: FlatSpec, seed: int, strategy: str) -> dict[str, Any]:
    """The file's metadata before any expert is finished."""
    return {
        "format": FORMAT_VERSION,
        "net": cfg.net,
        "net_options": dict(cfg.net_options),
        "params": spec.to_json(),
        "dataset": benchmark.describe(),
        "epochs": cfg.epochs,
        "lr_teacher": float(cfg.lr_teacher),
        "seed": seed,
        "dsa_strategy": strategy,
        "config": asdict(cfg),
        "num_experts": 0,
        "test_accuracy": [],
        "ddapps_version": ddapps.__version__,
    }


def _existing(path: str | Path, meta: dict[str, Any]) -> ExpertBuffer:
    """The experts already in ``path``, after checking they come from the same settings."""
    existing = ExpertBuffer.load(path)

    def identity(m: dict[str, Any]) -> dict[str, Any]:
        config = {k: v for k, v in m["config"].items() if k != "num_experts"}
        return {"config": config, "seed": m["seed"], "params": m["params"], "dataset": dataset_identity(m["dataset"])}

    if identity(existing.meta) != identity(json.loads(json.dumps(meta))):
        raise ConfigError(
            f"cannot resume {path}: it was trained with other settings, seed or data; "
            "use the same options or another output file"
        )
    return existing


def _training_data(benchmark: Benchmark, limit: int | None, seed: int) -> tuple[Tensor, Tensor]:
    split = benchmark.train
    if limit is None or limit >= len(split):
        return split.images, split.labels
    pick = torch.randperm(len(split), generator=make_generator(derive_seed(seed, "subset")))[:limit]
    pick = torch.sort(pick).values
    return split.images[pick], split.labels[pick]


def _train_one(
    net: nn.Module,
    spec: FlatSpec,
    images: Tensor,
    labels: Tensor,
    cfg: ExpertConfig,
    dsa: DSA | None,
    generator: torch.Generator,
    index: int,
) -> Tensor:
    """Train ``net`` from a fresh initialisation; return its ``[epochs + 1, P]`` snapshots."""
    reinitialize_(net, generator)
    net.train()
    optimizer = torch.optim.SGD(
        net.parameters(), lr=cfg.lr_teacher, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )
    snapshots = [spec.flatten(net)]
    n = images.shape[0]
    for epoch in range(cfg.epochs):
        order = torch.randperm(n, generator=generator).to(images.device)
        for begin in range(0, n, cfg.batch_size):
            idx = order[begin : begin + cfg.batch_size]
            x = images[idx]
            if dsa is not None:
                x = dsa(x, generator=generator)
            loss = F.cross_entropy(net(x), labels[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        snapshot = spec.flatten(net)
        if not math.isfinite(loss.item()) or not torch.isfinite(snapshot).all():
            raise DivergenceError(f"expert {index} diverged in epoch {epoch + 1}; lower lr_teacher")
        snapshots.append(snapshot)
    return torch.stack(snapshots)
