"""``ddapps bench core``: methods x IPC on one dataset, one table of mean ± std accuracy,
distillation seconds and peak memory; ``results.json``, ``report.md``, an accuracy-vs-IPC plot
and one image grid per run. Seeds are fixed; nothing is selected on the test set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch
from tqdm.auto import tqdm

from ddapps.bench.card import CardSettings
from ddapps.bench.core_card import set_path, write_cards
from ddapps.budgets import Budget, with_expert_cache
from ddapps.data import Benchmark
from ddapps.methods.base import check_ipc
from ddapps.report import command_line, format_table, save_accuracy_plot, save_grid, write_run
from ddapps.runner import distill_and_evaluate
from ddapps.utils.atomic import write_json

COLUMNS = (
    "method",
    "ipc",
    "acc_mean",
    "n_eval",
    "eval_loss",
    "distill_seconds",
    "eval_seconds",
    "peak_mem_mb",
    "stored_floats",
)


def bench_core(
    benchmark: Benchmark,
    methods: Sequence[str],
    ipcs: Sequence[int],
    budget: Budget,
    out: Path,
    *,
    seed: int = 0,
    device: torch.device | str = "cpu",
    command: str = "bench core",
    progress: bool = True,
    resume: bool = False,
    card: CardSettings | None = None,
    card_teacher: Path | None = None,
) -> list[dict[str, Any]]:
    """Run every (method, ipc) pair under ``budget``; write the outputs into ``out``; return rows.

    Each finished pair is saved at once to ``out/pairs/<method>_ipc<k>.json`` (with the settings
    that produced it). With ``resume=True`` a pair whose file holds the same settings is reused
    instead of rerun, so an interrupted hour-long benchmark continues where it stopped. With
    ``card`` every set is also kept (``out/sets/``) and each IPC's sets get one evaluation card
    (``out/card_ipc<k>/``, :mod:`ddapps.bench.core_card`).
    """
    from ddapps.methods import METHODS

    for name in methods:
        METHODS.get(name)  # fail on an unknown name before any work
    for ipc in ipcs:
        check_ipc(benchmark, ipc)
    rows: list[dict[str, Any]] = []
    pairs = [(m, k) for k in ipcs for m in methods]
    for method, ipc in tqdm(pairs, desc=command, disable=not progress):
        settings = _pair_settings(benchmark, method, ipc, budget, seed)
        pair_file = out / "pairs" / f"{method}_ipc{ipc}.json"
        done = _finished_pair(pair_file, settings) if resume else None
        if done is not None and card is not None and not set_path(out, method, ipc).is_file():
            done = None  # the card needs the set itself
        if done is not None:
            rows.append(done)
            continue
        result = distill_and_evaluate(
            benchmark,
            method,
            ipc,
            overrides=with_expert_cache(budget.overrides(method, ipc), out / "experts", benchmark.name),
            eval_config=budget.eval_config(),
            seed=seed,
            device=device,
            progress=progress,
        )
        save_grid(result.synset, out / "grids" / f"{method}_ipc{ipc}.png", class_names=benchmark.class_names)
        if card is not None:
            result.synset.save(set_path(out, method, ipc))
        row = result.row(benchmark.name) | {"budget": budget.name}
        write_json(pair_file, {"settings": settings, "row": row})
        rows.append(row)
    config = {
        "dataset": benchmark.describe(),
        "methods": list(methods),
        "ipc": list(ipcs),
        "budget": budget.name,
        "budget_description": budget.description,
        "method_overrides": {f"{m}@{k}": budget.overrides(m, k) for m in methods for k in ipcs},
        "eval": budget.eval_config().__dict__,
        "seed": seed,
    }
    total_minutes = sum(r.get("distill_seconds", 0) + r.get("eval_seconds", 0) for r in rows) / 60
    config["total_minutes"] = round(total_minutes, 2)
    table = format_table(rows, COLUMNS)
    report = "\n".join(
        [
            f"# ddapps {command}: {benchmark.name}",
            "",
            f"Command: `{command_line()}`",
            "",
            f"Budget `{budget.name}`: {budget.description}.",
            f"Test set: {len(benchmark.test)} images; accuracy is the mean ± std over the evaluation runs, "
            "each set evaluated under its own paper's protocol (`eval_loss`: cross_entropy, or mse for "
            "the kernel methods' sets; details in results.json).",
            f"Distillation + evaluation time summed over all pairs: {total_minutes:.1f} min.",
            "",
            table,
            "",
            "![accuracy vs IPC](accuracy_vs_ipc.png)",
            "",
            "Image grids: `grids/<method>_ipc<k>.png`.",
            "",
        ]
    )
    save_accuracy_plot(rows, out / "accuracy_vs_ipc.png", title=f"{benchmark.name}, budget {budget.name}")
    write_run(out, command, config, device, rows, report)
    if card is not None:
        log = (lambda line: tqdm.write(line)) if progress else None
        write_cards(benchmark, rows, out, card, teacher_path=card_teacher, device=device, log=log)
    return rows


def _pair_settings(benchmark: Benchmark, method: str, ipc: int, budget: Budget, seed: int) -> dict[str, Any]:
    """Everything that determines one pair's result (compared on resume), as JSON-ready values."""
    import json

    settings = {
        "dataset": benchmark.describe(),
        "method": method,
        "ipc": ipc,
        "budget": budget.name,
        "overrides": budget.overrides(method, ipc),  # the expert cache path is left out: it moves with OUT
        "eval": budget.eval_config().__dict__,
        "seed": seed,
    }
    return json.loads(json.dumps(settings, default=str))


def _finished_pair(path: Path, settings: dict[str, Any]) -> dict[str, Any] | None:
    """The saved row of a finished pair run with exactly ``settings`` (``None``: run it)."""
    import json

    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict) or saved.get("settings") != settings or not isinstance(saved.get("row"), dict):
        return None
    return saved["row"]
