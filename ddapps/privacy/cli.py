"""``ddapps privacy audit``: membership inference against real, distilled and DP-distilled training.

Imports neither Opacus nor torch at import time, so ``ddapps --help`` works without the extra.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

COLUMNS = ("target", "init", "epsilon", "attack", "auc", "auc_ci_low", "auc_ci_high", "tpr_at_1fpr", "test_acc")


def _eps_list(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers (or inf), got {text!r}") from None


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``privacy`` with its ``audit`` sub-command."""
    from ddapps.cli import _add_data_args, _add_run_args, _Parser, _str_list
    from ddapps.privacy.audit import DEFAULT_TARGETS, TARGETS

    privacy = subparsers.add_parser("privacy", help="differential privacy and membership-inference audits")
    sub = privacy.add_subparsers(dest="privacy_command", required=True, parser_class=_Parser)
    a = sub.add_parser("audit", help="membership-inference audit of real, distilled and DP-distilled targets")
    _add_data_args(a)
    a.add_argument("--targets", type=_str_list, default=list(DEFAULT_TARGETS),
                   help=f"comma list of {', '.join(TARGETS)} (default: all but dp-dc)")
    a.add_argument("--epsilons", type=_eps_list, default=[1.0, 10.0, math.inf], help="dp-dm/dp-dc epsilons (inf: clipping only)")
    a.add_argument("--dp-delta", type=float, default=1e-5)
    a.add_argument("--clip-norm", type=float, default=1.0)
    a.add_argument("--pool-size", type=int, default=500, help="pool of training images; half are members")
    a.add_argument("--ipc", type=int, default=10)
    a.add_argument("--shadows", type=int, default=4, help="LiRA shadow models per target (0: loss attack only)")
    a.add_argument("--iterations", type=int, default=200, help="distillation iterations")
    a.add_argument("--batch-real", type=int, default=64, help="real images per class per distillation step")
    a.add_argument("--lr-img", type=float, default=100.0,
                   help="image learning rate of dm/dp-dm (100 learns from noise in 200 iterations; the DM paper's 1.0 does not)")
    a.add_argument("--distill-net", default="convnet")
    a.add_argument("--distill-width", type=int, default=32)
    a.add_argument("--distill-depth", type=int, default=None, help="ConvNet depth for distillation (2 for 8x8 digits)")
    a.add_argument("--net", default="mlp", help="architecture of target and shadow models")
    a.add_argument("--width", type=int, default=128, help="width of target and shadow models")
    a.add_argument("--epochs", type=int, default=300, help="training epochs of target and shadow models")
    a.add_argument("--lr", type=float, default=0.01)
    a.add_argument("--n-boot", type=int, default=200, help="bootstrap resamples for the AUC interval")
    a.add_argument("--out", type=Path, required=True)
    _add_run_args(a)
    return privacy


def _net_options(args: argparse.Namespace) -> dict[str, int]:
    depth = {} if args.distill_depth is None else {"depth": args.distill_depth}
    return {"width": args.distill_width} | depth


def run(args: argparse.Namespace) -> int:
    """Dispatch ``ddapps privacy <command>``."""
    return {"audit": run_audit_command}[args.privacy_command](args)


def run_audit_command(args: argparse.Namespace) -> int:
    import dataclasses

    from ddapps.cli import _load, _setup
    from ddapps.privacy.audit import AuditConfig, run_audit
    from ddapps.privacy.plot import save_closest_pairs
    from ddapps.report import command_line, format_table, results_document, write_outputs

    device = _setup(args)
    config = AuditConfig(
        targets=tuple(args.targets), epsilons=tuple(args.epsilons), dp_delta=args.dp_delta, clip_norm=args.clip_norm,
        pool_size=args.pool_size, ipc=args.ipc, shadows=args.shadows, iterations=args.iterations,
        batch_real=args.batch_real, lr_img=args.lr_img, distill_net=args.distill_net, distill_net_options=_net_options(args),
        net=args.net, net_options={"width": args.width}, epochs=args.epochs, lr=args.lr, n_boot=args.n_boot,
    )
    real = _load(args)
    result = run_audit(real, config, seed=args.seed, device=device)
    args.out.mkdir(parents=True, exist_ok=True)
    save_closest_pairs(result["pairs"], real, args.out / "closest_pairs.png")
    cfg = dataclasses.asdict(config) | {"dataset": args.dataset, "seed": args.seed}
    cfg["epsilons"] = [e if math.isfinite(e) else "inf" for e in config.epsilons]
    document = results_document(command_line(), cfg, device, result["rows"])
    document["memorization"] = result["memorization"]
    shown = [r | {"epsilon": "-" if r["epsilon"] is None else r["epsilon"]} for r in result["rows"]]
    mem_shown = [r | {"epsilon": "-" if r["epsilon"] is None else r["epsilon"]} for r in result["memorization"]]
    mem_cols = ["target", "init", "epsilon", "nn_dist_member_mean", "nn_dist_nonmember_mean", "nn_dist_member_min", "closer_to_member_frac"]
    report = "\n\n".join([
        f"# Privacy audit: {args.dataset}",
        f"`{command_line()}`",
        "Membership inference (members vs non-members of the pool; AUC 0.5 = no leakage; 95% bootstrap CI):",
        format_table(shown, COLUMNS),
        "Memorisation: L2 distance from each synthetic image to its nearest member / non-member "
        "(normalised pixels); closest pairs in `closest_pairs.png`.",
        format_table(mem_shown, mem_cols),
    ]) + "\n"
    write_outputs(args.out, document, report)
    print(format_table(shown, COLUMNS))
    return 0
