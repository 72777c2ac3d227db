"""``ddapps continual``: distilled vs Avalanche buffers on a split benchmark (replay and GDumb).

Imports nothing from Avalanche at module level, so ``ddapps --help`` works without the
``continual`` extra.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from ddapps.errors import ConfigError

DEFAULT_BUFFERS = "distilled:dm,reservoir,class-balanced,herding"
ONLINE_ITERATIONS = 20
"""Online streams: the distilled buffer's method iterations per mini-experience (a compute cap, not a
tuned setting: an update must cost about as much as a few learner steps)."""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``ddapps continual``."""
    from ddapps.cli.common import add_distill_set_arg, int_list, str_list

    p = subparsers.add_parser(
        "continual", help="distilled replay memory vs Avalanche buffers (class- or task-incremental)"
    )
    p.add_argument("--benchmark", default="split-mnist", help="split-mnist | split-cifar10 | split-digits")
    p.add_argument(
        "--buffer",
        type=str_list,
        default=str_list(DEFAULT_BUFFERS),
        help=f"comma list of distilled:METHOD, reservoir, class-balanced, herding (default {DEFAULT_BUFFERS})",
    )
    p.add_argument("--mem-size", type=int, default=100, help="memory size in images (floats honestly counted)")
    p.add_argument(
        "--protocol",
        type=str_list,
        default=None,
        help="replay, gdumb or both (comma list; default both, online: replay)",
    )
    p.add_argument("--seeds", type=int_list, default=[0, 1, 2])
    p.add_argument(
        "--evaluate-on",
        default="test",
        help="test | val: val scores on a stratified share of the training split (--val-fraction) and never "
        "reads the test split (for choosing settings)",
    )
    p.add_argument("--val-fraction", type=float, default=0.0, help="share of each training class held out")
    p.add_argument("--split-seed", type=int, default=0, help="seed of the validation carve")
    p.add_argument(
        "--class-order", default="natural", help="natural (0-1, 2-3, ...) | random (a seeded permutation per seed)"
    )
    p.add_argument(
        "--incremental",
        default="class",
        help="class (one head, no task labels) | task (task labels at train and test, one head per task)",
    )
    p.add_argument(
        "--online-size",
        type=int,
        default=None,
        help="online continual learning: mini-experiences of this many images, each seen once (replay protocol)",
    )
    p.add_argument(
        "--online-iterations",
        type=int,
        default=ONLINE_ITERATIONS,
        help=f"online: the distilled buffer's compute cap, method iterations per mini-experience (default "
        f"{ONLINE_ITERATIONS}; --distill-iterations wins)",
    )
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--data-dir", default=None, help="folder with the dataset files (default: $DDAPPS_DATA)")
    p.add_argument("--download", action="store_true", help="download missing files (torchvision)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument("--quiet", action="store_true", help="no per-run progress lines")
    b = p.add_argument_group("budget")
    b.add_argument("--distill-iterations", type=int, default=None, help="iterations of the distilling method")
    add_distill_set_arg(b, 'a method config override (JSON value), e.g. net_options={"width":32}')
    b.add_argument("--paper-distill", action="store_true", help="the method's paper config instead of the CPU budget")
    b.add_argument("--shrink", default="redistill", help="redistill | subselect (older classes when the budget falls)")
    b.add_argument("--labels", default="hard", help="hard | soft labels in the distilled memory")
    add_learner_args(p)
    return p


def add_learner_args(p: argparse.ArgumentParser) -> None:
    """The continual learner's options (shared with ``ddapps continual-select``)."""
    g = p.add_argument_group("learner")
    g.add_argument("--net", default="mlp", help="the continual learner (a ddapps network)")
    g.add_argument("--net-width", type=int, default=None)
    g.add_argument("--epochs", type=int, default=1, help="replay: epochs per experience")
    g.add_argument(
        "--gdumb-epochs",
        type=int,
        default=50,
        help="gdumb: epochs on the memory per experience (the measured CPU setting)",
    )
    g.add_argument("--batch-size", type=int, default=128)


def learner_config(args: argparse.Namespace) -> Any:
    """The :class:`~ddapps.continual.experiment.LearnerConfig` of the parsed learner options."""
    from ddapps.continual.experiment import LearnerConfig

    return LearnerConfig(
        net=args.net, net_options={"width": args.net_width} if args.net_width is not None else {}, epochs=args.epochs,
        gdumb_epochs=args.gdumb_epochs, batch_size=args.batch_size,
    )  # fmt: skip


def distill_overrides(method: str, args: argparse.Namespace) -> dict[str, Any]:
    """The distilled buffer's method overrides: CPU budget (or paper), then ``--distill-*``."""
    from ddapps.cli.common import parse_key_values
    from ddapps.continual.budget import buffer_overrides

    overrides = buffer_overrides(method, "paper" if args.paper_distill else "small")

    overrides.update(parse_key_values(args.distill_set, "--distill-set"))
    if args.distill_iterations is not None:
        overrides["iterations"] = args.distill_iterations
    return overrides


MIN_MEMORY_PER_CLASS = 1


def check_learner_args(args: argparse.Namespace) -> None:
    """Reject bad sizes and names before any data loads (one ``ddapps: error:`` line, exit 2)."""
    from ddapps.nets import list_nets

    if args.net not in list_nets():
        raise ConfigError(f"unknown --net {args.net!r}; choose one of: {', '.join(list_nets())}")
    for flag in ("net_width", "epochs", "gdumb_epochs", "batch_size", "mem_size"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise ConfigError(f"--{flag.replace('_', '-')} must be >= 1, got {value}")
    classes = 10  # every registered split has ten classes
    if args.mem_size < MIN_MEMORY_PER_CLASS * classes:
        raise ConfigError(
            f"--mem-size {args.mem_size} cannot hold one image of each of the {classes} classes; use --mem-size >= {classes}"
        )


def run(args: argparse.Namespace) -> int:
    """Run the comparison and write ``results.json``, ``report.md`` and the plot into ``--out``."""
    from ddapps.cli.common import setup_run
    from ddapps.continual.distilled_memory import check_modes
    from ddapps.continual.experiment import ContinualConfig, run_comparison, summarize
    from ddapps.continual.outputs import table, write_all
    from ddapps.continual.scenarios import SPLITS, check_incremental, load_split
    from ddapps.continual.storage_policies import BufferOptions, parse_buffer
    from ddapps.methods import create_distiller

    if args.benchmark not in SPLITS:
        raise ConfigError(f"unknown benchmark {args.benchmark!r}; choose one of: {', '.join(SPLITS)}")
    check_incremental(args.incremental)
    if args.protocol is None:
        args.protocol = ["replay"] if args.online_size is not None else ["gdumb", "replay"]
    if args.online_size is not None and args.distill_iterations is None:
        if args.online_iterations < 1:
            raise ConfigError(f"--online-iterations must be >= 1, got {args.online_iterations}")
        args.distill_iterations = args.online_iterations
    check_learner_args(args)
    check_modes(args.labels, args.shrink)
    if args.labels == "soft" and "replay" in args.protocol:
        raise ConfigError("soft labels work with --protocol gdumb only (replay batches mix them with integer labels)")
    methods = {m for kind, m in map(parse_buffer, args.buffer) if kind == "distilled" and m}
    if len(methods) > 1:
        raise ConfigError("compare one distilling method per run (budget options apply to it)")
    overrides = distill_overrides(next(iter(methods)), args) if methods else {}
    for method in methods:
        create_distiller(method, overrides)  # validate before loading data
    device = setup_run(args)
    learner = learner_config(args)
    dataset = SPLITS[args.benchmark].dataset
    options = BufferOptions(
        overrides=overrides, dataset_name=dataset, labels=args.labels, shrink=args.shrink,
        num_classes=None, device=str(device),
    )  # fmt: skip
    config = ContinualConfig(
        benchmark=args.benchmark, buffers=tuple(args.buffer), protocols=tuple(args.protocol),
        mem_size=args.mem_size, seeds=tuple(args.seeds), learner=learner, buffer_options=options,
        class_order=args.class_order, incremental=args.incremental, online_size=args.online_size,
    )  # fmt: skip
    scenario, real = load_split(
        args.benchmark, args.data_dir, download=args.download, val_fraction=args.val_fraction,
        split_seed=args.split_seed, evaluate_on=args.evaluate_on, incremental=args.incremental,
    )  # fmt: skip
    if args.labels == "soft":
        config = replace(config, buffer_options=replace(options, num_classes=real.num_classes))

    def report(r: Any) -> None:
        if not args.quiet:
            accs = " ".join(f"{a:.1f}" for a in r.acc_per_experience)
            print(
                f"{r.buffer:>16} {r.protocol:>6} seed {r.seed}: acc after each experience {accs} ({r.seconds:.0f}s)",
                flush=True,
            )

    results = run_comparison(config, scenario, real, log_dir=args.out / "logs", device=device, on_result=report)
    rows = summarize(config, results)
    budget = _budget_text(config, args)
    evaluated_on = "validation" if args.evaluate_on == "val" else "test"
    write_all(args.out, _config_dict(config), device, rows, budget, evaluated_on=evaluated_on,
              selected_on="validation (the distillation budget: `ddapps continual-select`)")  # fmt: skip
    print(table(rows))
    print(f"wrote {args.out}/results.json, report.md, accuracy_per_experience.png, logs/")
    return 0


def _budget_text(config: Any, args: argparse.Namespace) -> str:
    lc = config.learner
    distill = "paper config" if args.paper_distill else f"overrides {json.dumps(dict(config.buffer_options.overrides))}"
    return (
        f"learner {lc.net} {json.dumps(lc.net_options)}, SGD lr {lc.lr} momentum {lc.momentum} wd {lc.weight_decay}, "
        f"batch {lc.batch_size}; replay {lc.epochs} epoch(s) per experience; gdumb {lc.gdumb_epochs} epochs on the "
        f"memory per experience; distilled buffer: {distill}, shrink={config.buffer_options.shrink}, "
        f"labels={config.buffer_options.labels}"
    )


def _config_dict(config: Any) -> dict[str, Any]:
    d = asdict(config)
    d["buffer_options"]["overrides"] = dict(config.buffer_options.overrides)
    return json.loads(json.dumps(d))
