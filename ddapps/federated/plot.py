"""Accuracy against cumulative bytes sent up by the clients, one line per mode, a band over seeds."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from ddapps.report import save_accuracy_axes


def save_bytes_plot(rows: Sequence[Mapping[str, Any]], path: str | Path, *, title: str) -> None:
    """Write the plot of each row's ``per_round`` accuracy (mean, band of ± one std over seeds)
    against the cumulative bytes up to that round (what the clients sent; the question of
    communication-efficient FL). Points start at the first round that uploaded (log axis); a
    one-round mode is one point with its ± std bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for row in rows:
        xs, ys, es, total = [], [], [], 0.0
        for r in row["per_round"]:
            total += r["bytes_up"]
            if total <= 0:
                continue  # round 0 (the initial model) uploads nothing to place on a log axis
            xs.append(total)
            ys.append(r["acc_mean"])
            es.append(r["acc_std"])
        if len(xs) == 1:
            ax.errorbar(xs, ys, yerr=es, marker="o", markersize=5, capsize=3, label=row["mode"])
            continue
        (line,) = ax.plot(xs, ys, marker="o", markersize=2, label=row["mode"])
        ax.fill_between(xs, [y - e for y, e in zip(ys, es)], [y + e for y, e in zip(ys, es)],
                        color=line.get_color(), alpha=0.2, linewidth=0)  # fmt: skip
    save_accuracy_axes(fig, ax, path, xlabel="cumulative bytes up (clients to server)", title=title)
