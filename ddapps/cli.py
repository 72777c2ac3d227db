"""The ``ddapps`` command line.

Every command reports bad input as one ``ddapps: error: ...`` line on stderr and exits with
status 2, and writes its outputs atomically into ``--out`` only once they are complete.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from ddapps.errors import ConfigError, DDAppsError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line (exit 2), like every other ddapps error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"ddapps: error: {message} (see ddapps --help)", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _int_list(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _str_list(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def _add_data_args(p: argparse.ArgumentParser, default: str | None = None) -> None:
    p.add_argument("--dataset", required=default is None, default=default, help="dataset name (see `ddapps list`)")
    p.add_argument("--data-dir", default=None, help="folder with the dataset files (default: $DDAPPS_DATA)")
    p.add_argument("--download", action="store_true", help="download missing files (torchvision)")
    p.add_argument("--zca", action="store_true", help="ZCA-whiten images (fitted on the training split)")


def _add_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="fp32, or bf16 autocast in distillation losses and evaluation training")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ddapps", description="Dataset distillation for continual learning, NAS and FL.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("list", help="registered datasets, methods and networks")

    d = sub.add_parser("distill", help="distil a dataset into a synthetic set")
    _add_data_args(d)
    d.add_argument("--method", required=True)
    d.add_argument("--ipc", type=int, required=True, help="images per class")
    d.add_argument("--out", required=True, type=Path)
    d.add_argument("--config", type=Path, help="JSON file of method config overrides")
    d.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="one config override (JSON value)")
    d.add_argument("--iterations", type=int, help="shortcut for --set iterations=N")
    d.add_argument("--checkpoint-every", type=int, default=50)
    d.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.safetensors")
    d.add_argument("--n-eval", type=int, default=3, help="networks trained to evaluate the set (0: skip)")
    d.add_argument("--eval-epochs", type=int, default=None, help="default: 1000 with DSA, 300 without")
    _add_run_args(d)

    e = sub.add_parser("evaluate", help="evaluate a saved synthetic set with the standard protocol")
    e.add_argument("set", type=Path, help="a .safetensors synthetic set (or a folder holding synset.safetensors)")
    _add_data_args(e)
    e.add_argument("--nets", type=_str_list, default=["convnet"], help="comma-separated architectures")
    e.add_argument("--n-eval", type=int, default=5)
    e.add_argument("--epochs", type=int, default=None)
    e.add_argument("--no-dsa", action="store_true", help="train without DSA augmentation")
    e.add_argument("--out", type=Path, default=None)
    _add_run_args(e)

    demo = sub.add_parser("demo", help="distil digits with dm vs random at IPC 1 and 10")
    demo.add_argument("--out", type=Path, default=Path("runs/demo"))
    _add_run_args(demo)

    bench = sub.add_parser("bench", help="benchmarks")
    bsub = bench.add_subparsers(dest="bench", required=True, parser_class=_Parser)
    core = bsub.add_parser("core", help="methods x IPC accuracy/time/memory table")
    _add_data_args(core, default="mnist")
    core.add_argument("--methods", type=_str_list, default=["random", "herding", "dm"], help="comma list or 'all'")
    core.add_argument("--ipc", type=_int_list, default=[1, 10])
    core.add_argument("--budget", default="small", help="small | paper")
    core.add_argument("--n-eval", type=int, default=None)
    core.add_argument("--out", type=Path, default=Path("runs/bench-core"))
    core.add_argument("--resume", action="store_true",
                      help="reuse the (method, ipc) pairs OUT/pairs/ already holds for the same settings")
    _add_run_args(core)
    speed = bsub.add_parser("speed", help="seconds per iteration, GFLOP/s vs measured matmul GFLOP/s, peak memory")
    _add_data_args(speed, default="mnist")
    speed.add_argument("--methods", type=_str_list, default=["dm", "dc", "dsa", "mtt"])
    speed.add_argument("--ipc", type=_int_list, default=[10])
    speed.add_argument("--iterations", type=int, default=10, help="timed iterations per run")
    speed.add_argument("--warmup", type=int, default=2, help="untimed iterations (>= 1) before the FLOP-counted one")
    speed.add_argument("--repeats", type=int, default=3, help="runs per (method, ipc)")
    speed.add_argument("--matmul-size", type=int, default=2048, help="n of the n x n x n reference matmul")
    speed.add_argument("--set", action="append", default=[], metavar="[METHOD.]KEY=VALUE",
                       help="config override (JSON value) for one method, or every method having KEY")
    speed.add_argument("--out", type=Path, default=Path("runs/bench-speed"))
    _add_run_args(speed)
    for module in _plugin_modules():
        module.add_parser(sub).set_defaults(run=module.run)
    return parser


# Subcommands of the application modules and of larger core features. Each module exposes
# ``add_parser(subparsers) -> parser`` and ``run(args) -> int`` (nested sub-subcommands dispatch
# inside ``run``), raises DDAppsError subclasses for bad input, and must not import its framework (avalanche, nni, flwr) at module level, so `ddapps --help` and
# the core work without the extras.
PLUGIN_MODULES = (
    "ddapps.cli_experts",
    "ddapps.continual.cli",
    "ddapps.nas.cli",
    "ddapps.federated.cli",
    "ddapps.privacy.cli",
)


def _plugin_modules() -> list[Any]:
    import importlib

    found = []
    for name in PLUGIN_MODULES:
        try:
            found.append(importlib.import_module(name))
        except ModuleNotFoundError as err:
            if err.name is None or not name.startswith(err.name):
                raise  # a real missing dependency inside an existing module
    return found


def parse_key_values(items: Sequence[str], flag: str) -> dict[str, Any]:
    """``["k=v", ...]`` from a repeated ``flag`` -> ``{k: JSON value of v (or the raw string)}``."""
    parsed: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{flag} expects KEY=VALUE, got {item!r}")
        try:
            parsed[key] = json.loads(value)
        except json.JSONDecodeError:
            parsed[key] = value
    return parsed


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    if args.config is not None:
        try:
            loaded = json.loads(args.config.read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {args.config}") from None
        except json.JSONDecodeError as err:
            raise ConfigError(f"config file {args.config} is not valid JSON ({err.msg}, line {err.lineno})") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {args.config} must hold a JSON object")
        overrides.update(loaded)
    overrides.update(parse_key_values(args.set, "--set"))
    if args.iterations is not None:
        overrides["iterations"] = args.iterations
    return overrides


def _setup(args: argparse.Namespace) -> Any:
    import torch

    from ddapps.utils.environment import resolve_device

    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    return resolve_device(args.device)


def _load(args: argparse.Namespace, *, public_stats: bool = False) -> Any:
    """The dataset of ``args``; ``public_stats`` keeps normalisation constants off the data (DP)."""
    from ddapps.data import load_dataset

    return load_dataset(args.dataset, args.data_dir, download=args.download, zca=args.zca, public_stats=public_stats)


def _refuse_private_statistics(distiller: Any, args: argparse.Namespace) -> bool:
    """For a DP method with noise: refuse ``--zca`` before any data loads; True if stats must be public."""
    from ddapps.dp.mechanism import DPOptions

    config = distiller.config
    if not (isinstance(config, DPOptions) and config.noisy):
        return False
    if args.zca:
        raise ConfigError(
            f"{args.method} --zca would release the ZCA mean and matrix fitted on the private data without noise, "
            "and ddapps has no private-statistics budget; drop --zca (or use --set dp_epsilon=inf)"
        )
    return True


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
    from ddapps.report import command_line, format_table, results_document, save_grid, write_outputs
    from ddapps.runner import distill_and_evaluate
    from ddapps.utils.atomic import write_json

    device = _setup(args)
    overrides = _overrides(args)
    distiller = create_distiller(args.method, overrides)  # validate method and options before loading data
    public_stats = _refuse_private_statistics(distiller, args)
    if args.checkpoint_every < 1:
        raise ConfigError("--checkpoint-every must be >= 1")
    benchmark = _load(args, public_stats=public_stats)
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
    write_json(out / "config.json", result.synset.meta["config"] | {"method": args.method, "ipc": args.ipc})
    save_grid(result.synset, out / "grid.png", class_names=benchmark.class_names)
    row = result.row(benchmark.name)
    config = {"method": args.method, "ipc": args.ipc, "seed": args.seed, "overrides": overrides, "dataset": benchmark.describe(),
              "precision": args.precision}
    columns = ["method", "ipc", "acc_mean", "n_eval", "distill_seconds", "peak_mem_mb"] if eval_config else ["method", "ipc", "distill_seconds", "peak_mem_mb"]
    table = format_table([row], columns)
    report = f"# ddapps distill\n\nCommand: `{command_line()}`\n\n{table}\n\n![synthetic images](grid.png)\n"
    write_outputs(out, results_document("distill", config, device, [row]), report)
    print(table)
    print(f"wrote {out}/synset.safetensors, results.json, report.md, grid.png")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ddapps.evaluation import EvalConfig, evaluate_cross_architecture
    from ddapps.report import command_line, format_table, results_document, write_outputs
    from ddapps.synthetic import SyntheticSet

    device = _setup(args)
    synset = SyntheticSet.load(args.set)
    benchmark = _load(args, public_stats=synset.meta.get("dataset", {}).get("stats_source") == "public")
    config = EvalConfig(n_eval=args.n_eval, epochs=args.epochs, dsa=not args.no_dsa)
    results = evaluate_cross_architecture(synset, benchmark, args.nets, config, seed=args.seed, device=device)
    rows = [
        {"dataset": benchmark.name, "method": synset.meta.get("method"), "ipc": synset.ipc} | r.as_dict()
        for r in results
    ]
    table = format_table(rows, ["method", "ipc", "net", "acc_mean", "n_eval"])
    print(table)
    if args.out is not None:
        doc = results_document(
            "evaluate",
            {"set": str(args.set), "nets": args.nets, "n_eval": args.n_eval, "precision": args.precision},
            device,
            rows,
        )
        write_outputs(args.out, doc, f"# ddapps evaluate\n\nCommand: `{command_line()}`\n\n{table}\n")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from ddapps.bench.core import bench_core
    from ddapps.budgets import get_budget
    from ddapps.data import load_dataset

    device = _setup(args)
    benchmark = load_dataset("digits")
    rows = bench_core(
        benchmark, ["random", "dm"], [1, 10], get_budget("demo"), args.out,
        seed=args.seed, device=device, command="demo", progress=not args.quiet,
    )
    by = {(r["method"], r["ipc"]): r["acc_mean"] for r in rows}
    for ipc in (1, 10):
        print(f"IPC {ipc}: dm {by[('dm', ipc)]:.1f}% vs random {by[('random', ipc)]:.1f}% "
              f"({by[('dm', ipc)] - by[('random', ipc)]:+.1f} points)")
    print(f"wrote {args.out}/report.md, results.json, accuracy_vs_ipc.png, grids/")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from ddapps.bench.core import bench_core
    from ddapps.budgets import get_budget, with_eval
    from ddapps.methods import METHODS
    from ddapps.methods.base import benchmark_methods

    if args.bench == "speed":
        return cmd_bench_speed(args)
    device = _setup(args)
    budget = with_eval(get_budget(args.budget), n_eval=args.n_eval)
    methods = benchmark_methods() if args.methods == ["all"] else args.methods
    private = [name for name in methods if METHODS.get(name).differentially_private]
    benchmark = _load(args, public_stats=bool(private))  # one normalisation for all, public if any is DP
    bench_core(
        benchmark, methods, args.ipc, budget, args.out, seed=args.seed, device=device, progress=not args.quiet,
        resume=args.resume,
    )
    return 0


def cmd_bench_speed(args: argparse.Namespace) -> int:
    from ddapps.bench.speed import SpeedSettings, bench_speed, parse_method_overrides

    device = _setup(args)
    settings = SpeedSettings(iterations=args.iterations, warmup=args.warmup, repeats=args.repeats,
                             matmul_size=args.matmul_size)
    overrides = parse_method_overrides(parse_key_values(args.set, "--set"), args.methods)
    benchmark = _load(args)
    bench_speed(benchmark, args.methods, args.ipc, settings, args.out, overrides=overrides, seed=args.seed,
                device=device, precision=args.precision, progress=True)  # one line per run, not a bar
    return 0


COMMANDS = {"list": cmd_list, "distill": cmd_distill, "evaluate": cmd_evaluate, "demo": cmd_demo, "bench": cmd_bench}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ddapps`` console script."""
    from ddapps.utils.precision import use_precision

    args = build_parser().parse_args(argv)
    try:
        handler = COMMANDS.get(args.command) or args.run
        with use_precision(getattr(args, "precision", "fp32")):
            return int(handler(args))
    except DDAppsError as err:
        print(f"ddapps: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("ddapps: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
