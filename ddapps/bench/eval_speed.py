"""``ddapps bench eval``: the evaluation protocol one network at a time vs all networks batched.

Both modes evaluate the same set with the same seeds (:func:`~ddapps.evaluation.evaluate_tensors`,
``EvalConfig.batched`` off and on), alternating which runs first in each repeat so that a drift of
the machine's speed affects both. Reported per mode: seconds (mean ± sample std over repeats), peak
memory (:class:`~ddapps.utils.memory.PeakMemory`), each network's accuracy; and the per-repeat
speed-up ``sequential seconds / batched seconds`` with its mean ± std, and the largest accuracy
difference between the two modes over networks and repeats (float rounding differs: a batched
convolution sums in another order, see :mod:`ddapps.evaluation.batched`). Nothing is selected.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from ddapps.data import Benchmark
from ddapps.errors import ConfigError
from ddapps.evaluation import EvalConfig, evaluate_synset
from ddapps.report import command_line, format_table, write_run
from ddapps.synthetic import SyntheticSet
from ddapps.utils.memory import PeakMemory

MODES = ("sequential", "batched")
COLUMNS = ("mode", "seconds", "speedup", "peak_mem_mb", "accuracies")


@dataclass(frozen=True)
class EvalBenchSettings:
    """What one measurement evaluates: ``n_eval`` networks for ``epochs``, ``repeats`` times per mode."""

    n_eval: int = 5
    epochs: int = 300
    repeats: int = 2
    dsa: bool = True
    net: str = "convnet"
    net_options: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.n_eval < 2 or self.repeats < 1 or self.epochs < 1:
            raise ConfigError("bench eval needs --n-eval >= 2, --repeats >= 1 and --epochs >= 1")

    def config(self, batched: bool) -> EvalConfig:
        return EvalConfig(net=self.net, net_options=dict(self.net_options or {}), n_eval=self.n_eval,
                          epochs=self.epochs, dsa=self.dsa, batched=batched)  # fmt: skip


def _std(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def bench_eval(
    synset: SyntheticSet,
    benchmark: Benchmark,
    settings: EvalBenchSettings,
    out: Path,
    *,
    seed: int = 0,
    device: torch.device | str = "cpu",
    set_name: str = "",
) -> list[dict[str, Any]]:
    """Time both modes on ``synset``; write ``results.json`` and ``report.md`` into ``out``; return rows."""
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in MODES}
    for repeat in range(settings.repeats):
        order = MODES if repeat % 2 == 0 else MODES[::-1]
        for mode in order:
            with PeakMemory(device) as memory:
                result = evaluate_synset(
                    synset, benchmark, settings.config(mode == "batched"), seed=seed, device=device
                )
            runs[mode].append(
                {"seconds": result.seconds, "accuracies": result.accuracies, "peak_mem_mb": memory.peak_mb}
            )
            print(f"repeat {repeat} {mode}: {result.seconds:.1f} s, accuracies {result.accuracies}", flush=True)
    speedups = [s["seconds"] / b["seconds"] for s, b in zip(runs["sequential"], runs["batched"])]
    diffs = [
        abs(a - b)
        for s, b in zip(runs["sequential"], runs["batched"])
        for a, b in zip(s["accuracies"], b["accuracies"])
    ]  # fmt: skip
    rows = []
    for mode in MODES:
        seconds = [r["seconds"] for r in runs[mode]]
        rows.append({
            "mode": mode,
            "seconds_mean": statistics.fmean(seconds),
            "seconds_std": _std(seconds),
            "seconds_runs": seconds,
            "speedup_mean": statistics.fmean(speedups) if mode == "batched" else 1.0,
            "speedup_std": _std(speedups) if mode == "batched" else 0.0,
            "peak_mem_mb": max(r["peak_mem_mb"] for r in runs[mode]),
            "accuracies": [r["accuracies"] for r in runs[mode]],
        })  # fmt: skip
    summary = {"speedups": speedups, "max_accuracy_difference": max(diffs), "set": set_name}
    config = {"dataset": benchmark.describe(), "seed": seed, "set": set_name, **asdict(settings)}
    table = format_table([display_row(r) for r in rows], COLUMNS)
    report = "\n".join([
        f"# ddapps bench eval: {benchmark.name}",
        "",
        f"Command: `{command_line()}`",
        "",
        f"{settings.n_eval} networks x {settings.epochs} epochs ({settings.net}, DSA {'on' if settings.dsa else 'off'}) "
        f"on `{set_name}`, {settings.repeats} repeat(s) per mode, the order alternating. Speed-up = sequential "
        f"seconds / batched seconds of the same repeat. Accuracies are per network, first repeat.",
        "",
        table,
        "",
        f"Largest accuracy difference between the modes (any network, any repeat): "
        f"{summary['max_accuracy_difference']:.2f} points.",
        "",
    ])  # fmt: skip
    write_run(out, "bench eval", config, device, rows, report, summary=summary)
    print(table)
    return rows


def display_row(row: dict[str, Any]) -> dict[str, Any]:
    """One table row: seconds and speed-up as mean ± std, the first repeat's accuracies."""
    return {
        "mode": row["mode"],
        "seconds": f"{row['seconds_mean']:.1f} ± {row['seconds_std']:.1f}",
        "speedup": f"{row['speedup_mean']:.2f} ± {row['speedup_std']:.2f}",
        "peak_mem_mb": f"{row['peak_mem_mb']:.0f}",
        "accuracies": ", ".join(f"{a:.2f}" for a in row["accuracies"][0]),
    }
