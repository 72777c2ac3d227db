"""The core commands of ``ddapps``: ``list``, ``distill``, ``evaluate``, ``demo`` and ``bench``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ddapps.cli.common import (
    Parser,
    add_data_args,
    add_run_args,
    int_list,
    load_benchmark,
    method_overrides,
    parse_key_values,
    refuse_private_statistics,
    setup_run,
    str_list,
)
from ddapps.errors import ConfigError


def add_core_parsers(sub: Any) -> None:
    """Add ``list``, ``distill``, ``evaluate``, ``demo`` and ``bench`` to ``ddapps``' subparsers."""

    sub.add_parser("list", help="registered datasets, methods and networks")

    d = sub.add_parser("distill", help="distil a dataset into a synthetic set")
    add_data_args(d)
    d.add_argument("--method", required=True)
    d.add_argument("--ipc", type=int, required=True, help="images per class")
    d.add_argument("--out", required=True, type=Path)
    d.add_argument("--config", type=Path, help="JSON file of method config overrides")
    d.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="one config override (JSON value)")
    d.add_argument("--iterations", type=int, help="shortcut for --set iterations=N")
    d.add_argument(
        "--budget", default=None,
        help="start from a budget's settings for this method and IPC (e.g. small: the CPU budget); default: the paper's",
    )  # fmt: skip
    d.add_argument("--checkpoint-every", type=int, default=50)
    d.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.safetensors")
    d.add_argument("--n-eval", type=int, default=3, help="networks trained to evaluate the set (0: skip)")
    d.add_argument("--eval-epochs", type=int, default=None, help="default: 1000 with DSA, 300 without")
    add_run_args(d)

    e = sub.add_parser("evaluate", help="evaluate a saved synthetic set with the standard protocol")
    e.add_argument("set", type=Path, help="a .safetensors synthetic set (or a folder holding synset.safetensors)")
    add_data_args(e)
    e.add_argument("--nets", type=str_list, default=["convnet"], help="comma-separated architectures")
    e.add_argument("--n-eval", type=int, default=5)
    e.add_argument("--epochs", type=int, default=None)
    e.add_argument("--no-dsa", action="store_true", help="train without DSA augmentation")
    e.add_argument("--out", type=Path, default=None)
    add_run_args(e)

    demo = sub.add_parser("demo", help="distil digits with dm vs random at IPC 1 and 10")
    demo.add_argument("--out", type=Path, default=Path("runs/demo"))
    add_run_args(demo)

    bench = sub.add_parser("bench", help="benchmarks")
    bsub = bench.add_subparsers(dest="bench", required=True, parser_class=Parser)
    core = bsub.add_parser("core", help="methods x IPC accuracy/time/memory table")
    add_data_args(core, default="mnist")
    core.add_argument("--methods", type=str_list, default=["random", "herding", "dm"], help="comma list or 'all'")
    core.add_argument("--ipc", type=int_list, default=[1, 10])
    core.add_argument("--budget", default="small", help="small | paper")
    core.add_argument("--n-eval", type=int, default=None)
    core.add_argument("--out", type=Path, default=Path("runs/bench-core"))
    core.add_argument(
        "--resume",
        action="store_true",
        help="reuse the (method, ipc) pairs OUT/pairs/ already holds for the same settings",
    )
    core.add_argument(
        "--card", action="store_true", help="also write one evaluation card per IPC over the sets (OUT/card_ipc<k>/)"
    )
    core.add_argument("--card-teacher", type=Path, default=None, help="the cards' teacher (default: see docs)")
    core.add_argument("--card-baselines", type=str_list, default=None, help="the cards' baselines (default: all five)")
    add_run_args(core)
    speed = bsub.add_parser("speed", help="seconds per iteration, GFLOP/s vs measured matmul GFLOP/s, peak memory")
    add_data_args(speed, default="mnist")
    speed.add_argument("--methods", type=str_list, default=["dm", "dc", "dsa", "mtt"])
    speed.add_argument("--ipc", type=int_list, default=[10])
    speed.add_argument("--iterations", type=int, default=10, help="timed iterations per run")
    speed.add_argument("--warmup", type=int, default=2, help="untimed iterations (>= 1) before the FLOP-counted one")
    speed.add_argument("--repeats", type=int, default=3, help="runs per (method, ipc)")
    speed.add_argument("--matmul-size", type=int, default=2048, help="n of the n x n x n reference matmul")
    speed.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="[METHOD.]KEY=VALUE",
        help="config override (JSON value) for one method, or every method having KEY",
    )
    speed.add_argument("--out", type=Path, default=Path("runs/bench-speed"))
    add_run_args(speed)
    ev = bsub.add_parser("eval", help="the evaluation protocol: networks one at a time vs batched, same seeds")
    ev.add_argument("set", type=Path, nargs="?", default=None, help="a synthetic set (default: random real, --ipc)")
    add_data_args(ev, default="digits")
    ev.add_argument("--ipc", type=int, default=10, help="images per class of the default random real set")
    ev.add_argument("--n-eval", type=int, default=5, help="networks per evaluation")
    ev.add_argument("--epochs", type=int, default=300)
    ev.add_argument("--repeats", type=int, default=2, help="evaluations per mode (the order alternates)")
    ev.add_argument("--no-dsa", action="store_true", help="train without DSA augmentation")
    ev.add_argument("--net", default="convnet")
    ev.add_argument("--net-options", type=json.loads, default=None, help="JSON, e.g. '{\"width\": 32}'")
    ev.add_argument("--out", type=Path, default=Path("runs/bench-eval"))
    add_run_args(ev)
    _attach_handlers(sub)


# Subcommands of the application modules and of larger core features. Each module exposes
# ``add_parser(subparsers) -> parser`` and ``run(args) -> int`` (nested sub-subcommands dispatch
# inside ``run``), raises DDAppsError subclasses for bad input, and must not import its framework (avalanche, nni, flwr) at module level, so `ddapps --help` and
# the core work without the extras.


def cmd_list(args: argparse.Namespace) -> int:
    from ddapps.data import DATASETS
    from ddapps.methods import METHODS
    from ddapps.nets import list_nets

    print("datasets:", ", ".join(DATASETS.names()))
    print("methods: ", ", ".join(METHODS.names()))
    print("networks:", ", ".join(list_nets()))
    return 0


def cmd_distill(args: argparse.Namespace) -> int:
    from ddapps.evaluation import EvalConfig
    from ddapps.methods import CheckpointSpec, create_distiller
    from ddapps.report import command_line, format_table, save_grid, write_run
    from ddapps.runner import distill_and_evaluate

    device = setup_run(args)
    overrides = method_overrides(args)
    if args.budget is not None:  # the budget's settings, then --config / --set / --iterations on top
        from ddapps.budgets import get_budget, with_expert_cache

        base = get_budget(args.budget).overrides(args.method, args.ipc)
        overrides = with_expert_cache(base, args.out / "experts", args.dataset) | overrides
    distiller = create_distiller(args.method, overrides)  # validate method and options before loading data
    public_stats = refuse_private_statistics(distiller, args)
    if args.checkpoint_every < 1:
        raise ConfigError("--checkpoint-every must be >= 1")
    benchmark = load_benchmark(args, public_stats=public_stats)
    checkpoint = CheckpointSpec(str(args.out / "checkpoint.safetensors"), args.checkpoint_every, args.resume)
    eval_config = EvalConfig(n_eval=args.n_eval, epochs=args.eval_epochs) if args.n_eval > 0 else None
    result = distill_and_evaluate(
        benchmark,
        args.method,
        args.ipc,
        overrides=overrides,
        eval_config=eval_config,
        seed=args.seed,
        device=device,
        checkpoint=checkpoint,
        progress=not args.quiet,
    )
    out: Path = args.out
    result.synset.save(out / "synset.safetensors")
    save_grid(result.synset, out / "grid.png", class_names=benchmark.class_names)
    row = result.row(benchmark.name)
    config = {
        "method": args.method,
        "ipc": args.ipc,
        "seed": args.seed,
        "budget": args.budget,
        "overrides": overrides,
        "method_config": result.synset.meta["config"],
        "dataset": benchmark.describe(),
        "precision": args.precision,
    }
    columns = (
        ["method", "ipc", "acc_mean", "n_eval", "distill_seconds", "peak_mem_mb"]
        if eval_config
        else ["method", "ipc", "distill_seconds", "peak_mem_mb"]
    )
    table = format_table([row], columns)
    report = f"# ddapps distill\n\nCommand: `{command_line()}`\n\n{table}\n\n![synthetic images](grid.png)\n"
    write_run(out, "distill", config, device, [row], report)
    print(table)
    print(f"wrote {out}/synset.safetensors, results.json, report.md, config.json, grid.png")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ddapps.evaluation import EvalConfig, evaluate_cross_architecture
    from ddapps.report import command_line, format_table, write_run
    from ddapps.synthetic import SyntheticSet

    device = setup_run(args)
    synset = SyntheticSet.load(args.set)
    benchmark = load_benchmark(args, public_stats=synset.meta.get("dataset", {}).get("stats_source") == "public")
    eval_config = EvalConfig(n_eval=args.n_eval, epochs=args.epochs, dsa=not args.no_dsa)
    results = evaluate_cross_architecture(synset, benchmark, args.nets, eval_config, seed=args.seed, device=device)
    rows = [
        {"dataset": benchmark.name, "method": synset.meta.get("method"), "ipc": synset.ipc} | r.as_dict()
        for r in results
    ]
    table = format_table(rows, ["method", "ipc", "net", "acc_mean", "n_eval"])
    print(table)
    if args.out is not None:
        config = {"set": str(args.set), "nets": args.nets, "n_eval": args.n_eval, "precision": args.precision}
        write_run(
            args.out, "evaluate", config, device, rows, f"# ddapps evaluate\n\nCommand: `{command_line()}`\n\n{table}\n"
        )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from ddapps.bench.core import bench_core
    from ddapps.budgets import get_budget
    from ddapps.data import load_dataset

    device = setup_run(args)
    benchmark = load_dataset("digits")
    rows = bench_core(
        benchmark,
        ["random", "dm"],
        [1, 10],
        get_budget("demo"),
        args.out,
        seed=args.seed,
        device=device,
        command="demo",
        progress=not args.quiet,
    )
    by = {(r["method"], r["ipc"]): r["acc_mean"] for r in rows}
    for ipc in (1, 10):
        print(
            f"IPC {ipc}: dm {by[('dm', ipc)]:.1f}% vs random {by[('random', ipc)]:.1f}% "
            f"({by[('dm', ipc)] - by[('random', ipc)]:+.1f} points)"
        )
    print(f"wrote {args.out}/report.md, results.json, accuracy_vs_ipc.png, grids/")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from ddapps.bench.core import COLUMNS, bench_core
    from ddapps.budgets import get_budget, with_eval
    from ddapps.methods import METHODS
    from ddapps.methods.base import benchmark_methods
    from ddapps.report import format_table

    if args.bench == "speed":
        return cmd_bench_speed(args)
    if args.bench == "eval":
        return cmd_bench_eval(args)
    card = None
    if args.card:
        from ddapps.bench.card import settings_from_budget

        baselines = tuple(args.card_baselines) if args.card_baselines else None
        card = settings_from_budget(args.budget, baselines=baselines, seed=args.seed)
    device = setup_run(args)
    budget = with_eval(get_budget(args.budget), n_eval=args.n_eval)
    methods = benchmark_methods() if args.methods == ["all"] else args.methods
    private = [name for name in methods if METHODS.get(name).differentially_private]
    benchmark = load_benchmark(args, public_stats=bool(private))  # one normalisation for all, public if any is DP
    rows = bench_core(
        benchmark,
        methods,
        args.ipc,
        budget,
        args.out,
        seed=args.seed,
        device=device,
        progress=not args.quiet,
        resume=args.resume,
        card=card,
        card_teacher=args.card_teacher,
    )
    print(format_table(rows, COLUMNS))
    if card is not None:
        print(f"wrote the evaluation cards to {args.out}/card_ipc<k>/ (card.md, card.json, card.png)")
    return 0


def cmd_bench_speed(args: argparse.Namespace) -> int:
    from ddapps.bench.speed import COLUMNS, SpeedSettings, bench_speed, display_row, parse_method_overrides
    from ddapps.report import format_table

    device = setup_run(args)
    settings = SpeedSettings(
        iterations=args.iterations, warmup=args.warmup, repeats=args.repeats, matmul_size=args.matmul_size
    )
    overrides = parse_method_overrides(parse_key_values(args.set, "--set"), args.methods)
    benchmark = load_benchmark(args)
    rows = bench_speed(
        benchmark,
        args.methods,
        args.ipc,
        settings,
        args.out,
        overrides=overrides,
        seed=args.seed,
        device=device,
        precision=args.precision,
        progress=True,
    )  # one log line per run, not a bar
    print(format_table([display_row(r) for r in rows], COLUMNS))
    return 0


def cmd_bench_eval(args: argparse.Namespace) -> int:
    from ddapps.bench.eval_speed import EvalBenchSettings, bench_eval
    from ddapps.methods import create_distiller
    from ddapps.methods.base import check_ipc
    from ddapps.synthetic import SyntheticSet
    from ddapps.utils.seeding import make_generator

    device = setup_run(args)
    settings = EvalBenchSettings(n_eval=args.n_eval, epochs=args.epochs, repeats=args.repeats, dsa=not args.no_dsa,
                                 net=args.net, net_options=args.net_options)  # fmt: skip
    benchmark = load_benchmark(args)
    if args.set is None:
        check_ipc(benchmark, args.ipc)
        synset = create_distiller("random").distill(benchmark, args.ipc, generator=make_generator(args.seed))
        name = f"random real, IPC {args.ipc}, seed {args.seed}"
    else:
        synset, name = SyntheticSet.load(args.set), str(args.set)
    seconds = 2 * args.repeats * _one_network_estimate(synset, benchmark, settings, device)
    print(f"estimated time: about {seconds / 60:.1f} min ({2 * args.repeats} evaluations)", flush=True)
    bench_eval(synset, benchmark, settings, args.out, seed=args.seed, device=device, set_name=name)
    return 0


def _one_network_estimate(synset: Any, benchmark: Any, settings: Any, device: Any) -> float:
    """Seconds of one evaluation: one network trained for 1 and for 3 epochs (sequential), the
    difference is two epochs' cost, the 1-epoch run's remainder the cost of testing and set-up."""
    from dataclasses import replace

    from ddapps.evaluation import evaluate_synset

    one, three = (
        evaluate_synset(synset, benchmark, replace(settings.config(False), n_eval=1, epochs=e), device=device).seconds
        for e in (1, 3)
    )
    per_epoch = max(0.0, three - one) / 2
    return settings.n_eval * (per_epoch * settings.epochs + max(0.0, one - per_epoch))


COMMANDS = {"list": cmd_list, "distill": cmd_distill, "evaluate": cmd_evaluate, "demo": cmd_demo, "bench": cmd_bench}


def _attach_handlers(sub: Any) -> None:
    for name, handler in COMMANDS.items():
        sub.choices[name].set_defaults(run=handler)
