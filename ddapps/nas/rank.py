"""The rank study: does a proxy order architectures the way full training does?

Following the NAS experiment of Zhao et al. (ICLR 2021, Sec. 4.3), the same sampled architectures
are trained on

(a) ``reference``: the full real training split (validation carved out) for ``reference_steps``
    SGD steps -- the reference ranking, under an explicit fixed budget;
(b) the distilled proxy: the synthetic set for ``proxy_steps`` steps;
(c) ``random-subset``: a random real subset of the same size (``ipc`` per class), ``proxy_steps``;
(d) ``early-stop``: the full training split for ``proxy_steps`` steps of the same batch size --
    early-stopped full training with the proxy's compute (equal steps x batch, so equal wall time up
    to the measurement noise; the measured seconds are reported).

Every run of one architecture starts from the same initial weights (a generator seeded by the
study seed and the architecture) and is scored by top-1 accuracy on the same validation images,
carved from the real training split -- never the test split. Each proxy's scores are compared
with the reference by Spearman's rho and Kendall's tau (with bootstrap intervals), the overlap of
the top-5 sets, and the speed-up (reference training seconds / proxy training seconds).

Noise ceiling (``ceiling``, on by default): every source is trained a second time from another
initialisation with another data order. The ``reference-seed2`` row correlates the reference's second
run with its first (how well the reference agrees with itself: no proxy can be read above that), and
each proxy row's ``ceiling_spearman`` correlates the proxy's two runs.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from tqdm.auto import tqdm

from ddapps.data import Benchmark
from ddapps.errors import ConfigError
from ddapps.evaluation.protocol import check_compatible
from ddapps.evaluation.training import test_accuracy
from ddapps.nas import stats
from ddapps.nas.proxy_data import random_subset, validation_subset
from ddapps.nas.space import SpaceSpec, arch_key
from ddapps.nas.training import StepBudget, train_steps
from ddapps.synthetic import SyntheticSet
from ddapps.utils.seeding import derive_seed, make_generator

REFERENCE = "reference"
REFERENCE_AGAIN = "reference-seed2"
"""The row of the reference's second run against its first: the reference's own noise ceiling."""


@dataclass(frozen=True)
class RankConfig:
    """Budgets of the study (all explicit; see the module docstring)."""

    n_archs: int = 24
    reference_steps: int = 300
    proxy_steps: int = 30
    batch_size: int = 64
    val_size: int = 1000
    n_boot: int = 1000
    top_k: int = 5
    seed: int = 0
    ceiling: bool = True
    """Train every source a second time (another initialisation and data order): the Spearman between
    the two runs is each ranking's noise ceiling (for ``reference``: how well it agrees with itself)."""

    def __post_init__(self) -> None:
        StepBudget(self.reference_steps, self.batch_size)
        StepBudget(self.proxy_steps, self.batch_size)
        if self.n_archs < 2:
            raise ConfigError(f"a ranking needs at least 2 architectures, got {self.n_archs}")
        if self.val_size < 1 or self.n_boot < 1 or self.top_k < 1:
            raise ConfigError("val_size, n_boot and top_k must be >= 1")


@dataclass
class RankResult:
    """Per-architecture accuracies/seconds and one summary row per proxy."""

    archs: list[dict[str, Any]]
    rows: list[dict[str, Any]]
    proxies: list[str]
    config: dict[str, Any] = field(default_factory=dict)


def rank_study(
    benchmark: Benchmark,
    space: SpaceSpec,
    synset: SyntheticSet,
    config: RankConfig = RankConfig(),
    *,
    proxy_name: str = "distilled",
    distill_seconds: float = 0.0,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> RankResult:
    """Train ``config.n_archs`` architectures of ``space`` on the reference and the three proxies."""
    check_compatible(synset, benchmark)
    ipc = synset.ipc
    if ipc is None:
        ipc = max(1, len(synset.labels) // synset.num_classes)
    seed = config.seed
    archs = space.sample(config.n_archs, make_generator(derive_seed(seed, "nas", "sample", space.name)))
    val_x, val_y = validation_subset(benchmark, config.val_size, make_generator(derive_seed(seed, "nas", "val")))
    sub_x, sub_y = random_subset(benchmark.train, ipc, make_generator(derive_seed(seed, "nas", "subset", ipc)))
    syn_x, syn_y = (t.detach() for t in synset.training_data())
    syn_lr = float(synset.lr) if synset.lr is not None else None
    syn_loss = synset.eval_protocol.loss
    full_x, full_y = benchmark.train.images, benchmark.train.labels
    ref_budget = StepBudget(config.reference_steps, config.batch_size)
    proxy_budget = StepBudget(config.proxy_steps, config.batch_size)
    sources = {
        REFERENCE: (full_x, full_y, ref_budget, None, "cross_entropy"),
        proxy_name: (syn_x, syn_y, proxy_budget, syn_lr, syn_loss),
        "random-subset": (sub_x, sub_y, proxy_budget, None, "cross_entropy"),
        "early-stop": (full_x, full_y, proxy_budget, None, "cross_entropy"),
    }
    results = []
    for arch in tqdm(archs, desc="architectures", disable=not progress):
        key = arch_key(arch)
        initial = space.build(
            arch, benchmark.channels, benchmark.num_classes, benchmark.image_size,
            generator=make_generator(derive_seed(seed, "nas", "init", key)),
        )  # fmt: skip
        entry: dict[str, Any] = {"arch": key, **arch, "params": sum(p.numel() for p in initial.parameters())}
        again = space.build(
            arch, benchmark.channels, benchmark.num_classes, benchmark.image_size,
            generator=make_generator(derive_seed(seed, "nas", "init-again", key)),
        )  # fmt: skip
        for source, (x, y, budget, lr, loss) in sources.items():
            net = copy.deepcopy(initial)
            gen = make_generator(derive_seed(seed, "nas", "train", key, source))
            seconds = train_steps(net, x, y, budget, generator=gen, lr=lr, loss=loss, device=device)
            entry[f"acc_{source}"] = test_accuracy(net, val_x, val_y, device=device)
            entry[f"seconds_{source}"] = seconds
            if config.ceiling:
                net = copy.deepcopy(again)
                gen = make_generator(derive_seed(seed, "nas", "train-again", key, source))
                train_steps(net, x, y, budget, generator=gen, lr=lr, loss=loss, device=device)
                entry[f"acc2_{source}"] = test_accuracy(net, val_x, val_y, device=device)
        results.append(entry)
    proxies = [proxy_name, "random-subset", "early-stop"]
    if config.ceiling:
        proxies.append(REFERENCE_AGAIN)  # how well the reference agrees with itself
    rows = [
        _summary(benchmark.name, results, proxy, ipc, config, distill_seconds if proxy == proxy_name else 0.0)
        for proxy in proxies
    ]
    return RankResult(archs=results, rows=rows, proxies=proxies, config=asdict(config))


def _summary(
    dataset: str, results: list[dict[str, Any]], proxy: str, ipc: int, config: RankConfig, extra_seconds: float
) -> dict[str, Any]:
    ref = [r[f"acc_{REFERENCE}"] for r in results]
    source = REFERENCE if proxy == REFERENCE_AGAIN else proxy
    got = [r[f"acc2_{source}" if proxy == REFERENCE_AGAIN else f"acc_{source}"] for r in results]
    gen = make_generator(derive_seed(config.seed, "nas", "bootstrap", proxy))
    rho_ci = stats.bootstrap_interval(stats.spearman, got, ref, n_boot=config.n_boot, generator=gen)
    tau_ci = stats.bootstrap_interval(stats.kendall, got, ref, n_boot=config.n_boot, generator=gen)
    proxy_seconds = sum(r[f"seconds_{source}"] for r in results)
    reference_seconds = sum(r[f"seconds_{REFERENCE}"] for r in results)
    return {
        "dataset": dataset,
        "proxy": proxy,
        "ipc": ipc,
        "n_archs": len(results),
        "spearman": stats.spearman(got, ref),
        "spearman_ci_low": rho_ci.low,
        "spearman_ci_high": rho_ci.high,
        "kendall": stats.kendall(got, ref),
        "kendall_ci_low": tau_ci.low,
        "kendall_ci_high": tau_ci.high,
        "bootstrap_valid": min(rho_ci.n_valid, tau_ci.n_valid),
        f"top{config.top_k}_overlap": stats.top_k_overlap(got, ref, config.top_k),
        "proxy_seconds": proxy_seconds,
        "reference_seconds": reference_seconds,
        "speedup": reference_seconds / proxy_seconds if proxy_seconds > 0 else None,
        "setup_seconds": extra_seconds,
        "speedup_with_setup": reference_seconds / (proxy_seconds + extra_seconds)
        if proxy_seconds + extra_seconds > 0
        else None,
        "proxy_acc_mean": sum(got) / len(got),
        "reference_acc_mean": sum(ref) / len(ref),
        "ceiling_spearman": stats.spearman(got, [r[f"acc2_{source}"] for r in results])
        if config.ceiling and proxy != REFERENCE_AGAIN
        else None,
    }
