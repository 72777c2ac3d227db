"""Choosing a DP run's hyper-parameters without spending the private data's budget.

Every choice a DP release depends on is itself a function of the data it was chosen on: picking
``lr_img`` or ``iterations`` by the test accuracy of sets distilled from the private data leaks
through the choice and is not covered by the accountant (Papernot & Steinke, "Hyperparameter
tuning with Renyi differential privacy", ICLR 2022, bound what such a search costs when it is
run privately). ddapps instead chooses on **public data**: training images disjoint from the
private ones (for the audit, every training image outside its pool), split into a stand-in
private part and a validation part. Each grid point runs the audit's own pipeline
(:func:`ddapps.privacy.audit.build_model`: the DP method at the target epsilon with its own secret
noise, then the target model trained on the set) on the stand-in part, and the point with the best
mean *validation* accuracy wins. Neither the private pool nor the test split is touched, so the
selection costs no privacy; results say ``selected_on``.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import torch

from ddapps.data import Benchmark
from ddapps.data.split import Split
from ddapps.data.stratify import stratified_holdout
from ddapps.errors import ConfigError
from ddapps.evaluation import test_accuracy
from ddapps.privacy.audit import AuditConfig, Target, build_model
from ddapps.utils.seeding import derive_seed, make_generator

SELECTED_ON = "validation accuracy on public training images outside the private pool (no privacy cost)"
METHODS = ("dp-dm", "dp-dc")


@dataclass(frozen=True)
class SelectionConfig:
    """The grid (``lr_imgs`` x ``iterations`` per epsilon), the public data, and the pipeline's other settings."""

    method: str = "dp-dm"
    epsilons: tuple[float, ...] = (1.0, 10.0)
    lr_imgs: tuple[float, ...] = (10.0, 100.0, 300.0)
    iterations: tuple[int, ...] = (50, 200)
    exclude: int = 1000
    public_size: int = 500
    val_fraction: float = 0.4
    seeds: tuple[int, ...] = (0,)
    pipeline: AuditConfig = field(default_factory=AuditConfig)
    """Everything else (IPC, batch, networks, training) as the audit and the utility curve run it."""

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"selection is for {', '.join(METHODS)}, got {self.method!r}")
        if not self.lr_imgs or not self.iterations or not self.epsilons or not self.seeds:
            raise ConfigError("the grid needs at least one lr_img, iterations, epsilon and seed")
        if any(not (e > 0) for e in self.epsilons) or any(v <= 0 for v in self.lr_imgs):
            raise ConfigError("epsilons and lr_imgs must be > 0")
        if any(isinstance(i, bool) or i < 1 for i in self.iterations):
            raise ConfigError("iterations must be >= 1")
        if not 0 < self.val_fraction < 1 or self.public_size < 2 or self.exclude < 0:
            raise ConfigError("need 0 < val_fraction < 1, public_size >= 2 and exclude >= 0")

    @property
    def candidates(self) -> int:
        return len(self.epsilons) * len(self.lr_imgs) * len(self.iterations) * len(self.seeds)


def public_part(real: Benchmark, exclude: int, size: int, seed: int) -> Benchmark:
    """``size`` training images outside the first ``exclude`` of the audit's pool permutation.

    The audit draws its pool as the first ``pool_size`` entries of
    ``randperm(n_train, derive_seed(seed, "pool"))``; the images after them never enter it.
    """
    n = len(real.train)
    if exclude + size > n:
        raise ConfigError(
            f"{real.name} has {n} training images: {exclude} private (the pool) + {size} public do not fit; "
            f"use --public-size <= {max(0, n - exclude)}"
        )
    perm = torch.randperm(n, generator=make_generator(derive_seed(seed, "pool")))
    return dataclasses.replace(real, train=real.train.subset(perm[exclude : exclude + size].sort().values), val=None)


def split_validation(public: Benchmark, fraction: float, ipc: int) -> tuple[Benchmark, Split]:
    """``(stand-in private benchmark, validation split)``, stratified by class."""
    keep, held = stratified_holdout(public.train.labels, fraction, seed=0)
    train, val = public.train.subset(keep), public.train.subset(held)
    smallest = int(train.class_counts().min())
    if smallest < ipc:
        raise ConfigError(
            f"the public part keeps only {smallest} images of some class for ipc={ipc}; raise --public-size"
        )
    return dataclasses.replace(public, train=train, val=None), val


def select(real: Benchmark, config: SelectionConfig, *, progress: bool = False) -> dict[str, Any]:
    """Every candidate's validation accuracy and, per epsilon, the chosen ``lr_img`` and ``iterations``."""
    from tqdm import tqdm

    rows: list[dict[str, Any]] = []
    grid = list(itertools.product(config.epsilons, config.lr_imgs, config.iterations))
    bar = tqdm(total=config.candidates, desc="select", disable=not progress)
    for seed in config.seeds:
        public = public_part(real, config.exclude, config.public_size, seed)
        data, val = split_validation(public, config.val_fraction, config.pipeline.ipc)
        for eps, lr_img, iters in grid:
            pipeline = dataclasses.replace(config.pipeline, lr_img=lr_img, iterations=iters)
            built = build_model(
                Target(config.method, eps), data, pipeline, derive_seed(seed, "select"), torch.device("cpu")
            )
            acc = test_accuracy(built.net, val.images, val.labels)
            rows.append({"epsilon": _eps(eps), "lr_img": lr_img, "iterations": iters, "seed": seed, "val_acc": acc})
            bar.update()
    bar.close()
    chosen = {}
    for eps in config.epsilons:
        means = {
            (lr, it): sum(
                r["val_acc"] for r in rows if (r["epsilon"], r["lr_img"], r["iterations"]) == (_eps(eps), lr, it)
            )
            / len(config.seeds)
            for lr, it in itertools.product(config.lr_imgs, config.iterations)
        }
        (lr, it), best = max(means.items(), key=lambda kv: (kv[1], -kv[0][1]))  # ties: fewer iterations
        chosen[str(_eps(eps))] = {"lr_img": lr, "iterations": it, "val_acc_mean": best}
    return {"rows": rows, "selected": chosen, "selected_on": SELECTED_ON}


def _eps(eps: float) -> float | str:
    return "inf" if math.isinf(eps) else float(eps)
