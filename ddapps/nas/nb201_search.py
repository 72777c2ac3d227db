"""``ddapps nas search --space nas-bench-201``: search NAS-Bench-201 cells on a proxy with NNI, and
say what the search found by the benchmark's ground truth.

The search is :func:`~ddapps.nas.search.run_search` over :class:`~ddapps.nas.nb201_space.NB201Space`
(NNI's engine and strategies, the proxy evaluator of :mod:`ddapps.nas.evaluator`). Unless
``--no-random-baseline``, random search runs with the same trial budget, evaluator and seed, so the
two picks compare at equal cost. Each pick is looked up in the ground-truth CSV (the 200-epoch
accuracy of the full-size benchmark network), next to the best cell any trial visited and the best of
the whole space. The strategy's pick is then retrained on the full training split at the proxy size
(``--retrain-steps``) and exported: ``best_architecture.json`` (benchmark string, ground truth) and
``best_weights.safetensors``; its test accuracy is measured once.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from ddapps.errors import ConfigError


def cmd_search_truth(args: argparse.Namespace) -> int:
    from ddapps.evaluation.training import test_accuracy
    from ddapps.nas.commands import _prepare, search_config_of, validation_images
    from ddapps.nas.evaluator import make_evaluator
    from ddapps.nas.nb201 import build_nb201, format_arch
    from ddapps.nas.nb201_space import NB201Space
    from ddapps.nas.nb201_truth import load_truth, truth_path
    from ddapps.nas.proxy_data import save_tensors
    from ddapps.nas.training import StepBudget, train_steps
    from ddapps.nas.truth_command import _truth_key
    from ddapps.report import command_line, format_table, write_run
    from ddapps.utils.atomic import atomic_path, write_json
    from ddapps.utils.seeding import derive_seed, make_generator

    config = search_config_of(args)
    retrain = StepBudget(args.retrain_steps, args.batch_size)
    key = _truth_key(args.dataset)
    truth = load_truth(truth_path(args.truth, args.data_dir))
    ctx = _prepare(args)
    benchmark, device = ctx["benchmark"], ctx["device"]
    out: Path = args.out
    val_x, val_y = validation_images(benchmark, args.val_size)
    val_path = save_tensors(out / "val.safetensors", val_x, val_y)
    space = NB201Space(benchmark.channels, benchmark.num_classes, args.nb201_channels, args.nb201_cells)
    evaluator = make_evaluator(
        {str(ctx["proxy"]): str((out / "synset.safetensors").resolve())}, str(val_path.resolve()),
        steps=args.proxy_steps, batch_size=args.batch_size, seed=args.seed, device=str(device),
        resolution=args.proxy_resolution,
    )  # fmt: skip
    runs = {config.strategy: config}
    if config.strategy != "random" and not args.no_random_baseline:
        runs["random"] = replace(config, strategy="random")
    rows, best_ops, all_trials = [], None, []
    for name, search_config in runs.items():
        row, ops, trials = _search_row(space, evaluator, search_config, out / f"nni-{name}", truth, key)
        rows.append(row)
        all_trials += [t | {"strategy": name} for t in trials]
        best_ops = best_ops or ops
    assert best_ops is not None
    gen = make_generator(derive_seed(args.seed, "nas", "retrain", format_arch(best_ops)))
    net = build_nb201(
        best_ops, benchmark.channels, benchmark.num_classes, channels=args.nb201_channels,
        cells_per_stage=args.nb201_cells, generator=gen,
    )  # fmt: skip
    seconds = train_steps(net, benchmark.train.images, benchmark.train.labels, retrain, generator=gen, device=device)
    exported = {
        "arch": format_arch(best_ops), "truth_acc": truth[best_ops][key], "strategy": config.strategy,
        "channels": args.nb201_channels, "cells_per_stage": args.nb201_cells, "retrain_steps": retrain.steps,
        "retrain_seconds": seconds, "val_acc": test_accuracy(net, val_x, val_y, device=device),
        "test_acc": test_accuracy(net, benchmark.test.images, benchmark.test.labels, device=device),
    }  # fmt: skip
    _save_weights(net, out / "best_weights.safetensors", atomic_path)
    write_json(out / "best_architecture.json", exported)
    columns = ["strategy", "trials", "failed", "picked", "picked_truth", "best_visited_truth", "space_best_truth",
               "regret", "picked_proxy_acc", "search_seconds"]  # fmt: skip
    table = format_table([r | {"picked": r["picked"].replace("|", "\\|")} for r in rows], columns)
    report = (
        f"# ddapps nas search: NAS-Bench-201\n\nCommand: `{command_line()}`\n\n"
        f"Each trial trains the cell at C={args.nb201_channels}, N={args.nb201_cells} for {args.proxy_steps} SGD steps x "
        f"batch {args.batch_size} on {ctx['proxy']} (IPC {args.ipc}) and is scored on {len(val_y)} validation images "
        f"carved from the training split. `*_truth`: the benchmark's 200-epoch {key} test accuracy of the full-size "
        f"network (C=16, N=5). Regret: best of the space minus the pick.\n\n{table}\n\n"
        f"Exported: `{exported['arch']}` (ground truth {exported['truth_acc']:.2f}%), retrained {retrain.steps} steps "
        f"on the full training split at the proxy size: validation {exported['val_acc']:.2f}%, test "
        f"{exported['test_acc']:.2f}% (`best_weights.safetensors`).\n"
    )
    run_config = {
        "dataset": benchmark.describe(), "space": "nas-bench-201", "proxy": str(ctx["proxy"]), "ipc": args.ipc,
        "distill_overrides": ctx["overrides"], "distill_seconds": ctx["distill_seconds"],
        "searches": {name: asdict(c) for name, c in runs.items()}, "proxy_steps": args.proxy_steps,
        "channels": args.nb201_channels, "cells_per_stage": args.nb201_cells,
    }  # fmt: skip
    write_run(out, "nas search", run_config, device, rows, report, exported=exported, trials=all_trials)
    print(table)
    print(f"wrote {out}/results.json, report.md, best_architecture.json, best_weights.safetensors")
    return 0


def _search_row(
    space: Any, evaluator: Any, config: Any, workdir: Path, truth: Any, key: str
) -> tuple[dict[str, Any], tuple[str, ...], list[dict[str, Any]]]:
    from ddapps.nas.nb201 import format_arch
    from ddapps.nas.nb201_space import sample_to_ops
    from ddapps.nas.search import run_search

    result = run_search(space, evaluator, config, workdir)
    if not result.top:
        raise ConfigError(f"no {config.strategy} trial succeeded ({result.failed} failed); see {workdir}")
    picked = sample_to_ops(result.top[0]["sample"])
    visited = [sample_to_ops(t["sample"]) for t in result.trials if t["sample"] and t["status"] != "failed"]
    space_best = max(v[key] for v in truth.values())
    trials = [
        {"trial": t["trial"], "status": t["status"], "proxy_val_acc": t["metric"],
         **({"arch": format_arch(sample_to_ops(t["sample"])), "truth": truth[sample_to_ops(t["sample"])][key]}
            if t["sample"] else {})}
        for t in result.trials
    ]  # fmt: skip
    row = {
        "strategy": config.strategy, "trials": len(result.trials), "failed": result.failed,
        "picked": format_arch(picked), "picked_truth": truth[picked][key],
        "best_visited_truth": max(truth[v][key] for v in visited), "space_best_truth": space_best,
        "regret": space_best - truth[picked][key], "picked_proxy_acc": result.top[0]["metric"],
        "search_seconds": result.seconds,
    }  # fmt: skip
    return row, picked, trials


def _save_weights(net: Any, path: Path, atomic_path: Any) -> None:
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file({k: v.detach().contiguous() for k, v in net.state_dict().items()}, str(tmp))
