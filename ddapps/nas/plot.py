"""Scatter plot of proxy accuracy against reference accuracy, one panel per proxy (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from ddapps.report import save_figure


def save_rank_scatter(
    archs: Sequence[Mapping[str, Any]], rows: Sequence[Mapping[str, Any]], path: str | Path, *, title: str
) -> None:
    """``path`` (PNG): for each proxy row, validation accuracy after the proxy vs after the reference."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(rows), figsize=(3.6 * len(rows), 3.4), squeeze=False)
    ref = [a["acc_reference"] for a in archs]
    for ax, row in zip(axes[0], rows):
        proxy = row["proxy"]
        ax.scatter(ref, [a[f"acc_{proxy}"] for a in archs], s=18, alpha=0.8)
        rho = row["spearman"]
        ci = (row["spearman_ci_low"], row["spearman_ci_high"])
        label = "rho n/a" if rho is None else f"rho {rho:.2f}" + ("" if None in ci else f" [{ci[0]:.2f}, {ci[1]:.2f}]")
        ax.set_title(f"{proxy}\n{label}", fontsize=8)
        ax.set_xlabel("reference val. accuracy (%)", fontsize=8)
        ax.set_ylabel("proxy val. accuracy (%)", fontsize=8)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    fig.suptitle(title, fontsize=9)
    save_figure(fig, path)
