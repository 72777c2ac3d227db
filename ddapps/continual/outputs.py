"""What ``ddapps continual`` writes: ``results.json``, ``report.md`` and the accuracy plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from ddapps.report import command_line, format_table, save_figure, write_run
from ddapps.utils.intervals import paired_t_interval

COLUMNS = ["buffer", "protocol", "mem_size", "seed_count", "final_acc", "forgetting_mean", "seconds"]


def table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Markdown table; ``final_acc`` is ``mean ± std`` (%)."""
    shown = [dict(r) | {"final_acc": f"{r['final_acc_mean']:.2f} ± {r['final_acc_std']:.2f}"} for r in rows]
    return format_table(shown, COLUMNS)


def margins(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Per protocol: each distilled buffer's final accuracy minus the best Avalanche buffer's."""
    lines = []
    for protocol in dict.fromkeys(r["protocol"] for r in rows):
        mine = [r for r in rows if r["protocol"] == protocol and r["buffer"].startswith("distilled:")]
        theirs = [r for r in rows if r["protocol"] == protocol and not r["buffer"].startswith("distilled:")]
        if not mine or not theirs:
            continue
        best = max(theirs, key=lambda r: r["final_acc_mean"])
        for r in mine:
            gap, low, high = paired_t_interval(r["final_acc_per_seed"], best["final_acc_per_seed"])
            lines.append(
                f"- {protocol}: {r['buffer']} {gap:+.2f} points vs the best Avalanche buffer ({best['buffer']}); "
                f"paired 95% t-interval over {len(r['final_acc_per_seed'])} seeds [{low:+.2f}, {high:+.2f}]"
            )
    return lines


def save_curves(rows: Sequence[Mapping[str, Any]], path: Path, *, title: str) -> None:
    """Stream accuracy after each experience, one line per buffer (band: ± sample std over seeds),
    one panel per protocol."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    protocols = list(dict.fromkeys(r["protocol"] for r in rows))
    fig, axes = plt.subplots(1, len(protocols), figsize=(4.5 * len(protocols), 3.5), squeeze=False)
    for ax, protocol in zip(axes[0], protocols):
        for r in rows:
            if r["protocol"] == protocol:
                ys, xs = r["acc_per_experience"], range(1, len(r["acc_per_experience"]) + 1)
                (line,) = ax.plot(xs, ys, marker="o", label=r["buffer"])
                std = r.get("acc_per_experience_std")
                if std and r.get("seed_count", 1) > 1:  # band: mean ± sample std over seeds
                    lo, hi = [y - s for y, s in zip(ys, std)], [y + s for y, s in zip(ys, std)]
                    ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.15, linewidth=0)
        ax.set_title(f"{protocol}", fontsize=9)
        ax.set_xlabel("experiences trained")
        ax.set_ylabel("stream accuracy, all classes (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    save_figure(fig, path)


def write_all(
    out: Path, config: Mapping[str, Any], device: Any, rows: list[dict[str, Any]], budget: str, **extra: Any
) -> None:
    """``results.json`` (``extra`` keys at its top level), ``report.md`` and ``accuracy_per_experience.png``."""
    order = "" if config.get("class_order", "natural") == "natural" else f", {config['class_order']} class order"
    title = (
        f"{config['benchmark']}, {config.get('incremental', 'class')}-incremental{order}, memory {config['mem_size']}"
    )
    save_curves(rows, out / "accuracy_per_experience.png", title=title)
    report = "\n".join(
        [
            f"# ddapps continual: {title}",
            "",
            f"Command: `{command_line()}`",
            "",
            f"Budget: {budget}",
            "",
            table(rows),
            "",
            *margins(rows),
            "",
            "Final accuracy: stream accuracy over all test classes after the last experience (%; task-incremental:",
            "each test image answered among its task's classes).",
            "Forgetting: Avalanche's StreamForgetting after the last experience (%).",
            "",
            "![accuracy after each experience](accuracy_per_experience.png)",
            "",
        ]
    )
    write_run(out, "continual", config, device, rows, report, **extra)
