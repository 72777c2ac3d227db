"""``ddapps continual-select``: choose the distilled buffer's budget on a validation stream.

The training split is cut into a stratified, seeded validation part (``--val-fraction``, default
0.1; :func:`ddapps.data.stratify.stratified_holdout`) and the rest. The class-incremental stream is
built from the rest, and every candidate budget is scored by the stream accuracy on the *validation*
classes after the last experience, under GDumb (Prabhu et al., ECCV 2020; the protocol DM's
continual experiment uses), mean over seeds. The test split is never read. The cheapest candidate
whose mean lies inside the best mean's 95% t-interval wins (:func:`choose`: more iterations that the
seeds cannot tell apart are not worth their time); ``results.json`` says ``selected_on: "validation"``, with every
candidate's mean, sample standard deviation, 95% t-interval and seconds, and a class-balanced
buffer scored on the same stream for reference.

Candidates are values of one method option (``--knob``, default ``iterations``) on top of the
``small`` budget's other overrides (:func:`ddapps.continual.budget.buffer_overrides`) and any
fixed ``--distill-set KEY=VALUE``.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Sequence

from ddapps.errors import ConfigError
from ddapps.utils.intervals import t_interval

REFERENCE_BUFFER = "class-balanced"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``ddapps continual-select``."""
    from ddapps.cli.common import add_distill_set_arg, int_list
    from ddapps.continual.cli import add_learner_args

    p = subparsers.add_parser(
        "continual-select",
        help="choose the distilled buffer's budget on a validation stream carved from the training split",
    )
    p.add_argument("--benchmark", default="split-mnist", help="split-mnist | split-cifar10 | split-digits")
    p.add_argument("--method", default="dm", help="the distilling method")
    p.add_argument("--knob", default="iterations", help="the method option the candidates set")
    p.add_argument("--candidates", type=int_list, default=[100, 500, 2000], help="values of --knob to compare")
    add_distill_set_arg(
        p, 'a fixed method override (JSON value) on top of the small budget, e.g. net_options={"width":32}'
    )
    p.add_argument("--val-fraction", type=float, default=0.1, help="stratified share of the training split held out")
    p.add_argument("--split-seed", type=int, default=0, help="seed of the validation carve")
    p.add_argument("--mem-size", type=int, default=100, help="memory size in images")
    p.add_argument("--seeds", type=int_list, default=[0, 1, 2])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--data-dir", default=None, help="folder with the dataset files (default: $DDAPPS_DATA)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument("--quiet", action="store_true", help="no per-run progress lines")
    add_learner_args(p)
    return p


def choose(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The cheapest candidate (smallest knob value) that the seeds cannot tell from the best.

    "Cannot tell": its mean validation accuracy lies inside the 95% t-interval of the best mean
    (``ci_low`` of the best row). A candidate that costs more but is not measurably better is not
    worth its time; with one seed (a point interval) this is simply the best mean.
    """
    best = max(rows, key=lambda r: (r["val_acc_mean"], -r["value"]))
    eligible = [r for r in rows if r["val_acc_mean"] >= best["ci_low"]]
    return min(eligible, key=lambda r: r["value"])


def run(args: argparse.Namespace) -> int:
    """Score every candidate on the validation stream; write ``results.json``, ``report.md``."""
    from ddapps.cli.common import setup_run
    from ddapps.continual.budget import buffer_overrides
    from ddapps.continual.cli import check_learner_args, learner_config
    from ddapps.continual.experiment import ContinualConfig, run_comparison, summarize
    from ddapps.continual.scenarios import SPLITS, load_split
    from ddapps.continual.storage_policies import BufferOptions
    from ddapps.methods import METHODS, create_distiller
    from ddapps.report import format_table, write_run

    if args.benchmark not in SPLITS:
        raise ConfigError(f"unknown benchmark {args.benchmark!r}; choose one of: {', '.join(SPLITS)}")
    if not 0 < args.val_fraction < 1:
        raise ConfigError(f"--val-fraction must be in (0, 1), got {args.val_fraction}")
    check_learner_args(args)
    if not METHODS.get(args.method).accepts(args.knob):
        raise ConfigError(f"method {args.method!r} has no option {args.knob!r}")
    from ddapps.cli.common import parse_key_values

    base = buffer_overrides(args.method, "small") | parse_key_values(args.distill_set, "--distill-set")
    candidates = [base | {args.knob: value} for value in args.candidates]
    for overrides in candidates:
        create_distiller(args.method, overrides)  # validate before loading data
    device = setup_run(args)
    scenario, real = load_split(
        args.benchmark, args.data_dir, val_fraction=args.val_fraction, split_seed=args.split_seed, evaluate_on="val"
    )
    learner = learner_config(args)
    dataset = SPLITS[args.benchmark].dataset
    common = ContinualConfig(
        benchmark=args.benchmark, buffers=(REFERENCE_BUFFER,), protocols=("gdumb",), mem_size=args.mem_size,
        seeds=tuple(args.seeds), learner=learner,
        buffer_options=BufferOptions(dataset_name=dataset, device=str(device)),
    )  # fmt: skip

    def say(r: Any) -> None:
        if not args.quiet:
            print(f"{r.buffer:>16} seed {r.seed}: validation acc {r.acc_per_experience[-1]:.2f} ({r.seconds:.0f}s)")

    rows = []
    for value, overrides in zip(args.candidates, candidates):
        if not args.quiet:
            print(f"candidate {args.knob}={value}", flush=True)
        config = replace(
            common,
            buffers=(f"distilled:{args.method}",),
            buffer_options=replace(common.buffer_options, overrides=overrides),
        )
        results = run_comparison(config, scenario, real, device=device, on_result=say)
        rows.append(
            _row(f"distilled:{args.method} {args.knob}={value}", value, overrides, summarize(config, results)[0])
        )
    reference = summarize(common, run_comparison(common, scenario, real, device=device, on_result=say))[0]
    chosen = choose(rows)
    reference_row = _row(REFERENCE_BUFFER, None, None, reference)
    config_doc = {
        "benchmark": args.benchmark, "method": args.method, "knob": args.knob, "candidates": args.candidates,
        "base_overrides": base, "val_fraction": args.val_fraction, "split_seed": args.split_seed,
        "mem_size": args.mem_size, "seeds": args.seeds, "protocol": "gdumb", "learner": asdict(learner),
        "train_images": len(real.train), "validation_images": len(real.val) if real.val is not None else 0,
    }  # fmt: skip
    shown = [_shown(r) for r in [*rows, reference_row]]
    columns = ("candidate", "validation acc (%)", "95% CI", "seconds")
    report = "\n".join([
        f"# ddapps continual-select: {args.benchmark}, {args.method}, memory {args.mem_size}", "",
        f"Scored on a validation stream ({args.val_fraction:.0%} of each training class, split seed "
        f"{args.split_seed}; {config_doc['validation_images']} images), GDumb, seeds {args.seeds}. The test split "
        "is never read.", "",
        format_table(shown, columns), "",
        f"Selected: `{args.knob}={chosen['value']}`: the cheapest candidate whose mean lies inside the 95% "
        "t-interval of the best mean (the seeds cannot tell it from the best).", "",
    ])  # fmt: skip
    write_run(args.out, "continual-select", config_doc, device, [*rows, reference_row], report,
              selected={args.knob: chosen["value"], "overrides": chosen["overrides"]},
              selected_on="validation")  # fmt: skip
    print(format_table(shown, columns))
    print(f"selected {args.knob}={chosen['value']} on the validation stream; wrote {args.out}/results.json, report.md")
    return 0


def _row(
    candidate: str, value: int | None, overrides: dict[str, Any] | None, summary: dict[str, Any]
) -> dict[str, Any]:
    low, high = t_interval(summary["final_acc_per_seed"])
    return {
        "candidate": candidate,
        "value": value,
        "overrides": overrides,
        "val_acc_mean": summary["final_acc_mean"],
        "val_acc_std": summary["final_acc_std"],
        "ci_low": low,
        "ci_high": high,
        "seconds": summary["seconds"],
        "val_acc_per_seed": summary["final_acc_per_seed"],
    }


def _shown(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "candidate": row["candidate"],
        "validation acc (%)": f"{row['val_acc_mean']:.2f} ± {row['val_acc_std']:.2f}",
        "95% CI": f"[{row['ci_low']:.2f}, {row['ci_high']:.2f}]",
        "seconds": f"{row['seconds']:.0f}",
    }
