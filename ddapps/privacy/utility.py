"""Privacy-utility curve: test accuracy against epsilon for DP distillation and DP-SGD.

For each method (``dp-dm``, ``dp-dc``: a model trained on the DP synthetic set; ``dp-sgd``: the
same architecture trained with DP-SGD, :mod:`ddapps.privacy.dpsgd`) and each epsilon, a model is
built from the training split (or a stratified ``train_size`` subset of it, drawn per seed) and
its accuracy on the test split is reported as mean and sample std over seeds. This is the
comparison Carlini et al. ("No Free Lunch in 'Privacy for Free'", 2022) ask of distillation for
privacy: at equal epsilon, does it beat DP-SGD?

The pipelines are the audit's (:func:`ddapps.privacy.audit.build_model`) with the hyper-parameters
of an :class:`~ddapps.privacy.audit.AuditConfig`: they are inputs, never chosen on the test split
(choose them on public data, :mod:`ddapps.privacy.selection`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ddapps.data import Benchmark
from ddapps.data.stratify import stratified_holdout
from ddapps.errors import ConfigError
from ddapps.evaluation import test_accuracy
from ddapps.privacy.audit import DP_TARGETS, AuditConfig, Target, build_model, check_public_data
from ddapps.utils.seeding import derive_seed

DEFAULT_EPSILONS = (0.5, 1.0, 2.0, 5.0, 10.0, math.inf)


@dataclass(frozen=True)
class UtilityConfig:
    """Methods, epsilons, seeds and the training data's size; ``pipeline`` holds the hyper-parameters."""

    methods: tuple[str, ...] = ("dp-dm", "dp-sgd")
    epsilons: tuple[float, ...] = DEFAULT_EPSILONS
    seeds: tuple[int, ...] = (0,)
    train_size: int | None = 500
    pipeline: AuditConfig = field(default_factory=AuditConfig)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.methods) - set(DP_TARGETS))
        if unknown or not self.methods:
            raise ConfigError(
                f"unknown method(s) {', '.join(unknown) or '(none)'}; choose from: {', '.join(DP_TARGETS)}"
            )
        if not self.epsilons or any(not (e > 0) for e in self.epsilons):
            raise ConfigError("epsilons must be > 0 (inf for no noise)")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError("seeds must be distinct and at least one")
        if self.train_size is not None and self.train_size < 2:
            raise ConfigError(f"train_size must be >= 2 (or None for the whole training split), got {self.train_size}")

    @property
    def pipeline_config(self) -> AuditConfig:
        """The pipeline settings with this curve's methods and epsilons."""
        return dataclasses.replace(self.pipeline, targets=self.methods, epsilons=self.epsilons)

    @property
    def runs(self) -> int:
        """Models trained (one per method, epsilon and seed)."""
        return len(self.methods) * len(self.epsilons) * len(self.seeds)


def training_subset(real: Benchmark, size: int | None, seed: int) -> Benchmark:
    """``real`` with a stratified ``size``-image subset of its training split (all of it for ``None``)."""
    n = len(real.train)
    if size is None or size >= n:
        return real
    _, held = stratified_holdout(real.train.labels, size / n, seed=derive_seed(seed, "utility-subset"))
    return dataclasses.replace(real, train=real.train.subset(held))


def check_sizes(real: Benchmark, config: UtilityConfig) -> None:
    """:class:`ConfigError` (before any training) if a distilled method lacks ``ipc`` images of a class."""
    if all(m == "dp-sgd" for m in config.methods):
        return
    ipc = config.pipeline.ipc

    def smallest(size: int | None) -> int:
        return min(int(training_subset(real, size, s).train.class_counts().min()) for s in config.seeds)

    have = smallest(config.train_size)
    if have >= ipc:
        return
    fits = next((n for n in range((config.train_size or 0) + 1, len(real.train) + 1) if smallest(n) >= ipc), None)
    hint = f"use --train-size >= {fits}" if fits else "use a smaller --ipc"
    raise ConfigError(f"need at least ipc={ipc} training images per class; the smallest class has {have}; {hint}")


def run_utility(
    real: Benchmark,
    config: UtilityConfig,
    *,
    device: str | torch.device = "cpu",
    on_model: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """``{"rows": per seed, "summary": per (method, epsilon), "privacy": records}``.

    Rows: ``method, epsilon, seed, n_train, test_acc, private, eps_spent``; summary:
    ``method, epsilon, n_seeds, acc_mean, acc_std`` (sample std, ``None`` for one seed), ``private``.
    """
    device = torch.device(device)
    pipeline = config.pipeline_config
    check_public_data(real, pipeline)
    check_sizes(real, config)
    rows, privacy = [], []
    for seed in config.seeds:
        data = training_subset(real, config.train_size, seed)
        for method in config.methods:
            for eps in config.epsilons:
                target = Target(method, float(eps))
                built = build_model(target, data, pipeline, derive_seed(seed, "utility", target.label), device)
                if on_model is not None:
                    on_model(target.label)
                record = built.privacy or {}
                noisy = math.isfinite(eps)
                rows.append({
                    "method": method, "epsilon": _eps(eps), "seed": seed, "n_train": len(data.train),
                    "test_acc": test_accuracy(built.net, real.test.images, real.test.labels, device=device),
                    "private": bool(record.get("private")),
                    "eps_spent": record.get("nominal_epsilon", record.get("epsilon")) if noisy else None,
                })  # fmt: skip
                privacy.append({"seed": seed, "method": method, "label": target.label} | record)
    return {"rows": rows, "summary": summarize(rows), "privacy": privacy}


def summarize(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and sample std (ddof=1) of the test accuracy per ``(method, epsilon)``."""
    groups: dict[tuple[str, Any], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["method"], row["epsilon"]), []).append(row)
    out = []
    for (method, eps), group in groups.items():
        acc = np.array([r["test_acc"] for r in group], float)
        out.append({
            "method": method, "epsilon": eps, "n_seeds": len(group), "acc_mean": float(acc.mean()),
            "acc_std": float(acc.std(ddof=1)) if len(acc) > 1 else None, "private": all(r["private"] for r in group),
        })  # fmt: skip
    return out


def _eps(eps: float) -> float | str:
    return "inf" if math.isinf(eps) else float(eps)
