"""Accuracy against cumulative communication (bytes up + down), one line per mode."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from ddapps.report import save_accuracy_axes


def save_bytes_plot(rows: Sequence[Mapping[str, Any]], path: str | Path, *, title: str) -> None:
    """Write the plot of each row's ``per_round`` accuracy (mean ± std) vs cumulative bytes.

    Points start at the first round that communicated (log axis)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for row in rows:
        xs, ys, es, total = [], [], [], 0.0
        for r in row["per_round"]:
            total += r["bytes_up"] + r["bytes_down"]
            if total <= 0:
                continue  # round 0 (the initial model) has no bytes to place on a log axis
            xs.append(total)
            ys.append(r["acc_mean"])
            es.append(r["acc_std"])
        ax.errorbar(xs, ys, yerr=es, marker="o", markersize=3, capsize=2, label=row["mode"])
    save_accuracy_axes(fig, ax, path, xlabel="cumulative bytes (up + down)", title=title)
