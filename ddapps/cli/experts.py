"""``ddapps experts``: train the expert trajectories that trajectory matching (``mtt``) needs.

    ddapps experts --dataset mnist --out experts/mnist.safetensors --num-experts 10 --epochs 50
    ddapps distill --dataset mnist --method mtt --ipc 10 --set expert_file=experts/mnist.safetensors ...

The file is rewritten atomically after each finished expert; ``--resume`` continues an interrupted
run (or adds experts to a finished one) and gives exactly the file an uninterrupted run gives.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ddapps.errors import ConfigError


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``experts`` subcommand to ``ddapps``' subparsers; return it."""
    from ddapps.cli.common import add_data_args, add_run_args

    p = subparsers.add_parser("experts", help="train expert trajectories for trajectory matching (mtt)")
    add_data_args(p)
    p.add_argument("--out", required=True, type=Path, help="the expert file to write (.safetensors)")
    p.add_argument("--num-experts", type=int, default=None, help="number of experts (default 100)")
    p.add_argument("--epochs", type=int, default=None, help="epochs per expert (default 50)")
    p.add_argument("--config", type=Path, help="JSON file of expert config overrides")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="one expert config override (JSON value), e.g. max_train_samples=5000",
    )
    p.add_argument("--resume", action="store_true", help="continue (or extend) an existing --out file")
    add_run_args(p)
    p.set_defaults(iterations=None)
    return p


def run(args: argparse.Namespace) -> int:
    """Train the experts described by ``args``; return the exit status."""
    from ddapps.cli.common import load_benchmark, method_overrides, setup_run
    from ddapps.methods.trajectory import ExpertConfig, train_experts

    device = setup_run(args)
    overrides = method_overrides(args)
    if args.num_experts is not None:
        overrides["num_experts"] = args.num_experts
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    config = ExpertConfig.from_overrides(overrides)  # validate before loading data
    out: Path = args.out
    if out.suffix != ".safetensors":
        raise ConfigError(f"--out must name a .safetensors file, got {out}")
    if out.exists() and not args.resume:
        raise ConfigError(f"{out} exists; pass --resume to continue it, or choose another --out")
    benchmark = load_benchmark(args)
    buffer = train_experts(benchmark, config, out, seed=args.seed, device=device, progress=not args.quiet)
    accuracy = buffer.test_accuracy
    mean = sum(accuracy) / len(accuracy)
    print(
        f"wrote {out}: {buffer.num_experts} experts x {buffer.epochs} epochs of {buffer.net} "
        f"({buffer.spec.numel} parameters); mean expert test accuracy {mean:.2f}%"
    )
    return 0
