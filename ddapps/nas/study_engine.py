"""Where a rank study's architectures are scored: in this process, or as NNI trials.

A study scores the same list of architectures on every proxy of a seed. Two scorers, one scoring
function (:func:`~ddapps.nas.scoring.score_architecture`):

* :class:`InProcessScorer` loops over the architectures here (no NNI needed);
* :class:`NNIScorer` runs them as trials of an NNI 3.0 ``NasExperiment`` whose strategy submits
  exactly the study's sample (:class:`FixedSamples`) and whose evaluator is the one ``nas search``
  uses (:func:`~ddapps.nas.evaluator.make_evaluator`): on NNI's ``sequential`` engine (trials one
  by one in this process) or its ``local`` training service (``concurrency`` trials as
  subprocesses; a remote training service is the same experiment with another
  ``NasExperimentConfig``, see ``docs/nas.md``). The seed's proxy data and validation images are
  written to ``workdir/seed{S}/`` and travel to the trials as paths; each trial reports every
  proxy's accuracy, ceiling and seconds as intermediate results (their order is the proxies').

Both call ``on_first(seconds)`` once the first architecture is scored, with the wall time an
architecture costs (divided by the concurrency), so the study can print its estimate.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import Tensor
from tqdm.auto import tqdm

from ddapps.errors import ConfigError
from ddapps.nas.nb201 import format_arch
from ddapps.nas.scoring import ArchitectureScore, DataProxy, save_data_proxy, score_architecture
from ddapps.nas.training import StepBudget

Arch = tuple[str, ...]
OnFirst = Callable[[float], None]


class InProcessScorer:
    """Score architectures one after another in this process."""

    def __init__(self, build: Callable[[Arch], torch.nn.Module], budget: StepBudget, *, ceiling: bool,
                 device: torch.device | str = "cpu", progress: bool = False) -> None:  # fmt: skip
        self.build, self.budget, self.ceiling, self.device, self.progress = build, budget, ceiling, device, progress

    def __call__(
        self,
        seed: int,
        archs: Sequence[Arch],
        data: dict[str, DataProxy],
        val: tuple[Tensor, Tensor],
        on_first: OnFirst,
    ) -> list[ArchitectureScore]:
        scores = []
        for index, arch in enumerate(tqdm(archs, desc=f"seed {seed}", disable=not self.progress)):
            started = time.perf_counter()
            net = self.build(arch)
            scores.append(
                score_architecture(net, data, self.budget, seed=seed, val=val, ceiling=self.ceiling, device=self.device)
            )
            if index == 0:
                on_first(time.perf_counter() - started)
        return scores


class NNIScorer:
    """Score architectures as trials of an NNI experiment over ``model_space`` (see the module docstring)."""

    def __init__(self, model_space: Any, budget: StepBudget, workdir: str | Path, *, ceiling: bool,
                 to_sample: Callable[[Arch], dict[str, Any]], engine: str = "sequential", concurrency: int = 1,
                 port: int = 8080, machines: str | None = None, resolution: int | None = None,
                 device: str = "cpu") -> None:  # fmt: skip
        from ddapps.nas.search import SearchConfig

        self.config = SearchConfig(strategy="grid", max_trials=1, engine=engine, trial_concurrency=concurrency,
                                   port=port, machines=machines)  # fmt: skip
        self.model_space, self.budget, self.workdir = model_space, budget, Path(workdir)
        self.ceiling, self.to_sample, self.resolution, self.device = ceiling, to_sample, resolution, device

    def __call__(
        self,
        seed: int,
        archs: Sequence[Arch],
        data: dict[str, DataProxy],
        val: tuple[Tensor, Tensor],
        on_first: OnFirst,
    ) -> list[ArchitectureScore]:
        from dataclasses import replace

        from ddapps.nas.evaluator import make_evaluator
        from ddapps.nas.fixed_strategy import FixedSamples
        from ddapps.nas.proxy_data import save_tensors
        from ddapps.nas.search import run_experiment, sample_key

        folder = self.workdir / f"seed{seed}"
        paths = {
            name: str(save_data_proxy(folder / f"proxy{i}.safetensors", d).resolve())
            for i, (name, d) in enumerate(data.items())
        }  # fmt: skip
        val_path = str(save_tensors(folder / "val.safetensors", *val).resolve())
        evaluator = make_evaluator(
            paths, val_path, steps=self.budget.steps, batch_size=self.budget.batch_size, seed=seed,
            device=self.device, resolution=self.resolution, ceiling=self.ceiling,
        )  # fmt: skip
        samples = [self.to_sample(a) for a in archs]
        config = replace(self.config, max_trials=len(samples))
        result = run_experiment(
            self.model_space, evaluator, lambda: FixedSamples(samples, on_first, config.trial_concurrency), config,
            folder / "nni", f"ddapps-study-seed{seed}",
        )  # fmt: skip
        by_sample = {sample_key(t["sample"]): t for t in result.trials}
        names = list(data)
        scores = []
        for arch, sample in zip(archs, samples):
            trial = by_sample.get(sample_key(sample))
            if trial is None or trial["status"] != "trained":
                raise ConfigError(f"the NNI trial of {format_arch(arch)} did not finish; see {folder / 'nni'}")
            scores.append(_unpack(trial["intermediates"], names, self.ceiling))
        return scores


def _unpack(values: list[float], names: list[str], ceiling: bool) -> ArchitectureScore:
    """Intermediate results of a study trial back into an :class:`ArchitectureScore`."""
    n = len(names)
    expected = n * (3 if ceiling else 2)
    if len(values) != expected:
        raise ConfigError(f"a study trial reported {len(values)} values, expected {expected}")
    acc, rest = values[:n], values[n:]
    ceil, secs = (rest[:n], rest[n:]) if ceiling else ([], rest)
    return ArchitectureScore(dict(zip(names, acc)), dict(zip(names, ceil)), dict(zip(names, secs)))
