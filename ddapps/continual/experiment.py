"""The comparison: storage policies x protocols x seeds on one class- or task-incremental benchmark.

Each run is a plain Avalanche ``Naive`` strategy with either ``ReplayPlugin(mem_size,
storage_policy=...)`` (``replay``: train on each experience's data mixed with memory batches) or
:class:`~ddapps.continual.gdumb.DistilledGDumbPlugin` (``gdumb``: retrain from scratch on the
memory alone, the DC/DM papers' protocol), evaluated with Avalanche's ``EvaluationPlugin``
(stream accuracy after every experience, stream forgetting) and logged with its ``TextLogger``
and ``CSVLogger``. All buffers of one seed share the learner's initial weights; distilled
memories are computed once per seed and reused by both protocols (they never depend on the
learner).

Randomness: the learner's weights come from a ``torch.Generator``; Avalanche's own buffers and
data loaders draw from the global RNGs, which are seeded per run through Avalanche's
``RNGManager.set_random_seeds`` (its documented determinism entry point).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from ddapps.continual.scenarios import check_incremental
from ddapps.continual.storage_policies import BufferOptions, make_buffer, parse_buffer
from ddapps.data import Benchmark
from ddapps.errors import ConfigError
from ddapps.nets import create_net
from ddapps.utils.seeding import derive_seed, make_generator

PROTOCOLS = ("replay", "gdumb")
ACC_KEY = "Top1_Acc_Stream/eval_phase/test_stream"
FORGET_KEY = "StreamForgetting/eval_phase/test_stream"
EXP_ACC_KEY = "Top1_Acc_Exp/eval_phase/test_stream"


@dataclass(frozen=True)
class LearnerConfig:
    """The continual learner and its SGD (the DC/DM evaluation optimiser: lr 0.01, momentum 0.9, wd 5e-4)."""

    net: str = "convnet"
    net_options: dict[str, Any] = field(default_factory=dict)
    epochs: int = 1
    """replay: epochs over each experience (with memory batches)."""
    gdumb_epochs: int = 50
    """gdumb: epochs over the memory after each experience."""
    batch_size: int = 32
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.gdumb_epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ConfigError("epochs, gdumb_epochs and batch_size must be >= 1 and lr > 0")


@dataclass(frozen=True)
class ContinualConfig:
    """One comparison: every buffer under every protocol, for every seed."""

    benchmark: str = "split-mnist"
    buffers: tuple[str, ...] = ("distilled:dm", "reservoir", "class-balanced", "herding")
    protocols: tuple[str, ...] = ("gdumb", "replay")
    mem_size: int = 100
    seeds: tuple[int, ...] = (0, 1, 2)
    learner: LearnerConfig = LearnerConfig()
    buffer_options: BufferOptions = BufferOptions()
    class_order: str = "natural"
    """``natural`` (0-1, 2-3, ...) or ``random``: a permutation per seed (:func:`~ddapps.continual.scenarios.class_order`)."""
    incremental: str = "class"
    """``class`` (one head, no task labels) or ``task`` (task labels, one head per task:
    :class:`~ddapps.continual.task_heads.TaskHeadClassifier`)."""
    online_size: int | None = None
    """Online continual learning: each experience arrives as mini-experiences of this many images
    (Avalanche's ``split_online_stream``, shuffled with the run's seed), each seen once (one epoch,
    ``replay`` protocol only); the memory is updated after every mini-experience and a distilled
    memory merges its stored units with the new images (``revisit="merge"``). Accuracy is measured
    at the end of each original experience."""

    def __post_init__(self) -> None:
        if not self.buffers or not self.protocols or not self.seeds:
            raise ConfigError("give at least one buffer, one protocol and one seed")
        for spec in self.buffers:
            parse_buffer(spec)
        for protocol in self.protocols:
            if protocol not in PROTOCOLS:
                raise ConfigError(f"unknown protocol {protocol!r}; choose one of: {', '.join(PROTOCOLS)}")
        if self.class_order not in ("natural", "random"):
            raise ConfigError(f"unknown class order {self.class_order!r}; choose natural or random")
        check_incremental(self.incremental)
        if self.mem_size < 1:
            raise ConfigError(f"mem_size must be >= 1, got {self.mem_size}")
        if self.online_size is not None:
            if self.online_size < 1:
                raise ConfigError(f"online_size must be >= 1, got {self.online_size}")
            if set(self.protocols) != {"replay"} or self.learner.epochs != 1:
                raise ConfigError("an online stream is seen once: use the replay protocol with one epoch")


@dataclass(frozen=True)
class ContinualRun:
    """One (buffer, protocol, seed) run: stream accuracy (%) after each experience, forgetting (%)."""

    buffer: str
    protocol: str
    seed: int
    acc_per_experience: list[float]
    forgetting: float
    seconds: float


def run_comparison(
    config: ContinualConfig,
    scenario: Any,
    real: Benchmark,
    *,
    log_dir: Path | None = None,
    device: str | torch.device = "cpu",
    on_result: Callable[[ContinualRun], None] | None = None,
) -> list[ContinualRun]:
    """Every run of ``config``; ``on_result`` is called after each (progress reporting)."""
    from ddapps.continual.scenarios import SPLITS, class_order, split_scenario

    results = []
    for seed in config.seeds:
        if config.class_order != "natural":
            order = class_order(real.num_classes, config.class_order, seed)
            scenario = split_scenario(real, SPLITS[config.benchmark].num_experiences, order, config.incremental)
        cache: dict[Any, Any] = {}
        for protocol in config.protocols:
            for spec in config.buffers:
                result = run_one(
                    config, scenario, real, spec, protocol, seed, cache=cache, log_dir=log_dir, device=device
                )
                results.append(result)
                if on_result is not None:
                    on_result(result)
    return results


def run_one(
    config: ContinualConfig,
    scenario: Any,
    real: Benchmark,
    spec: str,
    protocol: str,
    seed: int,
    *,
    cache: dict[Any, Any] | None = None,
    log_dir: Path | None = None,
    device: str | torch.device = "cpu",
) -> ContinualRun:
    """Train a fresh learner through the stream with buffer ``spec`` under ``protocol``."""
    from avalanche.training.determinism.rng_manager import RNGManager
    from avalanche.training.plugins import ReplayPlugin
    from avalanche.training.supervised import Naive

    from ddapps.continual.gdumb import DistilledGDumbPlugin

    start = time.perf_counter()
    RNGManager.set_random_seeds(derive_seed(seed, "avalanche", spec, protocol) % 2**32)
    lc = config.learner
    model: torch.nn.Module = create_net(
        lc.net, real.channels, real.num_classes, real.image_size,
        generator=make_generator(derive_seed(seed, "learner")), **lc.net_options,
    )  # fmt: skip
    if config.incremental == "task":
        from ddapps.continual.task_heads import TaskHeadClassifier, task_classes

        model = TaskHeadClassifier(model, task_classes(scenario.train_stream), real.num_classes)
    options = config.buffer_options
    if config.online_size is not None:
        options = replace(options, revisit="merge")
    buffer = make_buffer(spec, config.mem_size, model, seed=seed, options=options, cache=cache)
    if protocol == "gdumb":
        plugin: Any = DistilledGDumbPlugin(storage_policy=buffer)
        epochs = lc.gdumb_epochs
    else:
        plugin = ReplayPlugin(config.mem_size, storage_policy=buffer)
        epochs = lc.epochs
    optimizer = torch.optim.SGD(model.parameters(), lr=lc.lr, momentum=lc.momentum, weight_decay=lc.weight_decay)
    strategy = Naive(
        model=model, optimizer=optimizer, criterion=torch.nn.CrossEntropyLoss(), train_mb_size=lc.batch_size,
        train_epochs=epochs, eval_mb_size=1000, device=torch.device(device), plugins=[plugin],
        evaluator=_evaluator(log_dir, f"{spec.replace(':', '-')}_{protocol}_seed{seed}"),
    )  # fmt: skip
    accs, metrics, just_learned = [], {}, []
    for index, experience in enumerate(scenario.train_stream):
        for unit in _training_units(experience, config.online_size, derive_seed(seed, "online", index)):
            strategy.train(unit)
        metrics = strategy.eval(scenario.test_stream)
        accs.append(100.0 * float(_metric(metrics, ACC_KEY)))
        just_learned.append(_experience_accuracies(metrics).get(index, 0.0))
    if config.online_size is None:
        forgetting = 100.0 * float(_metric(metrics, FORGET_KEY, default=0.0))
    else:  # Avalanche keys forgetting by the mini-experience trained last: recompute it per experience
        final = _experience_accuracies(metrics)
        drops = [just_learned[j] - final.get(j, 0.0) for j in range(len(just_learned) - 1)]
        forgetting = 100.0 * statistics.fmean(drops) if drops else 0.0
    return ContinualRun(spec, protocol, seed, accs, forgetting, time.perf_counter() - start)


def _training_units(experience: Any, online_size: int | None, seed: int) -> Any:
    """The experience itself, or its online mini-experiences of ``online_size`` images (shuffled, seeded)."""
    if online_size is None:
        return [experience]
    from avalanche.benchmarks.scenarios.online import split_online_stream

    return split_online_stream([experience], online_size, shuffle=True, seed=seed % 2**32)


def _evaluator(log_dir: Path | None, name: str) -> Any:
    from avalanche.evaluation.metrics import accuracy_metrics, forgetting_metrics
    from avalanche.logging import CSVLogger, TextLogger
    from avalanche.training.plugins import EvaluationPlugin

    loggers: list[Any] = []
    if log_dir is not None:
        folder = Path(log_dir) / name
        folder.mkdir(parents=True, exist_ok=True)
        loggers = [TextLogger(open(folder / "log.txt", "w")), CSVLogger(log_folder=str(folder))]
    return EvaluationPlugin(
        accuracy_metrics(experience=True, stream=True),
        forgetting_metrics(experience=True, stream=True),
        loggers=loggers,
    )


def _experience_accuracies(metrics: dict[str, Any]) -> dict[int, float]:
    """``experience id -> accuracy`` (0-1) on each test experience, from Avalanche's ``Top1_Acc_Exp`` keys.

    StreamForgetting's definition (accuracy on an experience right after training on it minus its final
    accuracy) applied to these is what :func:`run_one` reports as forgetting on online streams.
    """
    out = {}
    for key, value in metrics.items():
        if key.startswith(EXP_ACC_KEY):
            out[int(key.rsplit("/Exp", 1)[1])] = float(value)
    return out


def _metric(metrics: dict[str, Any], prefix: str, default: float | None = None) -> float:
    for key, value in metrics.items():
        if key.startswith(prefix):
            return float(value)
    if default is None:
        raise KeyError(f"Avalanche reported no {prefix} metric")
    return default


def summarize(config: ContinualConfig, results: Sequence[ContinualRun]) -> list[dict[str, Any]]:
    """``results.json`` rows: one per (buffer, protocol), mean/std over seeds."""
    rows = []
    for protocol in config.protocols:
        for spec in config.buffers:
            runs = [r for r in results if r.buffer == spec and r.protocol == protocol]
            if not runs:
                continue
            finals = [r.acc_per_experience[-1] for r in runs]
            curves = list(zip(*(r.acc_per_experience for r in runs)))
            rows.append(
                {
                    "benchmark": config.benchmark,
                    "buffer": spec,
                    "protocol": protocol,
                    "mem_size": config.mem_size,
                    "seed_count": len(runs),
                    "final_acc_mean": statistics.fmean(finals),
                    "final_acc_std": statistics.stdev(finals) if len(finals) > 1 else 0.0,
                    "forgetting_mean": statistics.fmean(r.forgetting for r in runs),
                    "seconds": sum(r.seconds for r in runs),
                    "acc_per_experience": [statistics.fmean(c) for c in curves],
                    "acc_per_experience_std": [statistics.stdev(c) if len(c) > 1 else 0.0 for c in curves],
                    "final_acc_per_seed": finals,
                }
            )
    return rows
