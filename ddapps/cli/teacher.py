"""``ddapps teacher``: train a teacher (or check a saved one) for soft labels, KD and SRe2L/RDED.

    ddapps teacher --dataset mnist --out teachers/mnist.safetensors                 # CPU budget
    ddapps teacher --dataset cifar10 --budget paper --out teachers/c10.safetensors  # ResNet-18, 200 epochs

The budget's ``teacher`` section (:mod:`ddapps.budgets`) sets the net and epochs: ``small``
(default) a ConvNet-3 of width 32 for 5 epochs, ``paper`` the ResNet-18 SRe2L squeezes for 200
epochs (its small-dataset script). ``--net``, ``--net-options`` and ``--epochs`` override it. A validation split (``--val-fraction``,
default 0.1, carved from train) chooses the epoch kept; the test split is scored once. An existing
``--out`` is loaded and its hash verified instead of retrained (``--retrain`` to overwrite).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ddapps.errors import ConfigError


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``teacher`` subcommand to ``ddapps``' subparsers; return it."""
    from ddapps.cli.common import add_data_args, add_run_args

    p = subparsers.add_parser("teacher", help="train (or load and verify) a teacher for soft labels and KD")
    add_data_args(p)
    p.add_argument("--out", required=True, type=Path, help="the teacher file (.safetensors)")
    p.add_argument("--budget", default="small", help="small (CPU, default), paper (ResNet-18) or smoke")
    p.add_argument("--net", default=None, help="network name (see `ddapps list`)")
    p.add_argument("--net-options", default=None, metavar="JSON", help="e.g. '{\"width\": 128}'")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=None, help="SGD learning rate (budget: 0.1)")
    p.add_argument("--no-dsa", action="store_true", help="train without DSA augmentation")
    p.add_argument("--val-fraction", type=float, default=0.1, help="part of train held out to choose the epoch")
    p.add_argument("--retrain", action="store_true", help="overwrite an existing --out")
    add_run_args(p)
    return p


def _net_options(text: str | None, default: dict[str, Any]) -> dict[str, Any]:
    if text is None:
        return dict(default)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"--net-options is not valid JSON ({err.msg})") from None
    if not isinstance(value, dict):
        raise ConfigError("--net-options must be a JSON object")
    return value


def run(args: argparse.Namespace) -> int:
    """Train (or load) the teacher ``args`` describe; return the exit status."""
    from ddapps.budgets import get_budget
    from ddapps.cli.common import load_benchmark, setup_run
    from ddapps.teacher import epochs_for, load_teacher, train_and_save_teacher

    budget = get_budget(args.budget).section("teacher")
    if not budget:
        raise ConfigError(f"budget {args.budget!r} has no teacher settings; use small, paper or smoke")
    net = args.net or budget["net"]
    options = _net_options(args.net_options, budget["net_options"] if args.net is None else {})
    out: Path = args.out
    if out.suffix != ".safetensors":
        raise ConfigError(f"--out must name a .safetensors file, got {out}")
    device = setup_run(args)
    benchmark = load_benchmark(args, val_fraction=args.val_fraction)
    epochs = args.epochs
    if epochs is None:  # the budget's epochs, or more on a small dataset (its min_steps)
        epochs = epochs_for(budget["epochs"], budget.get("min_steps", 0), len(benchmark.train), args.batch_size)
    if out.exists() and not args.retrain:
        teacher = load_teacher(out, expect_classes=list(benchmark.class_names))
        print(f"{out}: teacher {teacher.net_name} on {teacher.dataset}, hash {teacher.hash} (verified)")
        return 0
    teacher, report = train_and_save_teacher(
        benchmark, out, net, options, epochs=epochs, seed=args.seed, device=device, batch_size=args.batch_size,
        lr=args.lr if args.lr is not None else budget.get("lr", 0.01), augment=not args.no_dsa,
    )  # fmt: skip
    val = report["val_accuracy"]
    test = report["test_accuracy"]
    print(
        f"wrote {out}: {net} {options} after {report['best_epoch']}/{epochs} epochs "
        f"(val {val if val is None else f'{val:.2f}%'}, test {test if test is None else f'{test:.2f}%'}, "
        f"{report['seconds']:.0f} s); hash {teacher.hash}"
    )
    return 0
