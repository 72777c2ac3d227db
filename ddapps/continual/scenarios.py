"""Class- and task-incremental benchmarks built with Avalanche's own generators from ddapps datasets.

``split-mnist``, ``split-cifar10`` and ``split-digits`` are 5 experiences of 2 classes each, in
the natural class order (0-1, 2-3, ...) or a seeded random one (:func:`class_order`), made by
``avalanche.benchmarks.scenarios.supervised.class_incremental_benchmark`` from the normalised
tensors of :func:`ddapps.data.load_dataset`. ``incremental="task"`` gives experience ``t`` the
task label ``t`` on both streams (Avalanche's ``task_incremental_benchmark``), for a multi-head
learner (:mod:`ddapps.continual.task_heads`; van de Ven & Tolias 2019's task-incremental scenario).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any

import torch

from ddapps.continual.datasets import avalanche_dataset
from ddapps.data import Benchmark, load_dataset
from ddapps.errors import ConfigError
from ddapps.utils.seeding import derive_seed, make_generator


@dataclass(frozen=True)
class SplitSpec:
    """A split benchmark: the ddapps dataset and the number of experiences."""

    dataset: str
    num_experiences: int = 5


SPLITS: dict[str, SplitSpec] = {
    "split-mnist": SplitSpec("mnist"),
    "split-cifar10": SplitSpec("cifar10"),
    "split-digits": SplitSpec("digits"),
}


CLASS_ORDERS = ("natural", "random")
INCREMENTAL = ("class", "task")
"""``class``: one head over all classes, no task labels; ``task``: task labels and one head per task."""


def check_incremental(kind: str) -> None:
    """One-line :class:`ConfigError` for an unknown scenario kind."""
    if kind not in INCREMENTAL:
        raise ConfigError(f"unknown incremental setting {kind!r}; choose one of: {', '.join(INCREMENTAL)}")


def class_order(num_classes: int, kind: str = "natural", seed: int = 0) -> list[int]:
    """``0..K-1`` (``natural``) or a permutation drawn from ``derive_seed(seed, "class-order")`` (``random``)."""
    if kind not in CLASS_ORDERS:
        raise ConfigError(f"unknown class order {kind!r}; choose one of: {', '.join(CLASS_ORDERS)}")
    if kind == "natural":
        return list(range(num_classes))
    generator = make_generator(derive_seed(seed, "class-order"))
    return torch.randperm(num_classes, generator=generator).tolist()


def split_scenario(
    real: Benchmark, num_experiences: int = 5, order: list[int] | None = None, incremental: str = "class"
) -> Any:
    """An Avalanche class-incremental scenario (train and test streams) over ``real``; experience ``i``
    holds classes ``order[i*k:(i+1)*k]`` (default: the natural order). ``incremental="task"`` adds
    the task label ``i`` to experience ``i`` of every stream."""
    from avalanche.benchmarks.scenarios.supervised import class_incremental_benchmark, with_classes_timeline
    from avalanche.benchmarks.scenarios.task_aware import task_incremental_benchmark

    check_incremental(incremental)
    if num_experiences < 1 or real.num_classes % num_experiences:
        raise ConfigError(f"{real.num_classes} classes cannot be split into {num_experiences} equal experiences")
    datasets = {
        "train": avalanche_dataset(real.train.images, real.train.labels),
        "test": avalanche_dataset(real.test.images, real.test.labels),
    }
    scenario = class_incremental_benchmark(
        datasets,
        class_order=order if order is not None else list(range(real.num_classes)),
        num_experiences=num_experiences,
    )
    if incremental == "task":  # the stream datasets carry task label 0: replace it with the experience index
        scenario = with_classes_timeline(task_incremental_benchmark(scenario, reset_task_labels=True))
    return scenario


def load_split(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool = False,
    val_fraction: float = 0.0,
    split_seed: int = 0,
    evaluate_on: str = "test",
    incremental: str = "class",
) -> tuple[Any, Benchmark]:
    """``(scenario, real benchmark)`` for a registered split name (see :data:`SPLITS`).

    ``val_fraction > 0`` holds out a stratified, seeded share of every training class
    (``real.val``); the stream trains on the rest. ``evaluate_on="val"`` makes the scenario's test
    stream that validation split (for choosing settings: the test split is then never used).
    ``incremental="task"``: task labels on every experience (see :func:`split_scenario`).
    """
    spec = SPLITS.get(name)
    if spec is None:
        raise ConfigError(f"unknown benchmark {name!r}; choose one of: {', '.join(SPLITS)}")
    if evaluate_on not in ("test", "val"):
        raise ConfigError(f"evaluate_on must be 'test' or 'val', got {evaluate_on!r}")
    if evaluate_on == "val" and not 0 < val_fraction < 1:
        raise ConfigError("evaluating on a validation stream needs 0 < val_fraction < 1")
    real = load_dataset(spec.dataset, data_dir, download=download, val_fraction=val_fraction, seed=split_seed)
    if evaluate_on == "val":
        assert real.val is not None
        real = replace(real, test=real.val, test_partial=False)
    if len(real.test) == 0:
        raise ConfigError(f"{spec.dataset} has no test split to evaluate on")
    return split_scenario(real, spec.num_experiences, incremental=incremental), real
