"""Combine the rows of several ``ddapps continual`` runs into one table, paired margins and figure.

Runs made with the same seeds share the learner's initial weights and the stream (the seeds derive
them), so the rows of separate runs pair by seed, as the rows of one run do. A run's label (after
``=``) is appended to its distilled rows (``distilled:dm [conv-100]``), to tell two settings of one
method apart. Rows written before ``acc_per_experience_std`` existed get their per-seed curves back
from the run's Avalanche text logs (``logs/<buffer>_<protocol>_seed<k>/log.txt``).

    python -m ddapps.continual.combine --run runs/a/results.json=small --run runs/b/results.json \\
        --title "Split-CIFAR-10, memory 100" --out runs/combined

writes ``combined.json`` (the rows, with ``source``), ``combined.md`` (table with per-seed values
and 95% t-intervals, margins with paired intervals) and ``accuracy_per_experience.png``.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path
from typing import Any, Sequence

from ddapps.errors import ConfigError
from ddapps.utils.atomic import write_json, write_text

STREAM_LINE = re.compile(r"Top1_Acc_Stream/eval_phase/test_stream(?:/Task\d+)? = ([0-9.]+)")


def load_rows(spec: str) -> list[dict[str, Any]]:
    """The rows of ``PATH[=LABEL]`` (a ``results.json``), labelled and with per-seed curves."""
    path_text, _, label = spec.partition("=")
    path = Path(path_text)
    if not path.is_file():
        raise ConfigError(f"no results file at {path}")
    try:
        rows = json.loads(path.read_text())["rows"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path} is not a ddapps continual results.json ({exc})") from None
    out = []
    for row in rows:
        row = dict(row, source=str(path))
        if "acc_per_experience_std" not in row:
            row["acc_per_experience_std"] = _std_from_logs(path.parent / "logs", row)
        if label and row["buffer"].startswith("distilled:"):
            row["buffer"] = f"{row['buffer']} [{label}]"
        out.append(row)
    return out


def _std_from_logs(logs: Path, row: dict[str, Any]) -> list[float] | None:
    curves = []
    for seed in range(int(row["seed_count"])):
        log = logs / f"{row['buffer'].replace(':', '-')}_{row['protocol']}_seed{seed}" / "log.txt"
        if not log.is_file():
            return None
        curves.append([100.0 * float(v) for v in STREAM_LINE.findall(log.read_text())])
    finals = [c[-1] for c in curves if c]
    if len(curves) < 2 or [round(f, 6) for f in finals] != [round(f, 6) for f in row["final_acc_per_seed"]]:
        return None  # the logs are not this row's runs (seeds other than 0..n-1): draw no band
    return [statistics.stdev(values) for values in zip(*curves)]


def report(rows: Sequence[dict[str, Any]], title: str) -> str:
    """Markdown: a table with per-seed values and 95% t-intervals, then the paired margins."""
    from ddapps.continual.outputs import margins
    from ddapps.report import format_table
    from ddapps.utils.intervals import t_interval

    shown = []
    for r in rows:
        low, high = t_interval(r["final_acc_per_seed"])
        shown.append(
            {
                "buffer": r["buffer"],
                "protocol": r["protocol"],
                "per seed": " / ".join(f"{v:.1f}" for v in r["final_acc_per_seed"]),
                "final acc": f"{r['final_acc_mean']:.2f} ± {r['final_acc_std']:.2f}",
                "95% CI": f"[{low:.2f}, {high:.2f}]",
                "forgetting": f"{r['forgetting_mean']:.2f}",
                "seconds": f"{r['seconds']:.0f}",
            }
        )
    columns = ["buffer", "protocol", "per seed", "final acc", "95% CI", "forgetting", "seconds"]
    return "\n".join([f"# {title}", "", format_table(shown, columns), "", *margins(rows), ""])


def main(argv: Sequence[str] | None = None) -> int:
    """Command line (see the module docstring)."""
    from ddapps.continual.outputs import save_curves

    p = argparse.ArgumentParser(prog="python -m ddapps.continual.combine", description=__doc__.split("\n")[0])
    p.add_argument("--run", action="append", required=True, help="PATH/results.json[=LABEL] (repeat)")
    p.add_argument("--title", default="ddapps continual")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    try:
        rows = [row for spec in args.run for row in load_rows(spec)]
        seeds = {len(r["final_acc_per_seed"]) for r in rows}
        if len(seeds) != 1:
            raise ConfigError(f"runs with different seed counts cannot be paired: {sorted(seeds)}")
    except ConfigError as exc:
        print(f"ddapps: error: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "combined.json", {"title": args.title, "rows": rows})
    write_text(args.out / "combined.md", report(rows, args.title))
    save_curves(rows, args.out / "accuracy_per_experience.png", title=args.title)
    print(report(rows, args.title))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
