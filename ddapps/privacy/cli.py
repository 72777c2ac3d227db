"""``ddapps privacy audit`` and ``ddapps privacy utility``.

``audit``: membership inference against real, distilled, DP-distilled and DP-SGD training
(:mod:`ddapps.privacy.audit`). ``utility``: test accuracy against epsilon for the DP methods
(:mod:`ddapps.privacy.utility`). Both load the data with public normalisation constants.

Imports neither Opacus nor torch at import time, so ``ddapps --help`` works without the extra.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from ddapps.privacy.arguments import add_pipeline_args, apply_budget, eps_list, pipeline_config, seed_list
from ddapps.privacy.select_command import add_select_parser, run_select

COLUMNS = (
    "seed", "target", "init", "epsilon", "attack", "subset", "auc", "auc_ci_low", "auc_ci_high",
    "tpr_at_0.1fpr", "tpr_at_0.1fpr_ci_low", "tpr_at_0.1fpr_ci_high", "tpr_at_1fpr", "tpr_at_1fpr_ci_low",
    "tpr_at_1fpr_ci_high", "eps_lb", "test_acc", "private", "eps_spent", "within_bound",
)  # fmt: skip
SHOWN = ("seed", "target", "init", "epsilon", "attack", "subset", "AUC [95% CI]", "TPR@0.1%FPR [CI]", "TPR@1%FPR [CI]",
         "eps_lb", "eps_spent", "within_bound", "private", "test_acc")  # fmt: skip
SUMMARY_SHOWN = ("target", "init", "epsilon", "attack", "subset", "n_seeds", "AUC", "TPR@0.1%FPR", "TPR@1%FPR", "eps_lb",
                 "test acc (%)", "within_bound", "private")  # fmt: skip
PAPER_NOTE = (
    "The defaults are a CPU budget (the digits audit takes a few minutes on two cores). Heavier 'paper' "
    "settings: --shadows 64 --iterations 1000 --seeds 0,1,2 (and --pool-size as large as the data allows)."
)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``privacy`` with its ``audit`` and ``utility`` sub-commands."""
    from ddapps.cli.common import Parser

    privacy = subparsers.add_parser("privacy", help="differential privacy and membership-inference audits")
    sub = privacy.add_subparsers(dest="privacy_command", required=True, parser_class=Parser)
    _add_audit_parser(sub)
    _add_utility_parser(sub)
    add_select_parser(sub)
    c = sub.add_parser("combine", help="one report from audits of other seeds, or from utility curves of other methods")
    c.add_argument(
        "runs",
        nargs="+",
        type=Path,
        help="output folders of `ddapps privacy audit` (same settings, other seeds) or of "
        "`ddapps privacy utility` (same data, epsilons and seeds, other methods)",
    )
    c.add_argument("--out", type=Path, required=True)
    return privacy


def _add_audit_parser(sub: argparse._SubParsersAction) -> None:
    from ddapps.cli.common import add_data_args, add_run_args, str_list
    from ddapps.privacy.audit import DEFAULT_TARGETS, TARGETS

    a = sub.add_parser("audit", help="membership-inference audit of real, distilled, DP-distilled and DP-SGD targets",
                       description="Membership-inference audit (loss threshold, LiRA). " + PAPER_NOTE)  # fmt: skip
    add_data_args(a)
    a.add_argument(
        "--targets",
        type=str_list,
        default=list(DEFAULT_TARGETS),
        help=f"comma list of {', '.join(TARGETS)} (default: all but dp-dc)",
    )
    a.add_argument(
        "--epsilons",
        type=eps_list,
        default=[1.0, 10.0, math.inf],
        help="epsilons of dp-dm/dp-sgd/dp-dc (inf: clipping without noise)",
    )
    a.add_argument(
        "--pool-size", type=int, default=1000, help="pool of training images; half are members (digits has 1257)"
    )
    a.add_argument(
        "--shadows", type=int, default=8, help="LiRA shadow models per target, even (0: loss attack only; paper: 64)"
    )
    a.add_argument(
        "--canaries",
        type=int,
        default=None,
        help="pool records given a wrong label, scored separately (default: 2%% of the pool; 0: none)",
    )
    a.add_argument("--n-boot", type=int, default=200, help="bootstrap resamples for the AUC and TPR intervals")
    a.add_argument(
        "--seeds", type=seed_list, default=None, help="comma list of seeds, one audit each (default: --seed)"
    )
    add_pipeline_args(a)
    a.add_argument("--out", type=Path, required=True)
    add_run_args(a)


def _add_utility_parser(sub: argparse._SubParsersAction) -> None:
    from ddapps.cli.common import add_data_args, add_run_args, str_list
    from ddapps.privacy.audit import DP_TARGETS

    u = sub.add_parser("utility", help="test accuracy against epsilon for dp-dm, dp-dc and dp-sgd",
                       description="Privacy-utility curve. Hyper-parameters are inputs (choose them on public data, "
                                   "never on the test split).")  # fmt: skip
    add_data_args(u)
    u.add_argument(
        "--methods", type=str_list, default=["dp-dm", "dp-sgd"], help=f"comma list of {', '.join(DP_TARGETS)}"
    )
    u.add_argument(
        "--epsilons",
        type=eps_list,
        default=[0.5, 1.0, 2.0, 5.0, 10.0, math.inf],
        help="epsilons (inf: clipping without noise, drawn at the right of the plot)",
    )
    u.add_argument(
        "--train-size", type=int, default=500, help="stratified training subset per seed (0: the whole training split)"
    )
    u.add_argument("--seeds", type=seed_list, default=None, help="comma list of seeds (default: --seed)")
    add_pipeline_args(u)
    u.add_argument("--out", type=Path, required=True)
    add_run_args(u)


def run(args: argparse.Namespace) -> int:
    """Dispatch ``ddapps privacy <command>``."""
    commands = {"audit": run_audit_command, "utility": run_utility_command, "select": run_select,
                "combine": run_combine_command}  # fmt: skip
    if hasattr(args, "budget_defaults"):
        applied = apply_budget(args)
        if applied:
            _say(args, f"budget {args.budget}: {', '.join(f'{k}={v}' for k, v in applied.items())}")
    return commands[args.privacy_command](args)


def _progress(total: int, args: argparse.Namespace, desc: str) -> Any:
    """A tqdm bar over ``total`` trained models (its rate and ETA extrapolate from the first ones)."""
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit="model", disable=args.quiet, file=sys.stderr)

    def step(label: str) -> None:
        bar.set_postfix_str(label, refresh=False)
        bar.update()

    return bar, step


def _say(args: argparse.Namespace, text: str) -> None:
    if not args.quiet:
        print(text, file=sys.stderr, flush=True)


def run_audit_command(args: argparse.Namespace) -> int:
    import dataclasses

    from ddapps.cli.common import load_benchmark, setup_run
    from ddapps.privacy.audit import check_public_data, check_sizes, run_audit_seeds, workload
    from ddapps.privacy.plot import save_closest_pairs
    from ddapps.report import format_table, write_run

    seeds = args.seeds or [args.seed]
    config = pipeline_config(args, targets=tuple(args.targets), pool_size=args.pool_size, shadows=args.shadows,
                              canaries=args.canaries, n_boot=args.n_boot)  # fmt: skip
    device = setup_run(args)
    real = load_benchmark(args, public_stats=True)
    check_public_data(real, config)
    check_sizes(real, config, seeds)
    work = workload(config, len(seeds))
    _say(args, f"audit: {len(seeds)} seed(s) x {work['trainings'] // len(seeds)} models (targets and {config.shadows} "
               f"shadows each) = {work['trainings']} model trainings, of which {work['distillations']} distillations "
               f"and {work['dpsgd']} DP-SGD runs; the progress bar extrapolates the time")  # fmt: skip
    bar, step = _progress(work["trainings"], args, "audit")
    result = run_audit_seeds(real, config, seeds, device=device, on_model=step)
    bar.close()
    args.out.mkdir(parents=True, exist_ok=True)
    save_closest_pairs(result["pairs"], real, args.out / "closest_pairs.png")
    cfg = dataclasses.asdict(config) | {"dataset": args.dataset, "seeds": seeds, "canaries": config.n_canaries,
                                        "budget": args.budget}  # fmt: skip
    cfg["epsilons"] = [e if math.isfinite(e) else "inf" for e in config.epsilons]
    write_run(args.out, "privacy audit", cfg, device, result["rows"], audit_report(args, config, seeds, result),
              summary=result["summary"], memorization=result["memorization"], privacy=result["privacy"])  # fmt: skip
    print(format_table([_shown_summary(r) for r in result["summary"]], SUMMARY_SHOWN))
    return 0


def run_combine_command(args: argparse.Namespace) -> int:
    """Merge audits that differ only in their seeds (e.g. run in parallel) into one report with the summary."""
    import json
    from types import SimpleNamespace

    from ddapps.errors import ConfigError
    from ddapps.privacy.audit import summarize
    from ddapps.report import format_table, write_run

    docs = []
    for run in args.runs:
        try:
            docs.append(json.loads((run / "results.json").read_text()))
        except (OSError, ValueError) as err:
            raise ConfigError(f"{run}/results.json cannot be read as an audit result ({err})") from None
    kinds = {d.get("command") for d in docs}
    if kinds == {"privacy utility"}:
        return _combine_utility(args, docs)
    if kinds != {"privacy audit"}:
        raise ConfigError(
            "every folder must hold the results of `ddapps privacy audit`, or every one of `ddapps privacy utility`"
        )
    base = {k: v for k, v in docs[0]["config"].items() if k != "seeds"}
    if any({k: v for k, v in d["config"].items() if k != "seeds"} != base for d in docs[1:]):
        raise ConfigError("the audits differ in more than their seeds; combine only runs of the same settings")
    seeds = [s for d in docs for s in d["config"]["seeds"]]
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"the audits share seeds {seeds}; each seed may appear once")
    rows = [r for d in docs for r in d["rows"]]
    result = {"rows": rows, "summary": summarize(rows), "memorization": [m for d in docs for m in d["memorization"]],
              "privacy": [p for d in docs for p in d["privacy"]]}  # fmt: skip
    config = SimpleNamespace(pool_size=base["pool_size"], n_canaries=base["canaries"], shadows=base["shadows"],
                             dp_deterministic_noise=base["dp_deterministic_noise"])  # fmt: skip
    cfg = base | {"seeds": seeds, "combined_from": [str(r) for r in args.runs]}
    report = audit_report(SimpleNamespace(dataset=base["dataset"]), config, seeds, result)
    write_run(args.out, "privacy audit", cfg, docs[0]["environment"]["device"], rows, report,
              summary=result["summary"], memorization=result["memorization"], privacy=result["privacy"])  # fmt: skip
    print(format_table([_shown_summary(r) for r in result["summary"]], SUMMARY_SHOWN))
    return 0


def _combine_utility(args: argparse.Namespace, docs: list[dict[str, Any]]) -> int:
    """Utility curves of different methods on the same data, epsilons and seeds: one table and one plot."""
    from ddapps.errors import ConfigError
    from ddapps.privacy.plot import save_utility_plot
    from ddapps.report import format_table, write_run

    shared = ("dataset", "epsilons", "seeds", "train_size")
    base = {k: docs[0]["config"].get(k) for k in shared}
    if any({k: d["config"].get(k) for k in shared} != base for d in docs[1:]):
        raise ConfigError(f"utility curves combine only with the same {', '.join(shared)}")
    methods = [m for d in docs for m in d["config"]["methods"]]
    if len(set(methods)) != len(methods):
        raise ConfigError(f"the curves share methods {methods}; each method may appear once")
    summary = [s for d in docs for s in d["summary"]]
    args.out.mkdir(parents=True, exist_ok=True)
    title = f"{base['dataset']}: test accuracy vs epsilon ({len(base['seeds'])} seed(s))"
    save_utility_plot(summary, args.out / "utility.png", title=title)
    shown = [{k: v for k, v in r.items() if v is not None} for r in summary]
    table = format_table(shown, ("method", "epsilon", "n_seeds", "acc_mean", "private"))
    settings = [f"- {', '.join(d['config']['methods'])}: `{d['command_line']}`" for d in docs]
    report = "\n\n".join([f"# Privacy-utility curve: {base['dataset']}", "Combined from:\n" + "\n".join(settings),
                           table, "![utility](utility.png)"]) + "\n"  # fmt: skip
    cfg = base | {"methods": methods, "runs": {str(r): d["config"] for r, d in zip(args.runs, docs)}}
    write_run(args.out, "privacy utility", cfg, docs[0]["environment"]["device"], [r for d in docs for r in d["rows"]],
              report, summary=summary, privacy=[p for d in docs for p in d["privacy"]])  # fmt: skip
    print(table)
    return 0


def audit_report(args: Any, config: Any, seeds: list[int], result: dict[str, Any]) -> str:
    """``report.md`` of the audit."""
    from ddapps.report import command_line, format_table

    mem_cols = ["seed", "target", "init", "epsilon", "nn_dist_member_mean", "nn_dist_nonmember_mean", "nn_dist_member_min",
                "closer_to_member_frac"]  # fmt: skip
    noise = ("**NOT private (deterministic noise)**: --dp-deterministic-noise seeds the DP noise; the epsilons are "
             "nominal, no row carries a guarantee." if config.dp_deterministic_noise
             else "DP noise from the operating system's secret source: rows with a finite epsilon carry the guarantee "
                  "(`private`).")  # fmt: skip
    parts = [
        f"# Privacy audit: {args.dataset}",
        f"`{command_line()}`",
        noise,
        f"Pool of {config.pool_size} training images, half members; {config.n_canaries} mislabelled canaries "
        f"(subset `canary`: member vs non-member canaries); LiRA with {config.shadows} shadows (each record IN for "
        "half). AUC 0.5 = no leakage; 95% bootstrap intervals; `eps_lb`: empirical lower bound on epsilon "
        "(Clopper-Pearson, delta = dp_delta, max over thresholds); `within_bound`: eps_lb <= accounted epsilon.",
        f"## Mean ± std over seeds {', '.join(map(str, seeds))}",
        format_table([_shown_summary(r) for r in result["summary"]], SUMMARY_SHOWN),
        "## Per seed",
        format_table([_shown_row(r) for r in result["rows"]], SHOWN),
        "## Memorisation",
        "L2 distance from each synthetic image to its nearest member / non-member (normalised pixels); closest pairs "
        "in `closest_pairs.png`.",
        format_table([r | {"epsilon": _dash(r["epsilon"])} for r in result["memorization"]], mem_cols),
    ]
    return "\n\n".join(parts) + "\n"


def _dash(value: Any) -> Any:
    return "-" if value is None else value


def _ci(row: dict[str, Any], key: str) -> str:
    low, high = row.get(f"{key}_ci_low"), row.get(f"{key}_ci_high")
    return f"{row[key]:.3f}" + ("" if low is None else f" [{low:.3f}, {high:.3f}]")


def _shown_row(row: dict[str, Any]) -> dict[str, Any]:
    return row | {
        "epsilon": _dash(row["epsilon"]), "AUC [95% CI]": _ci(row, "auc"), "TPR@0.1%FPR [CI]": _ci(row, "tpr_at_0.1fpr"),
        "TPR@1%FPR [CI]": _ci(row, "tpr_at_1fpr"), "eps_spent": _dash(row["eps_spent"]),
        "within_bound": _dash(row["within_bound"]),
    }  # fmt: skip


def _mean_std(row: dict[str, Any], key: str, fmt: str = ".3f") -> str:
    std = row[f"{key}_std"]
    return f"{row[f'{key}_mean']:{fmt}}" + ("" if std is None else f" ± {std:{fmt}}")


def _shown_summary(row: dict[str, Any]) -> dict[str, Any]:
    return row | {
        "epsilon": _dash(row["epsilon"]), "AUC": _mean_std(row, "auc"), "TPR@0.1%FPR": _mean_std(row, "tpr_at_0.1fpr"),
        "TPR@1%FPR": _mean_std(row, "tpr_at_1fpr"), "eps_lb": _mean_std(row, "eps_lb", ".2f"),
        "test acc (%)": _mean_std(row, "test_acc", ".2f"), "within_bound": _dash(row["within_bound"]),
    }  # fmt: skip


def run_utility_command(args: argparse.Namespace) -> int:
    import dataclasses

    from ddapps.cli.common import load_benchmark, setup_run
    from ddapps.privacy.plot import save_utility_plot
    from ddapps.privacy.utility import UtilityConfig, check_sizes, run_utility
    from ddapps.report import command_line, format_table, write_run

    seeds = args.seeds or [args.seed]
    if args.train_size < 0:
        from ddapps.errors import ConfigError

        raise ConfigError("--train-size must be >= 0 (0: the whole training split)")
    config = UtilityConfig(
        methods=tuple(args.methods), epsilons=tuple(args.epsilons), seeds=tuple(seeds),
        train_size=args.train_size or None, pipeline=pipeline_config(args),
    )  # fmt: skip
    device = setup_run(args)
    real = load_benchmark(args, public_stats=True)
    check_sizes(real, config)
    _say(args, f"utility: {len(config.methods)} method(s) x {len(config.epsilons)} epsilons x {len(seeds)} seed(s) = "
               f"{config.runs} model trainings; the progress bar extrapolates the time")  # fmt: skip
    bar, step = _progress(config.runs, args, "utility")
    result = run_utility(real, config, device=device, on_model=step)
    bar.close()
    args.out.mkdir(parents=True, exist_ok=True)
    title = f"{args.dataset}: test accuracy vs epsilon ({len(seeds)} seed(s))"
    save_utility_plot(result["summary"], args.out / "utility.png", title=title)
    cfg = dataclasses.asdict(config.pipeline_config) | {
        "dataset": args.dataset, "methods": list(config.methods), "seeds": seeds, "train_size": config.train_size,
        "budget": args.budget,
    }  # fmt: skip
    cfg["epsilons"] = [e if math.isfinite(e) else "inf" for e in config.epsilons]
    shown = [{k: v for k, v in r.items() if v is not None} for r in result["summary"]]
    table = format_table(shown, ("method", "epsilon", "n_seeds", "acc_mean", "private"))
    noise = ("**NOT private (deterministic noise)**: the epsilons are nominal." if config.pipeline.dp_deterministic_noise
             else "DP noise from the operating system's secret source; `inf` = clipping without noise.")  # fmt: skip
    report = "\n\n".join([
        f"# Privacy-utility curve: {args.dataset}", f"`{command_line()}`", noise,
        f"Test accuracy (mean ± sample std over seeds {', '.join(map(str, seeds))}); training data: "
        f"{'the whole training split' if config.train_size is None else f'a stratified subset of {config.train_size} images'}.",
        table, "![utility](utility.png)",
    ]) + "\n"  # fmt: skip
    write_run(args.out, "privacy utility", cfg, device, result["rows"], report,
              summary=result["summary"], privacy=result["privacy"])  # fmt: skip
    print(table)
    return 0
