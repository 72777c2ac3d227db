"""``ddapps nas rank`` and ``ddapps nas search``: distilled data as a NAS proxy (extra ``nas``).

This module imports neither NNI nor torch at import time, so ``ddapps --help`` works without
the extra; the commands themselves live in :mod:`ddapps.nas.commands`.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def _add_proxy_args(p: argparse.ArgumentParser) -> None:
    from ddapps.cli.common import add_data_args, add_distill_set_arg, add_run_args

    add_data_args(p)
    p.add_argument(
        "--space", default="convnet720", help="convnet720, nas-bench-201 (rank: against ground truth) or a JSON file"
    )
    p.add_argument("--width-scale", type=float, default=1.0, help="multiply every width of the space (CPU budgets)")
    p.add_argument(
        "--proxy",
        default="distilled:dm",
        help="distilled:METHOD (distil now) or synset:PATH (nas-bench-201 rank: a comma list of them)",
    )
    p.add_argument("--ipc", type=int, default=10, help="images per class of the proxy set")
    p.add_argument(
        "--distill-budget", default="small", help="budget of the distillation (see ddapps.budgets): small | paper"
    )
    add_distill_set_arg(p, "distillation config override (JSON value)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="fraction of train held out for validation")
    p.add_argument("--val-size", type=int, default=1000, help="validation images used to score architectures")
    p.add_argument("--proxy-steps", type=int, default=30, help="SGD steps of training on the proxy")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument(
        "--engine",
        default=None,
        help="NNI engine of the trials: sequential (default; in-process, no web server) | local (NNI training "
        "service: parallel trial processes + web UI) | remote (SSH machines, --machines) | inprocess (rank --space nas-bench-201: no NNI experiment, "
        "same scores)",
    )
    p.add_argument("--concurrency", type=int, default=1, help="parallel trials (local and remote engines)")
    p.add_argument("--machines", default=None, help="remote engine: JSON list of NNI RemoteMachineConfig dicts")
    p.add_argument("--port", type=int, default=8080, help="web UI port (local engine; NNI listens on all interfaces)")
    add_run_args(p)


def _add_truth_args(p: argparse.ArgumentParser) -> None:
    from ddapps.cli.common import int_list

    g = p.add_argument_group("nas-bench-201 (rank against ground truth)")
    g.add_argument("--truth", default=None, help="ground-truth CSV (default $DDAPPS_DATA/nas-bench-201/...)")
    g.add_argument("--seeds", type=int_list, default=[0, 1, 2], help="pipeline seeds (distillation included)")
    g.add_argument("--sampling", default="stratified", help="stratified | top-heavy (half from the best 5%%)")
    g.add_argument("--sample-seed", type=int, default=0, help="seed of the architecture sample (fixed across seeds)")
    g.add_argument("--nb201-channels", type=int, default=8, help="proxy network width C (benchmark: 16)")
    g.add_argument("--nb201-cells", type=int, default=1, help="proxy network cells per stage N (benchmark: 5)")
    g.add_argument(
        "--no-ceiling", action="store_true", help="skip the second training run of every source (the noise ceilings)"
    )
    g.add_argument(
        "--proxy-resolution", type=int, default=None, help="train and score on images pooled to this size (CPU knob)"
    )
    g.add_argument(
        "--herding-set", action="append", default=[], metavar="KEY=VALUE", help="herding coreset config override"
    )


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``nas`` with its ``rank`` and ``search`` sub-commands."""
    from ddapps.cli.common import Parser

    nas = subparsers.add_parser("nas", help="distilled data as an architecture-ranking proxy (NNI)")
    sub = nas.add_subparsers(dest="nas_command", required=True, parser_class=Parser)

    rank = sub.add_parser("rank", help="rank correlation of proxies with full training over sampled architectures")
    _add_proxy_args(rank)
    rank.add_argument(
        "--sample", type=int, default=None, help="architectures sampled from the space (default 24; nas-bench-201 30)"
    )
    rank.add_argument("--reference-steps", type=int, default=300, help="SGD steps of the full-data reference")
    rank.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for the intervals")
    _add_truth_args(rank)

    search = sub.add_parser("search", help="NNI architecture search on the proxy, then retrain the best")
    _add_proxy_args(search)
    search.add_argument(
        "--strategy", default="regularized-evolution", help="random | regularized-evolution | grid | tpe"
    )
    search.add_argument("--trials", type=int, default=20, help="maximum number of trials")
    search.add_argument("--population", type=int, default=100, help="regularized evolution: population size")
    search.add_argument("--tournament", type=int, default=25, help="regularized evolution: tournament (sample) size")
    search.add_argument(
        "--mutation-prob", type=float, default=0.05, help="regularized evolution: per-axis mutation probability"
    )
    search.add_argument("--top-k", type=int, default=3, help="architectures exported")
    search.add_argument("--retrain-steps", type=int, default=300, help="SGD steps retraining the best on the full data")
    t = search.add_argument_group("nas-bench-201 (ground truth of what the search found)")
    t.add_argument("--truth", default=None, help="ground-truth CSV (default $DDAPPS_DATA/nas-bench-201/...)")
    t.add_argument("--nb201-channels", type=int, default=8, help="proxy network width C (benchmark: 16)")
    t.add_argument("--nb201-cells", type=int, default=1, help="proxy network cells per stage N (benchmark: 5)")
    t.add_argument("--no-random-baseline", action="store_true", help="skip random search at the same trial budget")
    t.add_argument(
        "--proxy-resolution", type=int, default=None, help="train and score on images pooled to this size (CPU knob)"
    )
    return nas


def run(args: argparse.Namespace) -> int:
    """Dispatch ``ddapps nas <command>``."""
    from ddapps.nas import commands

    return commands.COMMANDS[args.nas_command](args)
