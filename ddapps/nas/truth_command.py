"""``ddapps nas rank --space nas-bench-201``: the rank study against NAS-Bench-201's ground truth.

Loads the dataset (validation carved from train), the ground-truth CSV (``--truth``), distils each
``--proxy distilled:METHOD`` (comma list) and a herding coreset once per seed, prints the estimated
time from the first architecture, runs :func:`~ddapps.nas.truth_study.truth_study` and writes
``results.json``, ``report.md`` and ``truth_scatter.png`` into ``--out``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ddapps.errors import ConfigError

DEFAULT_SAMPLE = 30


def cmd_rank_truth(args: argparse.Namespace) -> int:
    from ddapps.cli.common import setup_run
    from ddapps.methods import create_distiller
    from ddapps.nas.commands import engine_of, load_nas_benchmark, proxy_overrides, validation_images
    from ddapps.nas.nb201_truth import load_truth, truth_path
    from ddapps.nas.plot import save_truth_scatter
    from ddapps.nas.proxy_data import ProxySpec
    from ddapps.nas.truth_study import TruthStudyConfig, truth_study
    from ddapps.report import write_run

    engine = engine_of(args, ("sequential", "local", "remote", "inprocess"))
    specs = [ProxySpec.parse(p) for p in args.proxy.split(",") if p.strip()]
    if not specs:
        raise ConfigError("--proxy needs at least one distilled:METHOD or synset:PATH")
    config = TruthStudyConfig(
        n_archs=args.sample or DEFAULT_SAMPLE, sampling=args.sampling, sample_seed=args.sample_seed,
        seeds=tuple(args.seeds), proxy_steps=args.proxy_steps, batch_size=args.batch_size, val_size=args.val_size,
        channels=args.nb201_channels, cells_per_stage=args.nb201_cells, n_boot=args.n_boot, ceiling=not args.no_ceiling,
        truth_key=_truth_key(args.dataset), resolution=args.proxy_resolution,
    )  # fmt: skip
    overrides = {s.value: proxy_overrides(args, s.value) for s in specs if s.kind == "distilled"}
    herding = _herding_overrides(args)
    for method, options in [*overrides.items(), ("herding", herding)]:
        create_distiller(method, options)  # unknown method or option: one line before any data loads
    truth_file = truth_path(args.truth, args.data_dir)
    truth = load_truth(truth_file)
    device = setup_run(args)
    benchmark = load_nas_benchmark(args)
    val = validation_images(benchmark, args.val_size)
    names = [str(s) for s in specs]

    def proxies_for_seed(seed: int) -> dict[str, Any]:
        return _data_proxies(specs, benchmark, args.ipc, overrides, herding, seed, device, quiet=args.quiet)

    def estimate(seconds: float) -> None:
        print(f"estimated time for the rest of the study: {seconds / 60:.1f} min (from the first architecture)",
              file=sys.stderr, flush=True)  # fmt: skip

    out: Path = args.out
    result = truth_study(
        benchmark, truth, proxies_for_seed, names, config, val=val, device=device, progress=not args.quiet,
        on_estimate=estimate, scorer=_scorer(engine, args, benchmark, config, device, out),
    )  # fmt: skip
    title = (
        f"{benchmark.name}: {config.n_archs} NAS-Bench-201 cells ({config.sampling}), C={config.channels} "
        f"N={config.cells_per_stage}, {config.resolution or 'native'} px, {config.proxy_steps} steps, "
        f"seeds {list(config.seeds)}"
    )
    save_truth_scatter(result["archs"], result["rows"], config.seeds[0], out / "truth_scatter.png", title=title)
    report = _report(result, title, args)
    run_config = {
        "dataset": benchmark.describe(), "space": "nas-bench-201", "proxies": names, "ipc": args.ipc,
        "distill_overrides": overrides, "herding_overrides": herding, "truth": str(truth_file),
        "study": result["config"], "engine": engine, "concurrency": args.concurrency, "val_fraction": args.val_fraction, "selected_on": "nothing is selected: fixed budgets",
    }  # fmt: skip
    write_run(out, "nas rank", run_config, device, result["rows"], report, per_seed=result["per_seed"],
              comparisons=result["comparisons"], architectures=result["archs"])  # fmt: skip
    print(report)
    print(f"wrote {out}/results.json, report.md, truth_scatter.png")
    return 0


def _scorer(engine: str, args: argparse.Namespace, benchmark: Any, config: Any, device: Any, out: Path) -> Any:
    """``None`` (the study scores in process) or an :class:`~ddapps.nas.study_engine.NNIScorer` on ``engine``."""
    if engine == "inprocess":
        return None
    from ddapps.nas.nb201_space import NB201Space, ops_to_sample
    from ddapps.nas.study_engine import NNIScorer
    from ddapps.nas.training import StepBudget

    space = NB201Space(benchmark.channels, benchmark.num_classes, config.channels, config.cells_per_stage)
    return NNIScorer(
        space, StepBudget(config.proxy_steps, config.batch_size), out / "nni", ceiling=config.ceiling,
        to_sample=ops_to_sample, engine=engine, concurrency=args.concurrency, port=args.port, machines=args.machines,
        resolution=config.resolution, device=str(device),
    )  # fmt: skip


def _herding_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The herding coreset's config: the distillation budget's entry, then ``--herding-set``."""
    from ddapps.budgets import get_budget
    from ddapps.cli.common import parse_key_values

    overrides = get_budget(args.distill_budget).overrides("herding")
    overrides.update(parse_key_values(args.herding_set, "--herding-set"))
    return overrides


def _truth_key(dataset: str) -> str:
    keys = {"cifar10": "cifar10", "cifar100": "cifar100"}
    if dataset not in keys:
        raise ConfigError(f"NAS-Bench-201 has ground truth for cifar10 and cifar100 here, not {dataset!r}")
    return keys[dataset]


def _data_proxies(
    specs: list[Any], benchmark: Any, ipc: int, overrides: dict[str, dict[str, Any]], herding: dict[str, Any],
    seed: int, device: Any, *, quiet: bool,
) -> dict[str, Any]:  # fmt: skip
    """Every data proxy of one seed: the distilled sets, a random subset, herding, the full split."""
    from ddapps.nas.proxy_data import ProxySpec, obtain_synset, random_subset
    from ddapps.nas.scoring import DataProxy
    from ddapps.utils.seeding import derive_seed, make_generator

    out: dict[str, DataProxy] = {}
    for spec in [*specs, ProxySpec("distilled", "herding")]:
        synset, seconds = obtain_synset(
            spec, benchmark, ipc, overrides=overrides.get(spec.value, herding), seed=seed, device=device,
            progress=not quiet,
        )  # fmt: skip
        x, y = (t.detach() for t in synset.training_data())
        name = "herding" if spec.value == "herding" and spec.kind == "distilled" else str(spec)
        lr = float(synset.lr) if synset.lr is not None else None
        out[name] = DataProxy(x, y, lr, synset.eval_protocol.loss, seconds)
    sub_x, sub_y = random_subset(benchmark.train, ipc, make_generator(derive_seed(seed, "nas", "subset", ipc)))
    out["random-subset"] = DataProxy(sub_x, sub_y)
    out["early-stop"] = DataProxy(benchmark.train.images, benchmark.train.labels)
    return out


def _report(result: dict[str, Any], title: str, args: argparse.Namespace) -> str:
    from ddapps.nas.commands import _fmt
    from ddapps.report import command_line, format_table

    rows = []
    for r in result["rows"]:
        rows.append(
            {
                "proxy": r["proxy"],
                "spearman (mean ± std)": f"{_fmt(r['spearman_mean'])} ± {_fmt(r['spearman_std'])}",
                "95% t-interval": f"[{_fmt(r.get('spearman_t_low'))}, {_fmt(r.get('spearman_t_high'))}]",
                "kendall": _fmt(r["kendall_mean"]),
                "ceiling": _fmt(r["ceiling_spearman_mean"]),
                "top10 overlap": _fmt(r.get("top10_overlap_mean")),
                "top20 spearman": _fmt(r.get("top20_spearman_mean")),
                "regret (pts)": _fmt(r["regret_mean"]),
                "proxy s": f"{r['proxy_seconds']:.0f}",
                "setup s": f"{r['setup_seconds']:.0f}",
            }
        )
    comparisons = [
        {
            "proxy": c["proxy"],
            "minus": c["baseline"],
            "spearman difference": _fmt(c["difference_mean"]),
            "paired t over seeds": f"[{_fmt(c.get('seeds_t_low'))}, {_fmt(c.get('seeds_t_high'))}]",
            "paired bootstrap per seed": "; ".join(
                f"s{p['seed']} {_fmt(p['difference'])} [{_fmt(p['boot_low'])}, {_fmt(p['boot_high'])}]"
                for p in c["per_seed"]
            ),
        }
        for c in result["comparisons"]
    ]
    columns = list(rows[0]) if rows else []
    return (
        f"# ddapps nas rank: NAS-Bench-201 ground truth\n\n{title}\n\nCommand: `{command_line()}`\n\n"
        f"Ground truth: the benchmark's 200-epoch {result['config']['truth_key']} test accuracy. Scores: accuracy on "
        f"{args.val_size} validation images carved from the training split (data proxies), or the zero-cost score. "
        f"`ceiling`: Spearman between two training runs of the same proxy (other init and data order). "
        f"`setup s`: distillation / coreset seconds (all seeds), separate from `proxy s` (training, all seeds).\n\n"
        f"{format_table(rows, columns)}\n\n## Paired differences (Spearman vs ground truth)\n\n"
        f"{format_table(comparisons, list(comparisons[0]) if comparisons else [])}\n\n"
        f"![proxy score vs ground truth](truth_scatter.png)\n"
    )
