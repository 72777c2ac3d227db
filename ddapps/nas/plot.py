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
        key = "acc2_reference" if proxy == "reference-seed2" else f"acc_{proxy}"
        ax.scatter(ref, [a[key] for a in archs], s=18, alpha=0.8)
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


def save_truth_scatter(
    archs: Sequence[Mapping[str, Any]],
    rows: Sequence[Mapping[str, Any]],
    seed: int,
    path: str | Path,
    *,
    title: str,
) -> None:
    """``path`` (PNG): each proxy's score (seed ``seed``) against the ground-truth accuracy, one panel per
    proxy, titled with its Spearman mean ± std over seeds and its noise ceiling."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(4, len(rows))
    n_rows = -(-len(rows) // cols)
    fig, axes = plt.subplots(n_rows, cols, figsize=(3.4 * cols, 3.1 * n_rows), squeeze=False)
    truth = [a["truth"] for a in archs]
    for ax, row in zip(axes.flat, rows):
        name = row["proxy"]
        ax.scatter(truth, [a[f"{name}_seed{seed}"] for a in archs], s=14, alpha=0.8)
        rho, std, ceiling = row.get("spearman_mean"), row.get("spearman_std"), row.get("ceiling_spearman_mean")
        label = "rho n/a" if rho is None else f"rho {rho:.2f}" + ("" if std is None else f" ± {std:.2f}")
        if ceiling is not None:
            label += f", ceiling {ceiling:.2f}"
        ax.set_title(f"{name}\n{label}", fontsize=8)
        ax.set_xlabel("ground truth acc. (%)", fontsize=7)
        ax.set_ylabel("val. acc. (%)" if row.get("kind") == "data" else "score", fontsize=7)
        if row.get("kind") == "zero-cost":
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=6)
    for ax in list(axes.flat)[len(rows) :]:
        ax.axis("off")
    fig.suptitle(title, fontsize=8)
    save_figure(fig, path)
