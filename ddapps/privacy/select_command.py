"""``ddapps privacy select``: choose a DP method's ``lr_img`` and ``iterations`` on public data.

See :mod:`ddapps.privacy.selection` for why and how. The pipeline's other settings are the
audit's flags (``--ipc``, ``--batch-real``, ``--distill-width``, ...); the grid replaces
``--lr-img`` and ``--iterations``. Writes ``results.json`` (every candidate's validation accuracy,
the choice per epsilon, ``selected_on``), ``report.md`` and ``config.json``.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ddapps.privacy.arguments import add_pipeline_args, eps_list, pipeline_config


def add_select_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``select`` under ``ddapps privacy``."""
    from ddapps.cli.common import add_data_args, add_run_args, int_list

    p = sub.add_parser("select", help="choose lr_img and iterations of a DP method on public data (no privacy cost)")
    add_data_args(p)
    p.add_argument("--method", default="dp-dm", help="dp-dm or dp-dc")
    p.add_argument("--epsilons", type=eps_list, default=[1.0, 10.0])
    p.add_argument("--lr-imgs", type=eps_list, default=[10.0, 100.0, 300.0], help="candidate image learning rates")
    p.add_argument("--iterations-grid", type=int_list, default=[50, 200], help="candidate iteration counts")
    p.add_argument(
        "--exclude",
        type=int,
        default=1000,
        help="the private pool: the first N images of the audit's pool permutation are never used",
    )
    p.add_argument("--public-size", type=int, default=500, help="public images used (a part becomes validation)")
    p.add_argument("--val-fraction", type=float, default=0.4)
    p.add_argument("--seeds", type=int_list, default=[0])
    add_pipeline_args(p)
    p.add_argument("--out", type=Path, required=True)
    add_run_args(p)
    return p


def run_select(args: argparse.Namespace) -> int:
    """Run the grid and write the outputs."""
    from ddapps.cli.common import load_benchmark, setup_run
    from ddapps.errors import ConfigError
    from ddapps.privacy.selection import SelectionConfig, select
    from ddapps.report import command_line, format_table, write_run

    if args.zca:
        raise ConfigError("--zca is refused under DP (the whitening would be fitted on private data)")
    config = SelectionConfig(
        method=args.method, epsilons=tuple(args.epsilons), lr_imgs=tuple(args.lr_imgs),
        iterations=tuple(args.iterations_grid), exclude=args.exclude, public_size=args.public_size,
        val_fraction=args.val_fraction, seeds=tuple(args.seeds), pipeline=pipeline_config(args, targets=(args.method,)),
    )  # fmt: skip
    device = setup_run(args)
    real = load_benchmark(args, public_stats=True)
    print(f"privacy select: {config.candidates} candidate runs (distillation + one model each)", flush=True)
    result = select(real, config, progress=not args.quiet)
    chosen = [{"epsilon": eps, **values} for eps, values in result["selected"].items()]
    cfg = asdict(config) | {
        "dataset": args.dataset,
        "epsilons": [e if math.isfinite(e) else "inf" for e in config.epsilons],
    }
    cfg["pipeline"]["epsilons"] = [e if math.isfinite(e) else "inf" for e in config.pipeline.epsilons]
    report = "\n\n".join([
        f"# Selection of {args.method} settings: {args.dataset}",
        f"`{command_line()}`",
        f"Selected on: {result['selected_on']}. The test split and the private pool are not touched.",
        "## Chosen per epsilon",
        format_table(chosen, ["epsilon", "lr_img", "iterations", "val_acc_mean"]),
        "## Every candidate",
        format_table(result["rows"], ["epsilon", "lr_img", "iterations", "seed", "val_acc"]),
    ]) + "\n"  # fmt: skip
    write_run(args.out, "privacy select", cfg, device, result["rows"], report,
              selected=result["selected"], selected_on=result["selected_on"])  # fmt: skip
    print(format_table(chosen, ["epsilon", "lr_img", "iterations", "val_acc_mean"]))
    return 0
