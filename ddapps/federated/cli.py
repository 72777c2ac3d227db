"""``ddapps federated``: scripted federated runs (every mode of :mod:`ddapps.federated.modes`) over seeds.

Imports nothing from Flower at module level, so ``ddapps --help`` works without the extra.

    ddapps federated --mode oneshot,fedavg --dataset mnist --clients 10 --alpha 0.5 \\
        --rounds 20 --seeds 0,1,2 --out runs/fl --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from ddapps.errors import ConfigError


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``federated`` subcommand."""
    from ddapps.cli.common import add_data_args, int_list, str_list

    p = subparsers.add_parser("federated", help="federated learning with distilled sets (Flower)")
    add_data_args(p, default="mnist")
    p.add_argument(
        "--mode", type=str_list, default=["oneshot"],
        help="comma list of: oneshot, subset, oneshot-noise, oneshot-dp, iterative, fedavg, fedprox",
    )  # fmt: skip
    p.add_argument("--clients", type=int, default=10)
    p.add_argument("--partitioner", default="dirichlet", help="dirichlet (label skew), quantity (size skew) or iid")
    p.add_argument("--alpha", type=float, default=0.5, help="Dirichlet concentration (label or size skew)")
    p.add_argument("--fraction", type=float, default=None, help="share of clients sampled each round (default 1)")
    p.add_argument(
        "--select", action="append", default=[], metavar="KEY=V1,V2",
        help="choose KEY on a validation split held out of train (repeat for a grid); see ddapps.federated.select",
    )  # fmt: skip
    p.add_argument("--upload-dtype", default=None, help="float32 (default) | float16 | uint8: images of an upload")
    p.add_argument("--evaluate", default=None, help="test (default) | validation: score on 10%% held out of train")
    p.add_argument("--augment", default=None, help="dsa | none: augmentation of every model training, both sides")
    p.add_argument("--proximal-mu", type=float, default=None, help="FedProx mu (mode fedprox; default 0.01)")
    p.add_argument("--rounds", type=int, default=20, help="rounds of iterative and fedavg (oneshot: 1)")
    p.add_argument("--seeds", type=int_list, default=[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--budget", default="small", help="small | smoke | paper (see docs/federated.md)")
    p.add_argument("--method", default=None, help="registered distillation method (default dm)")
    p.add_argument("--ipc", type=int, default=None, help="synthetic images per class per client")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="method config override (JSON value)"
    )
    p.add_argument("--model", default=None, help="global model network (default mlp)")
    p.add_argument("--model-options", default=None, help="JSON, e.g. '{\"width\": 128}'")
    p.add_argument("--server-epochs", type=int, default=None)
    p.add_argument("--local-epochs", type=int, default=None)
    p.add_argument("--max-per-client", type=int, default=None, help="subsample each partition (0: all)")
    p.add_argument("--round-timeout", type=float, default=None, help="seconds to wait for replies per round (300)")
    p.add_argument("--quorum", type=float, default=None, help="share of clients a FedAvg/FedProx round needs (0.5)")
    p.add_argument("--fail-partitions", type=int_list, default=None, help="fault injection: these partitions fail")
    p.add_argument("--fail-mode", default=None, help="raise (default) or stall")
    p.add_argument("--stall-seconds", type=float, default=None)
    p.add_argument("--engine", default="inprocess", help="inprocess (default) or ray (Flower simulation)")
    p.add_argument("--threads", type=int, default=None, help="torch threads per client and server (default 1)")
    p.add_argument("--quiet", action="store_true", help="no per-run progress lines")
    return p


def build_config(args: argparse.Namespace) -> Any:
    """The base :class:`FederatedConfig` of the command (mode and seed are set per run)."""
    from ddapps.federated.settings import FederatedConfig, budget_config, budget_section

    if args.zca:
        raise ConfigError("federated runs do not support --zca")
    # The budget's method options are DM settings; another method starts from its paper defaults.
    budget = budget_section(args.budget)
    method_options = dict(budget.get("method_options", FederatedConfig().method_options))
    if args.method not in (None, "dm"):
        method_options = {}
    from ddapps.cli.common import parse_key_values

    method_options.update(parse_key_values(args.set, "--set"))
    model_options = None
    if args.model_options is not None:
        try:
            model_options = json.loads(args.model_options)
        except json.JSONDecodeError as err:
            raise ConfigError(f"--model-options is not valid JSON ({err.msg})") from None
    return budget_config(
        args.budget,
        dataset=args.dataset,
        data_dir=args.data_dir or "",
        clients=args.clients,
        partitioner=args.partitioner,
        alpha=args.alpha,
        fraction=args.fraction,
        augment=args.augment,
        evaluate=args.evaluate,
        upload_dtype=args.upload_dtype,
        proximal_mu=args.proximal_mu,
        method=args.method,
        ipc=args.ipc,
        method_options=method_options,
        model=args.model,
        model_options=model_options,
        server_epochs=args.server_epochs,
        local_epochs=args.local_epochs,
        max_per_client=args.max_per_client,
        round_timeout=args.round_timeout,
        quorum=args.quorum,
        fail_partitions=tuple(args.fail_partitions) if args.fail_partitions else None,
        fail_mode=args.fail_mode,
        stall_seconds=args.stall_seconds,
        threads=args.threads,
    )


def run(args: argparse.Namespace) -> int:
    """Run every requested mode for every seed and write the outputs."""
    from ddapps.federated.modes import MODES, mode_spec

    unknown = [m for m in args.mode if m not in MODES]
    if unknown:
        raise ConfigError(f"unknown federated mode(s) {', '.join(unknown)}; choose from: {', '.join(MODES)}")
    if args.rounds < 1 or not args.seeds:
        raise ConfigError("--rounds must be >= 1 and --seeds must name at least one seed")
    base = build_config(args)
    from ddapps.federated.select import validate

    validate([base], args.mode)  # every mode's method and options, before any run
    from ddapps.data import load_dataset

    load_dataset(base.dataset, base.data_dir or None, download=args.download)  # fail early on missing data
    from ddapps.federated.driver import run_once
    from ddapps.federated.experiment import run_experiment, write_experiment
    from ddapps.report import command_line, format_table

    rounds = {m: 1 if mode_spec(m).one_round else args.rounds for m in args.mode}
    if args.select:
        from ddapps.federated.select import parse_grid, run_selection

        if args.evaluate == "test":
            raise ConfigError("--select chooses on the validation split; it cannot run with --evaluate test")
        runner = lambda c: run_once(c, args.engine)  # noqa: E731
        run_selection(base, parse_grid(args.select), args.mode, args.seeds, rounds, runner, args.out)
        print(f"wrote {args.out}/selection.json, selection.md")
        return 0
    start = time.perf_counter()

    def progress(log: Any) -> None:
        if not args.quiet:
            print(f"{log.mode} seed {log.seed}: accuracy {log.final_accuracy:.2f}%, up {log.bytes_up:,} B, "
                  f"down {log.bytes_down:,} B, failures {len(log.failures)}", flush=True)  # fmt: skip

    logs = run_experiment(base, args.mode, args.seeds, rounds, lambda c: run_once(c, args.engine), on_run=progress)
    rows = write_experiment(
        args.out, base, logs, command=command_line(), engine=args.engine, seconds=time.perf_counter() - start
    )
    from ddapps.federated.experiment import COLUMNS, comparison

    print(format_table(rows, COLUMNS))
    for line in comparison(rows):
        print(line)
    print(f"wrote {args.out}/results.json, report.md, accuracy_vs_bytes.png")
    return 0
