"""Rank study against ground truth: does a proxy order NAS-Bench-201 cells the way 200-epoch training does?

Dong & Yang, "NAS-Bench-201", ICLR 2020, publish the CIFAR-10 test accuracy after 200 epochs of every
one of its 15,625 cells; DC-BENCH (Cui et al., NeurIPS 2022) and later distillation papers rank
architectures with a distilled set and correlate the ranking with that ground truth. Here:

* **Sample** ``n_archs`` connected cells (a cell with no path from input to output computes a
  constant and is excluded), ``stratified`` over the ground-truth accuracy range (one cell drawn
  from each of ``n_archs`` equal-count bins) or ``top-heavy`` (half the cells stratified over the
  best 5%, where the decision matters, half over the rest). The sample is fixed by ``sample_seed``
  so every pipeline seed ranks the same cells (paired comparisons).
* **Data proxies** (each network trains ``proxy_steps`` SGD steps of ``batch_size`` images on it,
  :func:`~ddapps.nas.training.train_steps`, and is scored by accuracy on validation images carved
  from the training split): every distilled set given, a ``random-subset`` of the same images per
  class, a ``herding`` coreset of that size, and ``early-stop`` (the full training split for the
  same steps: early-stopped training at equal compute).
* **Zero-cost proxies** (:mod:`ddapps.nas.zero_cost`): ``params`` and ``synflow`` of the untrained network.
* The networks are the benchmark's (:mod:`ddapps.nas.nb201`) at a CPU proxy size (``channels`` C,
  ``cells_per_stage`` N; the benchmark's own is C=16, N=5), optionally on images average-pooled to
  ``resolution`` pixels (training data and validation alike): reduced channels and resolution are
  proxy dimensions themselves, as in EcoNAS (Zhou et al., CVPR 2020).
* **Scores per seed**: Spearman and Kendall against the ground truth (percentile-bootstrap intervals
  over architectures), top-k% overlap and Spearman within the ground truth's top k% (k = 5, 10, 20%,
  as FTD reports), and the regret of the proxy's top pick. **Noise ceiling**: each data proxy is
  trained a second time with another initialisation and data order; the Spearman between the two runs
  bounds how well that proxy can agree with anything. **Paired comparisons**: each distilled proxy
  minus each baseline, with a paired bootstrap over architectures per seed and a paired t-interval
  over the pipeline seeds (distillation included).

Nothing here reads the test split: the ground truth is the benchmark's published accuracy.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import Tensor

from ddapps.data import Benchmark
from ddapps.errors import ConfigError
from ddapps.nas import stats
from ddapps.nas.nb201 import NB201Net, format_arch, is_connected
from ddapps.nas.scoring import ArchitectureScore, DataProxy, initialize, resize, resized
from ddapps.nas.study_engine import InProcessScorer
from ddapps.nas.training import StepBudget
from ddapps.nas.zero_cost import ZERO_COST, zero_cost_score
from ddapps.utils.intervals import paired_t_interval, t_interval
from ddapps.utils.seeding import derive_seed, make_generator

SAMPLINGS = ("stratified", "top-heavy")
BASELINES = ("random-subset", "herding", "early-stop")
TOP_HEAVY_FRACTION = 0.05


@dataclass(frozen=True)
class TruthStudyConfig:
    """Budgets and choices of one study (all explicit; see the module docstring)."""

    n_archs: int = 30
    sampling: str = "stratified"
    sample_seed: int = 0
    seeds: tuple[int, ...] = (0, 1, 2)
    proxy_steps: int = 100
    batch_size: int = 64
    val_size: int = 1000
    channels: int = 8
    cells_per_stage: int = 1
    n_boot: int = 1000
    top_fractions: tuple[float, ...] = (0.05, 0.1, 0.2)
    ceiling: bool = True
    truth_key: str = "cifar10"
    resolution: int | None = None
    """Train and score on images average-pooled to this side length (``None``: native)."""

    def __post_init__(self) -> None:
        StepBudget(self.proxy_steps, self.batch_size)
        if self.sampling not in SAMPLINGS:
            raise ConfigError(f"unknown sampling {self.sampling!r}; choose one of: {', '.join(SAMPLINGS)}")
        if self.n_archs < 4:
            raise ConfigError(f"a ranking study needs at least 4 architectures, got {self.n_archs}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError("give at least one seed, without repeats")
        if min(self.val_size, self.n_boot, self.channels, self.cells_per_stage) < 1:
            raise ConfigError("val_size, n_boot, channels and cells_per_stage must be >= 1")
        if self.resolution is not None and self.resolution < 4:
            raise ConfigError(f"resolution must be >= 4 pixels, got {self.resolution}")


def sample_archs(
    truth: Mapping[tuple[str, ...], Mapping[str, float]], n: int, kind: str, key: str, generator: torch.Generator
) -> list[tuple[str, ...]]:
    """``n`` distinct connected cells, ``stratified`` or ``top-heavy`` over ``truth[...][key]``."""
    pool = sorted((a for a in truth if is_connected(a)), key=lambda a: (truth[a][key], format_arch(a)))
    if n > len(pool):
        raise ConfigError(f"cannot sample {n} architectures from {len(pool)} connected cells with ground truth")
    if kind == "stratified":
        return _one_per_bin(pool, n, generator)
    split = len(pool) - max(n // 2, int(TOP_HEAVY_FRACTION * len(pool)))
    top_n = n // 2
    return _one_per_bin(pool[:split], n - top_n, generator) + _one_per_bin(pool[split:], top_n, generator)


def _one_per_bin(pool: Sequence[tuple[str, ...]], n: int, generator: torch.Generator) -> list[tuple[str, ...]]:
    edges = [round(i * len(pool) / n) for i in range(n + 1)]
    picks = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        picks.append(pool[lo + int(torch.randint(hi - lo, (1,), generator=generator))])
    return picks


Scorer = Callable[[int, Sequence[tuple[str, ...]], dict[str, DataProxy], tuple[Tensor, Tensor], Callable[[float], None]],
                  list[ArchitectureScore]]  # fmt: skip
"""``scorer(seed, archs, data, val, on_first)``: every architecture's :class:`ArchitectureScore` (see
:mod:`ddapps.nas.study_engine`)."""


def truth_study(
    benchmark: Benchmark,
    truth: Mapping[tuple[str, ...], Mapping[str, float]],
    proxies_for_seed: Callable[[int], dict[str, DataProxy]],
    distilled: Sequence[str],
    config: TruthStudyConfig = TruthStudyConfig(),
    *,
    val: tuple[Tensor, Tensor],
    device: torch.device | str = "cpu",
    progress: bool = False,
    on_estimate: Callable[[float], None] | None = None,
    scorer: Scorer | None = None,
) -> dict[str, Any]:
    """Run the study; ``proxies_for_seed(seed)`` gives every data proxy's data for that seed (distilling
    as needed). ``scorer`` scores the architectures (default: in this process; an
    :class:`~ddapps.nas.study_engine.NNIScorer` runs them as NNI trials with the same scores).
    ``on_estimate(seconds)`` gets the time the rest will take, from the timed first architecture and
    the first seed's distillation. Returns ``{"archs", "per_seed", "rows", "comparisons", "config"}``."""
    archs = sample_archs(truth, config.n_archs, config.sampling, config.truth_key, make_generator(config.sample_seed))
    gt = [float(truth[a][config.truth_key]) for a in archs]
    budget = StepBudget(config.proxy_steps, config.batch_size)
    val = (resize(val[0], config.resolution), val[1])
    shape = (benchmark.channels, *val[0].shape[2:])
    if scorer is None:
        scorer = InProcessScorer(lambda a: _build(a, benchmark, config), budget, ceiling=config.ceiling,
                                 device=device, progress=progress)  # fmt: skip
    scores: dict[int, dict[str, list[float]]] = {}
    ceilings: dict[int, dict[str, list[float]]] = {}
    seconds: dict[int, dict[str, float]] = {}
    setup: dict[int, dict[str, float]] = {}
    for s_index, seed in enumerate(config.seeds):
        data = {name: resized(d, config.resolution) for name, d in proxies_for_seed(seed).items()}
        setup[seed] = {name: d.setup_seconds for name, d in data.items()}
        scores[seed] = {name: [] for name in [*data, *ZERO_COST]}
        ceilings[seed] = {name: [] for name in data}
        seconds[seed] = {name: 0.0 for name in data}

        def estimate(per_arch: float, first: bool = s_index == 0, distill: float = sum(setup[seed].values())) -> None:
            if first and on_estimate is not None:  # from the timed first architecture
                on_estimate(per_arch * (len(archs) * len(config.seeds) - 1) + distill * (len(config.seeds) - 1))

        for arch, score in zip(archs, scorer(seed, archs, data, val, estimate)):
            init = initialize(_build(arch, benchmark, config), seed, format_arch(arch), 0)
            for name in ZERO_COST:
                scores[seed][name].append(zero_cost_score(name, init, shape))
            for name in data:
                scores[seed][name].append(score.accuracy[name])
                seconds[seed][name] += score.seconds[name]
                if config.ceiling:
                    ceilings[seed][name].append(score.ceiling[name])
    per_seed = [
        _seed_rows(seed, scores[seed], ceilings[seed], seconds[seed], setup[seed], gt, config) for seed in config.seeds
    ]
    rows = _summary_rows([r for rows in per_seed for r in rows], config)
    comparisons = _comparisons(scores, gt, distilled, config)
    arch_rows = [
        {"arch": format_arch(a), "truth": g, **{f"{n}_seed{s}": scores[s][n][i] for s in config.seeds for n in scores[s]}}
        for i, (a, g) in enumerate(zip(archs, gt))
    ]  # fmt: skip
    return {
        "archs": arch_rows,
        "per_seed": [r for rows in per_seed for r in rows],
        "rows": rows,
        "comparisons": comparisons,
        "config": asdict(config),
    }


def _build(arch: tuple[str, ...], benchmark: Benchmark, config: TruthStudyConfig) -> torch.nn.Module:
    """The proxy-size network of ``arch`` (weights are set by the scorer, :func:`~ddapps.nas.scoring.initialize`)."""
    return NB201Net(arch, benchmark.channels, benchmark.num_classes, config.channels, config.cells_per_stage)


def _seed_rows(
    seed: int,
    scores: Mapping[str, list[float]],
    ceilings: Mapping[str, list[float]],
    seconds: Mapping[str, float],
    setup: Mapping[str, float],
    gt: list[float],
    config: TruthStudyConfig,
) -> list[dict[str, Any]]:
    rows = []
    for name, got in scores.items():
        gen = make_generator(derive_seed(seed, "nb201", "bootstrap", name))
        rho_ci = stats.bootstrap_interval(stats.spearman, got, gt, n_boot=config.n_boot, generator=gen)
        row: dict[str, Any] = {
            "seed": seed,
            "proxy": name,
            "kind": "zero-cost" if name in ZERO_COST else "data",
            "spearman": stats.spearman(got, gt),
            "spearman_ci_low": rho_ci.low,
            "spearman_ci_high": rho_ci.high,
            "kendall": stats.kendall(got, gt),
            "regret": stats.regret(got, gt),
            "ceiling_spearman": stats.spearman(got, ceilings[name]) if ceilings.get(name) else None,
            "proxy_seconds": seconds.get(name, 0.0),
            "setup_seconds": setup.get(name, 0.0),
        }
        for f in config.top_fractions:
            tag = f"top{round(100 * f)}"
            row[f"{tag}_overlap"] = stats.top_fraction_overlap(got, gt, f)
            row[f"{tag}_spearman"] = stats.top_fraction_spearman(got, gt, f)
        rows.append(row)
    return rows


SUMMARY_KEYS = ("spearman", "kendall", "regret", "ceiling_spearman")


def _summary_rows(per_seed: list[dict[str, Any]], config: TruthStudyConfig) -> list[dict[str, Any]]:
    """Mean, sample std and 95% t-interval over seeds of each proxy's scores."""
    keys = [*SUMMARY_KEYS, *(f"top{round(100 * f)}_{m}" for f in config.top_fractions for m in ("overlap", "spearman"))]
    rows = []
    for name in dict.fromkeys(r["proxy"] for r in per_seed):
        mine = [r for r in per_seed if r["proxy"] == name]
        row: dict[str, Any] = {"proxy": name, "kind": mine[0]["kind"], "seeds": len(mine)}
        for key in keys:
            values = [r[key] for r in mine if r[key] is not None]
            row[f"{key}_mean"] = statistics.fmean(values) if values else None
            row[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else None
            if key == "spearman" and values:
                row["spearman_t_low"], row["spearman_t_high"] = t_interval(values)
        row["proxy_seconds"] = sum(r["proxy_seconds"] for r in mine)
        row["setup_seconds"] = sum(r["setup_seconds"] for r in mine)
        rows.append(row)
    return rows


def _comparisons(
    scores: Mapping[int, Mapping[str, list[float]]], gt: list[float], distilled: Sequence[str], config: TruthStudyConfig
) -> list[dict[str, Any]]:
    """Each distilled proxy minus each baseline (Spearman vs truth), paired per seed and over seeds."""
    out = []
    for mine in distilled:
        for other in [*BASELINES, *ZERO_COST]:
            diffs, per_seed = [], []
            for seed, by_proxy in scores.items():
                if mine not in by_proxy or other not in by_proxy:
                    continue
                a, b = by_proxy[mine], by_proxy[other]
                sa, sb = stats.spearman(a, gt), stats.spearman(b, gt)
                if sa is None or sb is None:
                    continue
                gen = make_generator(derive_seed(seed, "nb201", "paired", mine, other))
                ci = stats.paired_bootstrap_difference(stats.spearman, a, b, gt, n_boot=config.n_boot, generator=gen)
                diffs.append(sa - sb)
                per_seed.append({"seed": seed, "difference": sa - sb, "boot_low": ci.low, "boot_high": ci.high})
            if not diffs:
                continue
            row: dict[str, Any] = {"proxy": mine, "baseline": other, "difference_mean": statistics.fmean(diffs),
                                   "per_seed": per_seed}  # fmt: skip
            if len(diffs) > 1:
                _, row["seeds_t_low"], row["seeds_t_high"] = paired_t_interval(diffs, [0.0] * len(diffs))
            out.append(row)
    return out
