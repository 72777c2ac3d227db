"""Shared pieces of every ``ddapps`` command: the parser, argument groups, run set-up, data loading.

The bottom of the command-line package: the core commands (:mod:`ddapps.cli.commands`), the
experts command and every application's command module (found through the
``ddapps.commands`` entry points) build on these public names and on nothing private.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Sequence

from ddapps.errors import ConfigError

EXIT_USAGE = 2


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line (exit 2), like every other ddapps error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"ddapps: error: {message} (see ddapps --help)", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def int_list(text: str) -> list[int]:
    """``"1,2,3"`` -> ``[1, 2, 3]`` (an argparse type)."""
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def str_list(text: str) -> list[str]:
    """``"a, b,"`` -> ``["a", "b"]`` (an argparse type)."""
    return [v.strip() for v in text.split(",") if v.strip()]


def add_data_args(p: argparse.ArgumentParser, default: str | None = None) -> None:
    """``--dataset``, ``--data-dir``, ``--download``, ``--zca``, ``--image-size``, ``--max-per-class``."""
    p.add_argument("--dataset", required=default is None, default=default, help="dataset name (see `ddapps list`)")
    p.add_argument("--data-dir", default=None, help="folder with the dataset files (default: $DDAPPS_DATA)")
    p.add_argument("--download", action="store_true", help="download missing files (torchvision)")
    p.add_argument("--zca", action="store_true", help="ZCA-whiten images (fitted on the training split)")
    p.add_argument(
        "--image-size", type=int, default=None, metavar="S", help="imagefolder: resize to S x S (shorter side, centre)"
    )
    p.add_argument(
        "--max-per-class", type=int, default=None, metavar="N", help="imagefolder: read at most N train images a class"
    )


def add_run_args(p: argparse.ArgumentParser) -> None:
    """``--seed``, ``--device``, ``--threads``, ``--quiet``, ``--precision``."""
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument(
        "--precision",
        choices=("fp32", "bf16"),
        default="fp32",
        help="fp32, or bf16 autocast in distillation losses and evaluation training",
    )


def add_distill_set_arg(p: Any, help_text: str = "a method config override (JSON value)") -> None:
    """``--distill-set KEY=VALUE`` (repeatable) on ``p`` (a parser or an argument group)."""
    p.add_argument("--distill-set", action="append", default=[], metavar="KEY=VALUE", help=help_text)


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


def method_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """A method's config overrides from ``--config FILE``, then ``--set KEY=VALUE``, then ``--iterations``."""
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


def setup_run(args: argparse.Namespace) -> Any:
    """Apply ``--threads``; return the device ``--device`` names."""
    import torch

    from ddapps.utils.environment import resolve_device

    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    return resolve_device(args.device)


def load_benchmark(args: argparse.Namespace, *, public_stats: bool = False, val_fraction: float = 0.0) -> Any:
    """The dataset of ``args``; ``public_stats`` keeps normalisation constants off the data (DP);
    ``val_fraction`` carves a validation split out of train, drawn with ``args.seed``."""
    from ddapps.data import load_dataset

    return load_dataset(
        args.dataset, args.data_dir, download=args.download, zca=args.zca, public_stats=public_stats,
        image_size=getattr(args, "image_size", None), max_per_class=getattr(args, "max_per_class", None),
        val_fraction=val_fraction, seed=getattr(args, "seed", 0),
    )  # fmt: skip


def refuse_private_statistics(distiller: Any, args: argparse.Namespace) -> bool:
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
