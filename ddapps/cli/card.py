"""``ddapps card``: evaluate a synthetic set against real-image baselines under every label regime.

    ddapps card runs/mnist-dm10/synset.safetensors --dataset mnist --out runs/mnist-dm10/card
    ddapps card SET --dataset cifar10 --teacher teachers/c10.safetensors --nets convnet,resnet18,vgg11,mlp

Writes ``card.md`` (tables), ``card.json`` (every accuracy) and ``card.png`` into ``--out``. Without
``--teacher`` a teacher is trained with the budget's ``teacher`` settings (``OUT/teacher.safetensors``)
unless the set records one, which must then be passed. See docs/evaluation.md.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from ddapps.errors import ConfigError

log = logging.getLogger("ddapps.card")
AUGMENT = {"both": (True, False), "dsa": (True,), "none": (False,)}


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``card`` subcommand to ``ddapps``' subparsers; return it."""
    from ddapps.bench.card import BASELINES
    from ddapps.cli.common import add_data_args, add_run_args, str_list

    p = subparsers.add_parser("card", help="the honest evaluation card of a synthetic set")
    p.add_argument("set", type=Path, help="a .safetensors synthetic set (or a folder holding synset.safetensors)")
    add_data_args(p)
    p.add_argument("--out", required=True, type=Path, help="folder for card.md, card.json, card.png")
    p.add_argument("--teacher", type=Path, default=None, help="teacher file (ddapps teacher); default: train one")
    p.add_argument("--budget", default="small", help="small (CPU, default), paper or smoke")
    p.add_argument("--regimes", type=str_list, default=None, help="comma list of hard, soft, kd (default: all three)")
    p.add_argument("--augment", choices=sorted(AUGMENT), default="both", help="with DSA, without, or both")
    p.add_argument("--baselines", type=str_list, default=None, help=f"default {','.join(BASELINES)}")
    p.add_argument("--nets", type=str_list, default=None, help="e.g. convnet,resnet18,vgg11,mlp (default convnet)")
    p.add_argument("--n-eval", type=int, default=None, help="evaluation seeds per cell (budget: 5)")
    p.add_argument("--epochs", type=int, default=None, help="evaluation epochs (budget small: 100)")
    p.add_argument("--real-epochs", type=int, default=None, help="epochs on the full real data for HLR")
    p.add_argument("--temperature", type=float, default=None, help="soft/kd temperature (default 1)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="part of train held out for every choice")
    add_run_args(p)
    return p


def _set_info(path: Path, synset: Any) -> dict[str, Any]:
    """Provenance of the set; its distillation seconds from a ``results.json`` beside it, if any."""
    from ddapps.evaluation import stored_bytes

    info: dict[str, Any] = {
        "path": str(path),
        "method": synset.meta.get("method"),
        "ipc": synset.ipc,
        "stored_bytes": stored_bytes(synset),
        "stored_floats": synset.stored_floats(),
        "teacher_hash": synset.meta.get("teacher_hash"),
        "distill_seconds": None,
    }
    results = (path if path.is_dir() else path.parent) / "results.json"
    try:
        rows = json.loads(results.read_text()).get("rows", [])
        seconds = rows[0].get("distill_seconds") if rows and isinstance(rows[0], dict) else None
        info["distill_seconds"] = float(seconds) if isinstance(seconds, (int, float)) else None
    except (OSError, ValueError, AttributeError):
        pass
    return info


def _teacher(args: argparse.Namespace, benchmark: Any, synset: Any, budget: str, device: Any) -> tuple[Any, dict]:
    """The card's teacher: loaded and checked, or trained with the budget's settings."""
    from ddapps.budgets import get_budget
    from ddapps.teacher import check_teacher, epochs_for, load_teacher, train_and_save_teacher

    if args.teacher is not None:
        teacher = load_teacher(args.teacher, expect_classes=list(benchmark.class_names))
        if teacher.dataset != benchmark.name:
            raise ConfigError(f"teacher {args.teacher} was trained on {teacher.dataset}, not {benchmark.name}")
        check_teacher(synset, teacher, required=False)
        return teacher, {"origin": f"loaded from {args.teacher}"}
    if synset.meta.get("teacher_hash"):
        raise ConfigError(f"the set was made with teacher {synset.meta['teacher_hash'][:12]}: pass it with --teacher")
    section = get_budget(budget).section("teacher")
    epochs = epochs_for(section["epochs"], section.get("min_steps", 0), len(benchmark.train))
    teacher, report = train_and_save_teacher(
        benchmark, args.out / "teacher.safetensors", section["net"], section["net_options"],
        epochs=epochs, seed=args.seed, device=device, lr=section.get("lr", 0.01),
    )  # fmt: skip
    origin = (
        f"trained here for {report['epochs']} epochs (epoch {report['best_epoch']} kept by validation accuracy "
        f"{report['val_accuracy']:.2f}%) in {report['seconds']:.0f} s, saved to OUT/teacher.safetensors"
    )
    return teacher, {"origin": origin, "train_seconds": report["seconds"], "val_accuracy": report["val_accuracy"]}


def run(args: argparse.Namespace) -> int:
    """Build the card ``args`` describe; return the exit status."""
    from ddapps.bench.card import run_card, settings_from_budget
    from ddapps.bench.card_report import score_card, write_card
    from ddapps.cli.common import load_benchmark, setup_run
    from ddapps.evaluation.protocol import check_compatible
    from ddapps.report import command_line
    from ddapps.synthetic import SyntheticSet

    settings = settings_from_budget(
        args.budget,
        regimes=tuple(args.regimes) if args.regimes else None,
        augment=AUGMENT[args.augment],
        baselines=tuple(args.baselines) if args.baselines else None,
        nets=tuple(args.nets) if args.nets else None,
        n_eval=args.n_eval,
        eval_epochs=args.epochs,
        real_epochs=args.real_epochs,
        temperature=args.temperature,
        seed=args.seed,
    )  # validated before any data loads
    device = setup_run(args)
    synset = SyntheticSet.load(args.set)
    benchmark = load_benchmark(args, val_fraction=args.val_fraction)
    check_compatible(synset, benchmark)
    teacher, teacher_info = None, None
    if settings.needs_teacher:
        teacher, origin = _teacher(args, benchmark, synset, args.budget, device)
        parameters = sum(p.numel() for p in teacher.net.parameters())
        teacher_info = {"net_name": teacher.net_name, "net_options": teacher.net_options, "hash": teacher.hash}
        teacher_info |= {"parameters": parameters, **origin}
    card = run_card(synset, benchmark, settings, teacher=teacher, device=device, log=None if args.quiet else log.info)
    card |= {"set": _set_info(args.set, synset), "dataset": benchmark.describe(), "teacher": teacher_info}
    card = score_card(card)
    write_card(args.out, card, command_line())
    for s in card["scores"]:
        if s["row"] == "set":
            lrs = f", LRS {s['lrs']['mean']:.3f}" if "lrs" in s else ""
            ars = f", ARS {s['ars']['mean']:.3f}" if "ars" in s else ""
            print(f"{s['net']} {s['regime']}: gain over random {s['ior']['mean']:+.2f} points{lrs}{ars}")
    print(f"wrote {args.out}/card.md, card.json, card.png")
    return 0
