"""The work behind ``ddapps nas rank`` and ``ddapps nas search`` (outputs written atomically to ``--out``)."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ddapps.errors import ConfigError

SPLIT_SEED = 0
"""Seed of the validation split (and of the validation images scored): the same for every pipeline seed,
so ``nas search`` and ``nas rank`` runs with any seeds score architectures on the same images."""


def validation_images(benchmark: Any, size: int) -> tuple[Any, Any]:
    """The ``size`` validation images (carved from train) every NAS command scores on."""
    from ddapps.nas.proxy_data import validation_subset
    from ddapps.utils.seeding import derive_seed, make_generator

    return validation_subset(benchmark, size, make_generator(derive_seed(SPLIT_SEED, "nas", "val")))


def load_nas_benchmark(args: argparse.Namespace) -> Any:
    """The dataset with ``--val-fraction`` of train carved out as validation (split seed :data:`SPLIT_SEED`)."""
    from ddapps.data import load_dataset

    if not 0 < args.val_fraction < 1:
        raise ConfigError(f"--val-fraction must be in (0, 1), got {args.val_fraction}")
    return load_dataset(
        args.dataset, args.data_dir, download=args.download, zca=args.zca, val_fraction=args.val_fraction,
        seed=SPLIT_SEED,
    )  # fmt: skip


def engine_of(args: argparse.Namespace, allowed: tuple[str, ...]) -> str:
    """``--engine`` (default ``sequential``), checked against the engines this command runs on."""
    engine = args.engine or "sequential"
    if engine not in allowed:
        raise ConfigError(f"--engine {engine!r} is not available here; choose one of: {', '.join(allowed)}")
    return engine


def proxy_overrides(args: argparse.Namespace, method: str) -> dict[str, Any]:
    from ddapps.budgets import get_budget

    overrides = get_budget(args.distill_budget).overrides(method)
    from ddapps.cli.common import parse_key_values

    overrides.update(parse_key_values(args.distill_set, "--distill-set"))
    return overrides


def _prepare(args: argparse.Namespace) -> dict[str, Any]:
    """Validate everything cheap first, then load data and obtain (and save) the proxy set."""
    from ddapps.cli.common import setup_run
    from ddapps.methods import create_distiller
    from ddapps.nas.proxy_data import ProxySpec, obtain_synset
    from ddapps.nas.space import resolve_space

    device = setup_run(args)
    space = None if args.space == "nas-bench-201" else resolve_space(args.space, width_scale=args.width_scale)
    proxy = ProxySpec.parse(args.proxy)
    overrides: dict[str, Any] = {}
    if proxy.kind == "distilled":
        overrides = proxy_overrides(args, proxy.value)
        create_distiller(proxy.value, overrides)  # unknown method or option -> ConfigError before loading data
    benchmark = load_nas_benchmark(args)
    synset, distill_seconds = obtain_synset(
        proxy, benchmark, args.ipc, overrides=overrides, seed=args.seed, device=device, progress=not args.quiet
    )
    out: Path = args.out
    synset.save(out / "synset.safetensors")
    return {
        "device": device, "space": space, "proxy": proxy, "overrides": overrides, "benchmark": benchmark,
        "synset": synset, "distill_seconds": distill_seconds,
    }  # fmt: skip


def _fmt(value: Any, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def cmd_rank(args: argparse.Namespace) -> int:
    if args.space == "nas-bench-201":
        from ddapps.nas.truth_command import cmd_rank_truth

        return cmd_rank_truth(args)
    from ddapps.nas.plot import save_rank_scatter
    from ddapps.nas.rank import RankConfig, rank_study
    from ddapps.report import command_line, format_table, write_run

    if args.engine not in (None, "inprocess"):
        raise ConfigError("only --space nas-bench-201 studies run on NNI's engines; drop --engine")
    config = RankConfig(
        n_archs=args.sample or 24, reference_steps=args.reference_steps, proxy_steps=args.proxy_steps,
        batch_size=args.batch_size, val_size=args.val_size, n_boot=args.n_boot, seed=args.seed,
        ceiling=not args.no_ceiling,
    )  # fmt: skip
    from ddapps.nas.space import resolve_space

    size = resolve_space(args.space, width_scale=args.width_scale).size
    if config.n_archs > size:  # before any data loads or distillation runs
        raise ConfigError(f"--sample {config.n_archs} exceeds the {size} architectures of the space")
    ctx = _prepare(args)
    benchmark, space = ctx["benchmark"], ctx["space"]
    result = rank_study(
        benchmark, space, ctx["synset"], config, proxy_name=str(ctx["proxy"]), distill_seconds=ctx["distill_seconds"],
        device=ctx["device"], progress=not args.quiet,
    )  # fmt: skip
    out: Path = args.out
    title = f"{benchmark.name}: {config.n_archs} architectures of {space.name} (width x{space.width_scale:g})"
    save_rank_scatter(result.archs, result.rows, out / "rank_scatter.png", title=title)
    table_rows = [
        r | {
            "spearman [95% CI]": f"{_fmt(r['spearman'])} [{_fmt(r['spearman_ci_low'])}, {_fmt(r['spearman_ci_high'])}]",
            "kendall [95% CI]": f"{_fmt(r['kendall'])} [{_fmt(r['kendall_ci_low'])}, {_fmt(r['kendall_ci_high'])}]",
            "speed-up": f"{_fmt(r['speedup'], 1)}x",
            "ceiling": _fmt(r.get("ceiling_spearman")),
        }
        for r in result.rows
    ]  # fmt: skip
    table = format_table(
        table_rows,
        [
            "proxy",
            "ipc",
            "n_archs",
            "spearman [95% CI]",
            "kendall [95% CI]",
            "top5_overlap",
            "ceiling",
            "proxy_seconds",
            "reference_seconds",
            "speed-up",
            "proxy_acc_mean",
        ],
    )
    arch_table = format_table(
        result.archs,
        [
            "arch",
            "params",
            "acc_reference",
            *[f"acc_{p}" for p in result.proxies if p != "reference-seed2"],
            "seconds_reference",
            f"seconds_{result.proxies[0]}",
        ],
    )
    run_config = {
        "dataset": benchmark.describe(), "space": space.describe(), "proxy": str(ctx["proxy"]), "ipc": args.ipc,
        "distill_overrides": ctx["overrides"], "distill_seconds": ctx["distill_seconds"], "val_fraction": args.val_fraction,
        "rank": result.config,
    }  # fmt: skip
    report = (
        f"# ddapps nas rank\n\nCommand: `{command_line()}`\n\n"
        f"Budget: reference = {config.reference_steps} SGD steps x batch {config.batch_size} on the full training split "
        f"({len(benchmark.train)} images, validation carved out); proxies = {config.proxy_steps} steps x batch "
        f"{config.batch_size}; accuracy on {config.val_size} validation images carved from train (never test); "
        f"space {space.name} with widths x{space.width_scale:g}; distillation {ctx['proxy']} took "
        f"{ctx['distill_seconds']:.1f} s (not included in proxy_seconds; see speedup_with_setup). `ceiling`: Spearman "
        f"between two training runs of the same proxy (other init and data order); `reference-seed2`: the "
        f"reference's second run against its first (how far any proxy can be read).\n\n"
        f"{table}\n\n![proxy vs reference](rank_scatter.png)\n\n## Architectures\n\n{arch_table}\n"
    )
    write_run(out, "nas rank", run_config, ctx["device"], result.rows, report, architectures=result.archs)
    print(table)
    print(f"wrote {out}/results.json, report.md, rank_scatter.png, synset.safetensors")
    return 0


def search_config_of(args: argparse.Namespace) -> Any:
    """The :class:`~ddapps.nas.search.SearchConfig` of ``ddapps nas search``'s options."""
    from ddapps.nas.search import ENGINES, SearchConfig

    return SearchConfig(
        strategy=args.strategy, max_trials=args.trials, engine=engine_of(args, ENGINES), population_size=args.population,
        sample_size=args.tournament, mutation_prob=args.mutation_prob, top_k=args.top_k, seed=args.seed,
        trial_concurrency=args.concurrency, port=args.port, machines=args.machines,
    )  # fmt: skip


def cmd_search(args: argparse.Namespace) -> int:
    if args.space == "nas-bench-201":
        from ddapps.nas.nb201_search import cmd_search_truth

        return cmd_search_truth(args)
    from ddapps.evaluation.training import test_accuracy
    from ddapps.nas.evaluator import make_evaluator
    from ddapps.nas.nni_space import make_model_space, sample_to_arch
    from ddapps.nas.proxy_data import save_tensors
    from ddapps.nas.search import run_search
    from ddapps.nas.space import arch_key
    from ddapps.nas.training import StepBudget, train_steps
    from ddapps.report import command_line, format_table, write_run
    from ddapps.utils.atomic import write_json
    from ddapps.utils.seeding import derive_seed, make_generator

    search_config = search_config_of(args)
    retrain = StepBudget(args.retrain_steps, args.batch_size)
    ctx = _prepare(args)
    benchmark, space, device = ctx["benchmark"], ctx["space"], ctx["device"]
    out: Path = args.out
    val_x, val_y = validation_images(benchmark, args.val_size)
    val_path = save_tensors(out / "val.safetensors", val_x, val_y)
    model_space = make_model_space(space, benchmark.channels, benchmark.num_classes, benchmark.image_size)
    evaluator = make_evaluator(
        {str(ctx["proxy"]): str((out / "synset.safetensors").resolve())}, str(val_path.resolve()),
        steps=args.proxy_steps, batch_size=args.batch_size, seed=args.seed, device=str(device),
    )  # fmt: skip
    result = run_search(model_space, evaluator, search_config, out / "nni")
    if not result.top:
        raise ConfigError(f"no trial succeeded ({result.failed} failed); see {out / 'nni'} for NNI's logs")
    top = [{"rank": i + 1, "arch": arch_key(a), **a, "proxy_val_acc": t["metric"]}
           for i, t in enumerate(result.top) for a in [sample_to_arch(space, t["sample"])]]  # fmt: skip
    write_json(out / "top_architectures.json", top)
    best = sample_to_arch(space, result.top[0]["sample"])
    gen = make_generator(derive_seed(args.seed, "nas", "retrain", arch_key(best)))
    net = space.build(best, benchmark.channels, benchmark.num_classes, benchmark.image_size, generator=gen)
    seconds = train_steps(net, benchmark.train.images, benchmark.train.labels, retrain, generator=gen, device=device)
    best_row = {
        "dataset": benchmark.name, "arch": arch_key(best), **best, "proxy": str(ctx["proxy"]), "ipc": args.ipc,
        "proxy_val_acc": result.top[0]["metric"], "retrain_steps": retrain.steps,
        "val_acc": test_accuracy(net, val_x, val_y, device=device),
        "test_acc": test_accuracy(net, benchmark.test.images, benchmark.test.labels, device=device),
        "retrain_seconds": seconds, "search_seconds": result.seconds, "trials": len(result.trials), "failed": result.failed,
    }  # fmt: skip
    trials = [
        {"trial": t["trial"], "status": t["status"], "proxy_val_acc": t["metric"],
         **({"arch": arch_key(sample_to_arch(space, t["sample"]))} if t["sample"] else {})}
        for t in result.trials
    ]  # fmt: skip
    run_config = {
        "dataset": benchmark.describe(), "space": space.describe(), "proxy": str(ctx["proxy"]), "ipc": args.ipc,
        "distill_overrides": ctx["overrides"], "distill_seconds": ctx["distill_seconds"], "search": asdict(search_config),
        "proxy_steps": args.proxy_steps, "batch_size": args.batch_size, "val_size": args.val_size,
        "retrain_steps": retrain.steps, "nni_experiment_id": result.experiment_id,
    }  # fmt: skip
    best_table = format_table(
        [best_row],
        [
            "arch",
            "proxy_val_acc",
            "retrain_steps",
            "val_acc",
            "test_acc",
            "search_seconds",
            "retrain_seconds",
            "trials",
            "failed",
        ],
    )
    report = (
        f"# ddapps nas search\n\nCommand: `{command_line()}`\n\n"
        f"Strategy {search_config.strategy} on NNI's {search_config.engine} engine, {len(result.trials)} trials "
        f"({result.failed} failed) over {space.name} (widths x{space.width_scale:g}); each trial trains "
        f"{args.proxy_steps} SGD steps x batch {args.batch_size} on {ctx['proxy']} (IPC {args.ipc}) and is scored on "
        f"{len(val_y)} validation images carved from train. The best architecture is retrained for {retrain.steps} "
        f"steps on the full training split and tested once.\n\n## Best, retrained on full data\n\n{best_table}\n\n"
        f"## Top {len(top)} (exported)\n\n{format_table(top, ['rank', 'arch', 'proxy_val_acc'])}\n\n"
        f"## Trials\n\n{format_table(trials, ['trial', 'arch', 'status', 'proxy_val_acc'])}\n"
    )
    write_run(out, "nas search", run_config, device, [best_row], report, top=top, trials=trials)
    print(best_table)
    print(f"wrote {out}/results.json, report.md, top_architectures.json, synset.safetensors")
    return 0


COMMANDS = {"rank": cmd_rank, "search": cmd_search}
