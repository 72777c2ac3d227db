"""Command-line arguments shared by the ``ddapps privacy`` commands (audit, utility, select).

The pipelines' hyper-parameters (distillation, target training, DP-SGD) and the
:class:`~ddapps.privacy.audit.AuditConfig` built from them.
"""

from __future__ import annotations

import argparse
from typing import Any


def eps_list(text: str) -> list[float]:
    """``"1,10,inf"`` -> ``[1.0, 10.0, inf]`` (an argparse type)."""
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers (or inf), got {text!r}") from None


PIPELINE_FLAGS: tuple[tuple[str, type, object, str], ...] = (
    ("--dp-delta", float, 1e-5, "delta of every DP target"),
    ("--clip-norm", float, 1.0, "per-example clip norm of dp-dm/dp-dc/dp-sgd"),
    ("--ipc", int, 10, "images per class of the distilled targets"),
    ("--iterations", int, 100, "distillation iterations (paper: 1000+)"),
    ("--batch-real", int, 64, "real images per class per distillation step"),
    ("--lr-img", float, 100.0, "image learning rate of dm/dp-dm (100 learns from noise in a few hundred iterations; "
                               "the DM paper's 1.0 does not)"),
    ("--distill-net", str, "convnet", "network of the distillation"),
    ("--distill-width", int, 32, "its width"),
    ("--distill-depth", int, None, "ConvNet depth for distillation (default: fitted to the image size, 2 for 8x8 "
                                   "digits, 3 for 28x28)"),
    ("--net", str, "mlp", "architecture of target, shadow and DP-SGD models"),
    ("--width", int, 128, "width of target, shadow and DP-SGD models"),
    ("--epochs", int, 300, "training epochs on real members or synthetic sets"),
    ("--lr", float, 0.01, "learning rate of that training"),
    ("--dpsgd-batch-size", int, 64, "DP-SGD expected (Poisson) batch size"),
    ("--dpsgd-epochs", int, 20, "DP-SGD epochs"),
    ("--dpsgd-lr", float, 0.5, "DP-SGD learning rate (plain SGD)"),
)  # fmt: skip
"""``(flag, type, default, help)`` of the pipelines' hyper-parameters (distillation, training, DP-SGD)."""


def add_pipeline_args(p: argparse.ArgumentParser, *, budget: bool = True) -> None:
    """The hyper-parameters of the pipelines (shared by ``audit``, ``utility`` and ``select``).

    With ``budget``, ``--budget NAME`` fills every flag the command line leaves at its default from
    the budget's ``privacy`` section (:mod:`ddapps.budgets`); call it after the command's own flags.
    """
    for flag, kind, default, text in PIPELINE_FLAGS:
        p.add_argument(flag, type=kind, default=default, help=text)
    if budget:
        p.add_argument(
            "--budget",
            default="small",
            help="small (these defaults) | smoke (seconds; numbers meaningless) | paper (64 shadows, 1000 "
            "iterations, seeds 0,1,2); flags given explicitly win",
        )
        p.set_defaults(budget_defaults={key: p.get_default(key) for key in BUDGET_KEYS})
    p.add_argument(
        "--dp-deterministic-noise",
        action="store_true",
        help="seeded DP noise: reproducible and NOT private (rows say private: false)",
    )


BUDGET_KEYS = ("shadows", "iterations", "epochs", "ipc", "pool_size", "n_boot", "dpsgd_epochs", "train_size", "seeds")
"""What a budget's ``privacy`` section may set (each command takes the ones it has)."""


def apply_budget(args: argparse.Namespace) -> dict[str, Any]:
    """Set each flag still at its default to the ``--budget``'s ``privacy`` value; return what was set."""
    from ddapps.budgets import get_budget
    from ddapps.errors import ConfigError

    applied: dict[str, Any] = {}
    for key, value in get_budget(args.budget).section("privacy").items():
        if key not in BUDGET_KEYS:
            raise ConfigError(
                f"budget {args.budget!r}: unknown privacy setting {key!r}; known: {', '.join(BUDGET_KEYS)}"
            )
        if hasattr(args, key) and getattr(args, key) == args.budget_defaults[key]:
            setattr(args, key, value)
            applied[key] = value
    return applied


def seed_list(text: str) -> list[int]:
    from ddapps.cli.common import int_list

    return int_list(text)


def distill_net_args(args: argparse.Namespace) -> dict[str, int]:
    depth = {} if args.distill_depth is None else {"depth": args.distill_depth}
    return {"width": args.distill_width} | depth


def pipeline_config(args: argparse.Namespace, **extra: Any) -> Any:
    from ddapps.privacy.audit import AuditConfig

    return AuditConfig(
        epsilons=tuple(args.epsilons), dp_delta=args.dp_delta, clip_norm=args.clip_norm,
        dp_deterministic_noise=args.dp_deterministic_noise, ipc=args.ipc, iterations=args.iterations,
        batch_real=args.batch_real, lr_img=args.lr_img, distill_net=args.distill_net, distill_net_options=distill_net_args(args),
        net=args.net, net_options={"width": args.width}, epochs=args.epochs, lr=args.lr,
        dpsgd_batch_size=args.dpsgd_batch_size, dpsgd_epochs=args.dpsgd_epochs, dpsgd_lr=args.dpsgd_lr, **extra,
    )  # fmt: skip
