"""One distillation run end to end: distil, measure time and peak memory, evaluate, describe.

Shared by ``ddapps distill``, ``ddapps demo`` and ``ddapps bench core`` so all of them produce the
same result rows: ``dataset, method, ipc, acc_mean, acc_std, n_eval, distill_seconds, peak_mem_mb``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Mapping

import torch

from ddapps.data import Benchmark
from ddapps.evaluation import EvalConfig, EvalResult, evaluate_synset
from ddapps.methods import CheckpointSpec, create_distiller
from ddapps.synthetic import SyntheticSet
from ddapps.utils.memory import PeakMemory
from ddapps.utils.seeding import make_generator

DEFAULT_EVAL = EvalConfig()
"""The evaluation protocol's defaults (a frozen config, shared)."""


@dataclass
class RunResult:
    """A distilled set, how long and how much memory it took, and its evaluation (if any)."""

    synset: SyntheticSet
    distill_seconds: float
    peak_mem_mb: float
    evaluation: EvalResult | None

    def row(self, dataset: str) -> dict[str, Any]:
        """The standard core result row."""
        row: dict[str, Any] = {
            "dataset": dataset,
            "method": self.synset.meta.get("method"),
            "ipc": self.synset.ipc,
            "distill_seconds": round(self.distill_seconds, 3),
            "peak_mem_mb": round(self.peak_mem_mb, 1),
            "stored_floats": self.synset.stored_floats(),
        }
        if self.evaluation is not None:
            row.update(
                acc_mean=self.evaluation.mean,
                acc_std=self.evaluation.std,
                n_eval=len(self.evaluation.accuracies),
                accuracies=self.evaluation.accuracies,
                eval_protocol=self.evaluation.protocol,
                eval_loss=self.evaluation.protocol.get("loss", ""),
                eval_seconds=round(self.evaluation.seconds, 3),
            )
        return row


def distill_and_evaluate(
    benchmark: Benchmark,
    method: str,
    ipc: int,
    *,
    overrides: Mapping[str, Any] | None = None,
    eval_config: EvalConfig | None = DEFAULT_EVAL,
    seed: int = 0,
    device: torch.device | str = "cpu",
    checkpoint: CheckpointSpec | None = None,
    progress: bool = False,
) -> RunResult:
    """Distil ``benchmark`` with ``method`` at ``ipc`` (seeded), then run the evaluation protocol."""
    distiller = create_distiller(method, dict(overrides or {}), device=device, progress=progress)
    with PeakMemory(device) as memory:
        start = time.perf_counter()
        synset = distiller.distill(benchmark, ipc, generator=make_generator(seed), checkpoint=checkpoint)
        seconds = time.perf_counter() - start
    synset.meta["seed"] = seed
    evaluation = None
    if eval_config is not None:
        evaluation = evaluate_synset(synset, benchmark, eval_config, seed=seed, device=device)
    return RunResult(synset=synset, distill_seconds=seconds, peak_mem_mb=memory.peak_mb, evaluation=evaluation)
