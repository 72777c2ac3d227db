"""``ddapps bench core --card``: one evaluation card per IPC over the benchmark's distilled sets.

After :func:`ddapps.bench.core.bench_core` has distilled every (method, ipc) pair, the sets of one
IPC share one card (:func:`ddapps.bench.card.run_card`): the card's baselines (random, herding,
k-center, forgetting, EL2N by default) are selected once at the sets' stored image bytes and every
row is evaluated under every label regime, with and without DSA, on the same seeds. A method that
is itself one of the card's baselines is evaluated as that baseline, not twice. The teacher of the
soft and kd regimes is ``--card-teacher``, else the one the teacher-based methods (SRe2L, RDED)
trained into the benchmark's cache, else one trained with the budget's ``teacher`` settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch

from ddapps.bench.card import CardSettings, card_teacher, run_card, set_info, teacher_info
from ddapps.bench.card_report import score_card, write_card
from ddapps.data import Benchmark
from ddapps.report import command_line
from ddapps.synthetic import SyntheticSet


def set_path(out: Path, method: str, ipc: int) -> Path:
    """Where ``bench core`` keeps a pair's synthetic set when it builds cards."""
    return out / "sets" / f"{method}_ipc{ipc}.safetensors"


def cached_teacher(out: Path, benchmark: Benchmark) -> Path | None:
    """The teacher the teacher-based methods trained into ``out/experts`` (see ``with_expert_cache``)."""
    path = out / "experts" / f"{benchmark.name}-teacher.safetensors"
    return path if path.is_file() else None


def write_cards(
    benchmark: Benchmark,
    rows: Sequence[dict[str, Any]],
    out: Path,
    settings: CardSettings,
    *,
    teacher_path: Path | None = None,
    device: torch.device | str = "cpu",
    log: Any = None,
) -> list[Path]:
    """Write ``out/card_ipc<k>/`` for every IPC with at least one set that is not a card baseline;
    return the card folders."""
    folders = []
    for ipc in dict.fromkeys(int(r["ipc"]) for r in rows):
        methods = [str(r["method"]) for r in rows if int(r["ipc"]) == ipc and r["method"] not in settings.baselines]
        if not methods:
            continue
        named = {m: SyntheticSet.load(set_path(out, m, ipc)) for m in methods}
        folder = out / f"card_ipc{ipc}"
        teacher, origin = None, dict[str, Any]()
        if settings.needs_teacher:
            source = teacher_path or cached_teacher(out, benchmark)
            teacher, origin = card_teacher(
                source, benchmark, list(named.values()), settings.budget, folder / "teacher.safetensors",
                seed=settings.seed, device=device,
            )  # fmt: skip
        card = run_card(named, benchmark, settings, teacher=teacher, device=device, log=log)
        seconds = {str(r["method"]): r.get("distill_seconds") for r in rows if int(r["ipc"]) == ipc}
        card["sets"] = {m: set_info(set_path(out, m, ipc), s, seconds.get(m)) for m, s in named.items()}
        card |= {"dataset": benchmark.describe(), "teacher": teacher_info(teacher, origin)}
        write_card(folder, score_card(card), command_line())
        folders.append(folder)
    return folders
