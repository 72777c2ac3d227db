"""Everything a run writes for people to read: ``results.json``, ``report.md``, ``grid.png`` and plots.

``results.json`` has one schema for every command that measures something::

    {"ddapps_version", "command", "config", "environment": {"torch", "device", "threads", ...},
     "rows": [...]}

Accuracies are percentages (0-100), times seconds, sizes bytes or MB as the key says. Every
standard deviation is the *sample* one (ddof 1) over the runs it summarises; ``results.json``
says so in ``"std"``.
"""

from __future__ import annotations

import io
import math
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import torch
from torch import Tensor

import ddapps
from ddapps.synthetic import SyntheticSet
from ddapps.utils.atomic import write_bytes, write_json, write_text
from ddapps.utils.environment import environment

STD_NOTE = "sample standard deviation (ddof 1) over runs"


def results_document(
    command: str, config: Mapping[str, Any], device: Any, rows: list[dict[str, Any]]
) -> dict[str, Any]:
    """The shared ``results.json`` structure (``command`` is the command's name, e.g. ``"nas rank"``)."""
    return {
        "ddapps_version": ddapps.__version__,
        "command": command,
        "command_line": command_line(),
        "config": dict(config),
        "environment": environment(device),
        "std": STD_NOTE,
        "rows": rows,
    }


def command_line(prog: str = "ddapps") -> str:
    """The command that is running, as typed (for reports); ``prog`` stands for ``sys.argv[0]``."""
    return prog + " " + " ".join(sys.argv[1:])


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A Markdown table; ``acc_mean`` is shown as ``mean ± std`` (sample std) when ``acc_std`` exists."""
    header = ["accuracy (%)" if c == "acc_mean" else c for c in columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = []
        for col in columns:
            value = row.get(col, "")
            if col == "acc_mean" and "acc_std" in row:
                cells.append(f"{row['acc_mean']:.2f} ± {row['acc_std']:.2f}")
            elif isinstance(value, float):
                cells.append(f"{value:.2f}" if math.isfinite(value) else str(value))
            else:
                cells.append(str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def display_images(synset: SyntheticSet) -> Tensor:
    """Training images of ``synset`` mapped back to [0, 1] pixels (undo ZCA and normalisation)."""
    images, _ = synset.training_data()
    x = images.detach().float().cpu()
    if synset.zca is not None:
        flat = x.flatten(1) @ torch.linalg.pinv(synset.zca["matrix"].double()).float() + synset.zca["mean"]
        x = flat.reshape(x.shape)
    norm = synset.meta.get("normalization")
    if norm:
        mean = torch.tensor(norm["mean"]).view(1, -1, 1, 1)
        std = torch.tensor(norm["std"]).view(1, -1, 1, 1)
        x = x * std + mean
    return x.clamp(0, 1)


def save_grid(
    synset: SyntheticSet, path: str | Path, *, max_per_class: int = 20, class_names: Iterable[str] | None = None
) -> None:
    """``grid.png``: the synthetic images, one row per class (at most ``max_per_class`` columns)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images = display_images(synset)
    _, labels = synset.training_data()
    hard = labels.argmax(dim=1) if labels.is_floating_point() else labels
    names = list(class_names) if class_names is not None else [str(c) for c in range(synset.num_classes)]
    cols = max(1, min(max_per_class, int(torch.bincount(hard, minlength=synset.num_classes).max())))
    rows = synset.num_classes
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.9 + 0.8, rows * 0.9), squeeze=False)
    for c in range(rows):
        members = images[hard == c][:cols]
        for j in range(cols):
            ax = axes[c][j]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if j < members.shape[0]:
                img = members[j].permute(1, 2, 0).numpy()
                ax.imshow(img.squeeze(-1) if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=1)
            if j == 0:
                ax.set_ylabel(names[c] if c < len(names) else str(c), rotation=0, ha="right", va="center", fontsize=7)
    method = synset.meta.get("method", "?")
    fig.suptitle(f"{method} ipc={synset.meta.get('ipc', '?')}", fontsize=9)
    save_figure(fig, path)


def save_accuracy_plot(rows: Sequence[Mapping[str, Any]], path: str | Path, *, title: str) -> None:
    """Accuracy (mean ± std) against IPC, one line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for method in dict.fromkeys(r["method"] for r in rows):
        pts = sorted((r["ipc"], r["acc_mean"], r["acc_std"]) for r in rows if r["method"] == method)
        xs, ys, es = zip(*pts)
        ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=method)
    save_accuracy_axes(fig, ax, path, xlabel="images per class", title=title)


def save_accuracy_axes(fig: Any, ax: Any, path: str | Path, *, xlabel: str, title: str, log_x: bool = True) -> None:
    """The common finish of an accuracy plot: log x axis (unless ``log_x`` is False), labels, title,
    grid, legend; then :func:`save_figure`.

    An axis already on a log scale keeps its ticks (setting the scale again would reset them)."""
    if log_x and ax.get_xscale() != "log":
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, path)


def save_figure(fig: Any, path: str | Path) -> None:
    """Lay out ``fig``, write it as PNG to ``path`` atomically, and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    write_bytes(path, buffer.getvalue())


def write_run(
    out: Path,
    command: str,
    config: Mapping[str, Any],
    device: Any,
    rows: list[dict[str, Any]],
    report: str,
    **extra: Any,
) -> dict[str, Any]:
    """What every command writes, atomically: ``results.json`` (``extra`` keys added at the top
    level), ``report.md`` and ``config.json`` (the run's config alone). Returns the document."""
    document = results_document(command, config, device, rows) | extra
    write_json(
        out / "config.json", {"command": command, "command_line": document["command_line"], "config": dict(config)}
    )
    write_outputs(out, document, report)
    return document


def write_outputs(out: Path, document: dict[str, Any], report: str) -> None:
    """Write ``results.json`` and ``report.md`` atomically into ``out`` (a ``±`` is explained once)."""
    write_json(out / "results.json", document)
    if "±" in report:
        report = report.rstrip("\n") + f"\n\n± is the {STD_NOTE}.\n"
    write_text(out / "report.md", report)
