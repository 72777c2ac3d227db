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


def add_pipeline_args(p: argparse.ArgumentParser) -> None:
    """The hyper-parameters of the pipelines (shared by ``audit``, ``utility`` and ``select``)."""
    p.add_argument("--dp-delta", type=float, default=1e-5)
    p.add_argument("--clip-norm", type=float, default=1.0, help="per-example clip norm of dp-dm/dp-dc/dp-sgd")
    p.add_argument("--dp-deterministic-noise", action="store_true",
                   help="seeded DP noise: reproducible and NOT private (rows say private: false)")
    p.add_argument("--ipc", type=int, default=10)
    p.add_argument("--iterations", type=int, default=100, help="distillation iterations (paper: 1000+)")
    p.add_argument("--batch-real", type=int, default=64, help="real images per class per distillation step")
    p.add_argument("--lr-img", type=float, default=100.0,
                   help="image learning rate of dm/dp-dm (100 learns from noise in a few hundred iterations; the DM paper's 1.0 does not)")
    p.add_argument("--distill-net", default="convnet")
    p.add_argument("--distill-width", type=int, default=32)
    p.add_argument("--distill-depth", type=int, default=None, help="ConvNet depth for distillation (default: fitted to the image size, 2 for 8x8 digits, 3 for 28x28)")
    p.add_argument("--net", default="mlp", help="architecture of target, shadow and DP-SGD models")
    p.add_argument("--width", type=int, default=128, help="width of target, shadow and DP-SGD models")
    p.add_argument("--epochs", type=int, default=300, help="training epochs on real members or synthetic sets")
    p.add_argument("--lr", type=float, default=0.01, help="learning rate of that training")
    p.add_argument("--dpsgd-batch-size", type=int, default=64, help="DP-SGD expected (Poisson) batch size")
    p.add_argument("--dpsgd-epochs", type=int, default=20, help="DP-SGD epochs")
    p.add_argument("--dpsgd-lr", type=float, default=0.5, help="DP-SGD learning rate (plain SGD)")


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
