"""Figures of the privacy commands: closest (synthetic, training image) pairs and the utility curve."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Mapping, Sequence

from torch import Tensor

from ddapps.data import Benchmark
from ddapps.utils.atomic import write_bytes


def save_closest_pairs(pairs: dict[str, tuple[Tensor, Tensor, Tensor]], real: Benchmark, path: str | Path) -> None:
    """One row per target: synthetic image above its nearest member, with the L2 distance."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not pairs:
        return
    k = max(p[0].shape[0] for p in pairs.values())
    fig, axes = plt.subplots(2 * len(pairs), k, figsize=(1.1 * k, 2.3 * len(pairs)), squeeze=False)
    for r, (label, (syn, mem, dist)) in enumerate(pairs.items()):
        for j in range(k):
            for i, images in enumerate((syn, mem)):
                ax = axes[2 * r + i][j]
                ax.axis("off")
                if j >= images.shape[0]:
                    continue
                img = real.denormalize(images[j : j + 1].cpu().float())[0].clamp(0, 1)
                cmap = "gray" if img.shape[0] == 1 else None
                ax.imshow((img[0] if img.shape[0] == 1 else img.permute(1, 2, 0)).numpy(), cmap=cmap, vmin=0, vmax=1)
                if i == 0:
                    ax.set_title(f"d={float(dist[j]):.2f}", fontsize=7)
        axes[2 * r][0].text(
            -0.5, 0.5, f"{label}\nsynthetic", transform=axes[2 * r][0].transAxes, ha="right", va="center", fontsize=7
        )
        axes[2 * r + 1][0].text(
            -0.5, 0.5, "nearest\nmember", transform=axes[2 * r + 1][0].transAxes, ha="right", va="center", fontsize=7
        )
    fig.suptitle("closest synthetic / training pairs (L2, normalised pixels)", fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    write_bytes(path, buffer.getvalue())


def save_utility_plot(summary: Sequence[Mapping[str, Any]], path: str | Path, *, title: str) -> None:
    """``utility.png``: test accuracy (mean ± std over seeds) against epsilon, one line per method.

    The x axis is logarithmic; ``inf`` (clipping without noise) is drawn at the right, one
    decade past the largest finite epsilon, and labelled as such.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ddapps.report import save_accuracy_axes

    finite = [float(r["epsilon"]) for r in summary if r["epsilon"] != "inf"]
    inf_at = 10 * max(finite) if finite else 1.0
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for method in dict.fromkeys(r["method"] for r in summary):
        pts = sorted(
            (inf_at if r["epsilon"] == "inf" else float(r["epsilon"]), r["acc_mean"], r["acc_std"] or 0.0)
            for r in summary if r["method"] == method
        )  # fmt: skip
        xs, ys, es = zip(*pts)
        ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=method)
    ax.set_xscale("log")
    ticks = sorted(set(finite)) + ([inf_at] if any(r["epsilon"] == "inf" for r in summary) else [])
    ax.set_xticks(ticks)
    ax.set_xticklabels(
        [f"{t:g}" for t in sorted(set(finite))] + (["inf\n(no noise)"] if len(ticks) > len(set(finite)) else [])
    )
    ax.minorticks_off()
    save_accuracy_axes(fig, ax, path, xlabel="epsilon", title=title)
