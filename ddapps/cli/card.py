"""``ddapps card``: evaluate synthetic sets against real-image baselines under every label regime.

    ddapps card runs/mnist-dm10/synset.safetensors --dataset mnist --out runs/mnist-dm10/card
    ddapps card runs/dm runs/dsa runs/sre2l runs/rded --dataset cifar10 --teacher t.safetensors --out runs/card
    ddapps card SET --dataset cifar10 --teacher teachers/c10.safetensors --nets convnet,resnet18,vgg11,mlp

Writes ``card.md`` (tables), ``card.json`` (every accuracy) and ``card.png`` into ``--out``. Without
``--teacher`` a teacher is trained with the budget's ``teacher`` settings (``OUT/teacher.safetensors``)
unless a set records one, which must then be passed. Several sets share one card (one row each, named
by method; the baselines selected and evaluated once). See docs/evaluation.md.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger("ddapps.card")
AUGMENT = {"both": (True, False), "dsa": (True,), "none": (False,)}


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``card`` subcommand to ``ddapps``' subparsers; return it."""
    from ddapps.bench.card import BASELINES
    from ddapps.cli.common import add_data_args, add_run_args, str_list

    p = subparsers.add_parser("card", help="the honest evaluation card of a synthetic set")
    p.add_argument(
        "sets", type=Path, nargs="+", metavar="SET",
        help="one or more .safetensors synthetic sets (or folders holding synset.safetensors) of equal image bytes",
    )  # fmt: skip
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
    p.add_argument(
        "--coreset-keep", choices=("validation", "hardest", "easiest"), default="validation",
        help="forgetting/EL2N keep their hardest or easiest images; validation: the better on the validation split",
    )  # fmt: skip
    add_run_args(p)
    return p


def row_names(paths: list[Path], synsets: list[Any], reserved: tuple[str, ...]) -> list[str]:
    """Row names: ``set`` for a single set; otherwise each set's method (or file stem), made unique and
    kept apart from the baselines' names (``reserved``: a random set becomes ``random-set``)."""
    if len(synsets) == 1:
        return ["set"]
    names: list[str] = []
    for path, synset in zip(paths, synsets):
        base = str(synset.meta.get("method") or (path.name if path.is_dir() else path.stem))
        base = f"{base}-set" if base in reserved else base
        name, k = base, 2
        while name in names:
            name, k = f"{base}-{k}", k + 1
        names.append(name)
    return names


def run(args: argparse.Namespace) -> int:
    """Build the card ``args`` describe; return the exit status."""
    from ddapps.bench.card import card_teacher, run_card, set_info, settings_from_budget, teacher_info
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
        coreset_keep=args.coreset_keep,
    )  # validated before any data loads
    device = setup_run(args)
    synsets = [SyntheticSet.load(path) for path in args.sets]
    benchmark = load_benchmark(args, val_fraction=args.val_fraction)
    for synset in synsets:
        check_compatible(synset, benchmark)
    names = row_names(args.sets, synsets, settings.baselines)
    teacher, origin = None, dict[str, Any]()
    if settings.needs_teacher:
        teacher, origin = card_teacher(
            args.teacher,
            benchmark,
            synsets,
            args.budget,
            args.out / "teacher.safetensors",
            seed=args.seed,
            device=device,
        )
    named = dict(zip(names, synsets))
    card = run_card(named, benchmark, settings, teacher=teacher, device=device, log=None if args.quiet else log.info)
    infos = {name: set_info(path, synset) for name, path, synset in zip(names, args.sets, synsets)}
    card |= {"sets": infos, "dataset": benchmark.describe(), "teacher": teacher_info(teacher, origin)}
    if len(infos) == 1:
        card["set"] = infos["set"]
    card = score_card(card)
    write_card(args.out, card, command_line())
    for s in card["scores"]:
        if s["row"] in named:
            row = f"{s['row']} " if len(named) > 1 else ""
            lrs = f", LRS {s['lrs']['mean']:.3f}" if "lrs" in s else ""
            ars = f", ARS {s['ars']['mean']:.3f}" if "ars" in s else ""
            print(f"{row}{s['net']} {s['regime']}: gain over random {s['ior']['mean']:+.2f} points{lrs}{ars}")
    print(f"wrote {args.out}/card.md, card.json, card.png")
    return 0
