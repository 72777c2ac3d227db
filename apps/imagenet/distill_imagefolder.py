"""SRe2L and RDED on your copy of an ImageNet-scale image folder: teacher -> distil -> evaluate.

    python apps/imagenet/distill_imagefolder.py --data-dir ~/data/imagenette2 --image-size 224 --out runs/nette
    python apps/imagenet/distill_imagefolder.py --data-dir ~/data/tiny-imagenet --image-size 64 --nproc 8 --out runs/tiny
    python apps/imagenet/distill_imagefolder.py --data-dir ~/data/imagenet --image-size 224 --max-per-class 100 ...

The folder is torchvision's ImageFolder layout, ``DIR/train/<class>/*`` (and ``DIR/test/<class>/*``,
else 20% of train is held out); Imagenette's ``val/`` and Tiny-ImageNet's ``val/`` must be laid out
(or linked) as ``test/<class>/``. Images are resized to ``--image-size`` (shorter side, centre crop)
and held in memory as float32: ImageNet-1k needs ``--max-per-class`` (see :mod:`ddapps.data.imagefolder`).

Steps: (1) the teacher, a ResNet-18 with batch norm (SRe2L's recover reads its BN statistics) and
the ImageNet stem at 128 px and above (the small-image stem below, as the papers' Tiny-ImageNet
ResNet-18), trained ``--teacher-epochs`` on the training split, or loaded from ``OUT/teacher.safetensors``
when it is there (hash verified); (2) each of ``--methods`` (SRe2L: Yin, Xing & Shen, NeurIPS 2023;
RDED: Sun et al., CVPR 2024) at ``--ipc`` with the papers' defaults, overridden by ``--set
METHOD.KEY=VALUE``, in this process or, with ``--nproc N > 1``, under ``torchrun`` with the units
split over N ranks (:mod:`ddapps.distributed`); (3) the evaluation protocol with ``--eval-net``
(``--n-eval`` nets x ``--eval-epochs``), labels from the teacher run online on every augmented batch
(``--regime kd``, how both papers evaluate) or the set's stored soft labels (``--regime stored``).
Writes ``OUT/teacher.safetensors``, ``OUT/<method>/synset.safetensors`` and ``OUT/results.json`` +
``OUT/report.md``: per method seconds, peak memory, stored floats and accuracy.

A pipeline check on CPU (numbers meaningless) is ``tests/test_imagefolder_app.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence

METHODS = ("sre2l", "rded")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    from ddapps.cli.common import Parser, add_run_args, int_list, str_list

    p = Parser(prog="distill_imagefolder.py", description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", required=True, help="the image folder (DIR/train/<class>/*)")
    p.add_argument("--image-size", type=int, default=224, help="S x S after resize + centre crop")
    p.add_argument("--max-per-class", type=int, default=None, help="read at most N train images a class")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--methods", type=str_list, default=list(METHODS))
    p.add_argument("--ipc", type=int_list, default=[10])
    p.add_argument("--set", action="append", default=[], metavar="METHOD.KEY=VALUE", help="a method option (JSON)")
    p.add_argument("--teacher-epochs", type=int, default=50)
    p.add_argument("--teacher-options", default=None, metavar="JSON", help='ResNet-18 options, e.g. \'{"width": 32}\'')
    p.add_argument("--teacher-batch", type=int, default=256)
    p.add_argument("--nproc", type=int, default=1, help="ranks for the distillation (torchrun), e.g. the GPUs")
    p.add_argument("--eval-net", default="resnet18")
    p.add_argument("--n-eval", type=int, default=3)
    p.add_argument("--eval-epochs", type=int, default=300)
    p.add_argument("--eval-batch", type=int, default=256)
    p.add_argument("--regime", choices=("kd", "stored"), default="kd")
    p.add_argument("--temperature", type=float, default=None, help="KD temperature (default: the regime's)")
    add_run_args(p)
    return p.parse_args(argv)


def method_sets(items: Sequence[str], methods: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``["sre2l.iterations=100", ...]`` -> ``{"sre2l": {"iterations": 100}, "rded": {}}``."""
    from ddapps.cli.common import parse_key_values
    from ddapps.errors import ConfigError

    out: dict[str, dict[str, Any]] = {m: {} for m in methods}
    for key, value in parse_key_values(items, "--set").items():
        method, dot, option = key.partition(".")
        if not dot or method not in out:
            raise ConfigError(f"--set expects METHOD.KEY=VALUE with METHOD one of {', '.join(methods)}, got {key!r}")
        out[method][option] = value
    return out


def teacher_for(args: argparse.Namespace, benchmark: Any, device: Any) -> tuple[Any, dict[str, Any]]:
    """Load ``OUT/teacher.safetensors`` or train and save it; returns the teacher and its report."""
    from ddapps.teacher import load_teacher, save_teacher, train_teacher
    from ddapps.utils.atomic import write_json
    from ddapps.utils.seeding import derive_seed, make_generator

    path = args.out / "teacher.safetensors"
    if path.is_file():
        teacher = load_teacher(path, expect_classes=list(benchmark.class_names))
        report_file = path.with_name("teacher.train.json")
        return teacher, json.loads(report_file.read_text()) if report_file.is_file() else {"loaded": str(path)}
    options = {"stem": "imagenet" if args.image_size >= 128 else "cifar"} | json.loads(args.teacher_options or "{}")
    teacher, report = train_teacher(
        benchmark, "resnet18", options, epochs=args.teacher_epochs, batch_size=args.teacher_batch,
        generator=make_generator(derive_seed(args.seed, "teacher")), device=device,
    )  # fmt: skip
    save_teacher(path, teacher)
    write_json(path.with_name("teacher.train.json"), report)
    return teacher, report


def distill_ranks(args: argparse.Namespace, method: str, ipc: int, overrides: dict[str, Any], out: Path) -> dict[str, Any]:
    """Run ``method`` under torchrun with ``--nproc`` ranks; the row rank 0 wrote."""
    sets = [f"--set={key}={json.dumps(value)}" for key, value in overrides.items()]
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={args.nproc}",
        "-m", "ddapps.distributed", "--method", method, "--dataset", "imagefolder", "--data-dir", args.data_dir,
        "--image-size", str(args.image_size), "--ipc", str(ipc), "--out", str(out), "--seed", str(args.seed),
        "--device", args.device, "--precision", args.precision, "--quiet", *sets,
    ]  # fmt: skip
    if args.max_per_class is not None:
        cmd += ["--max-per-class", str(args.max_per_class)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    subprocess.run(cmd, check=True, env=os.environ | {"OMP_NUM_THREADS": str(args.threads or 1)})
    return dict(json.loads((out / "results.json").read_text())["rows"][0])


def main(argv: Sequence[str] | None = None) -> int:
    from ddapps.cli.common import setup_run
    from ddapps.data import load_dataset
    from ddapps.errors import ConfigError, DDAppsError
    from ddapps.evaluation import EvalConfig, evaluate_synset
    from ddapps.evaluation.regimes import LabelRegime
    from ddapps.report import command_line, format_table, write_run
    from ddapps.runner import distill_and_evaluate
    from ddapps.synthetic import SyntheticSet

    args = parse_args(argv)
    try:
        unknown = sorted(set(args.methods) - set(METHODS))
        if unknown:
            raise ConfigError(f"--methods takes {', '.join(METHODS)}, got {', '.join(unknown)}")
        sets = method_sets(args.set, args.methods)
        device = setup_run(args)
        benchmark = load_dataset(
            "imagefolder", args.data_dir, image_size=args.image_size, max_per_class=args.max_per_class, seed=args.seed
        )
        args.out.mkdir(parents=True, exist_ok=True)
        teacher, teacher_report = teacher_for(args, benchmark, device)
        eval_options = teacher.net_options if args.eval_net == "resnet18" else {}
        eval_config = EvalConfig(
            net=args.eval_net, net_options=dict(eval_options), n_eval=args.n_eval, epochs=args.eval_epochs,
            batch_size=args.eval_batch,
        )  # fmt: skip
        regime_options = {} if args.temperature is None else {"temperature": args.temperature}
        regime = LabelRegime("kd", teacher=teacher, **regime_options) if args.regime == "kd" else None
        rows = []
        for method in args.methods:
            for ipc in args.ipc:
                out = args.out / f"{method}-ipc{ipc}"
                overrides = sets[method] | {"teacher": str(args.out / "teacher.safetensors")}
                if args.nproc > 1:
                    row = distill_ranks(args, method, ipc, overrides, out)
                    synset = SyntheticSet.load(out / "synset.safetensors")
                else:
                    result = distill_and_evaluate(
                        benchmark, method, ipc, overrides=overrides, eval_config=None, seed=args.seed, device=device,
                        progress=not args.quiet,
                    )  # fmt: skip
                    synset, row = result.synset, result.row(benchmark.name) | {"world_size": 1}
                    synset.save(out / "synset.safetensors")
                start = time.perf_counter()
                evaluation = evaluate_synset(synset, benchmark, eval_config, seed=args.seed, device=device, regime=regime)
                row |= {
                    "acc_mean": evaluation.mean, "acc_std": evaluation.std, "n_eval": len(evaluation.accuracies),
                    "accuracies": evaluation.accuracies, "eval_seconds": round(time.perf_counter() - start, 3),
                    "regime": args.regime, "teacher_agreement": synset.meta.get("teacher_agreement"),
                }  # fmt: skip
                rows.append(row)
                print(format_table([row], ["method", "ipc", "world_size", "distill_seconds", "peak_mem_mb", "acc_mean"]))
    except DDAppsError as err:
        print(f"ddapps: error: {err}", file=sys.stderr)
        return 2
    columns = ["method", "ipc", "world_size", "distill_seconds", "peak_mem_mb", "stored_floats", "acc_mean", "acc_std"]
    table = format_table(rows, columns)
    config = {
        "data_dir": "(user's folder)", "image_size": args.image_size, "max_per_class": args.max_per_class,
        "methods": args.methods, "ipc": args.ipc, "sets": sets, "teacher": teacher_report, "eval": eval_config.__dict__,
        "regime": args.regime, "nproc": args.nproc, "seed": args.seed,
    }  # fmt: skip
    command = command_line("apps/imagenet/distill_imagefolder.py")
    report = (
        f"# SRe2L / RDED on an image folder\n\nCommand: `{command}`\n\n"
        f"Teacher: ResNet-18 {teacher.net_options}, hash {teacher.hash[:12]}, test accuracy "
        f"{teacher_report.get('test_accuracy')}.\n\n{table}\n"
    )
    write_run(args.out, "imagefolder sre2l/rded", config, device, rows, report)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
