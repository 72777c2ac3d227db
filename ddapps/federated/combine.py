"""``python -m ddapps.federated.combine``: one table from several ``ddapps federated`` runs of one setting.

Runs made with the same configuration but different seeds or modes (e.g. seed 0 first, seeds 1-2
later, an extra mode afterwards) are merged per mode from each run's full per-seed logs
(``rows[*].runs``); the rows are recomputed exactly as ``ddapps federated`` computes them
(:func:`~ddapps.federated.experiment.write_experiment`: bytes, accuracy mean ± sample std, leak
distances, the plot), and a ``comparisons`` table adds, for every mode against ``subset`` and
``fedavg``, the paired difference of final accuracy over the seeds both ran (95% t-interval) and
the ratio of accuracy and of bytes up. Runs whose settings differ beyond mode and seed are refused.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

from ddapps.errors import ConfigError, DataError, exit_status

IGNORED = ("seed", "mode", "rounds", "threads")
"""Config keys that may differ between merged runs (rounds: the one-shot modes run one)."""
FAULT_ONLY = ("quorum", "round-timeout")
"""Keys that change nothing unless a client fails: they may differ between runs without failures."""
BASELINES = ("subset", "fedavg")


def load_logs(path: Path) -> tuple[dict[str, Any], dict[str, list[Any]], bool]:
    """The base config, the per-mode run logs of one ``results.json`` and whether it recorded wire bytes."""
    from ddapps.federated.wire_bytes import RoundLog, RunLog

    try:
        doc = json.loads(Path(path).read_text())
        base = doc["config"]["base_config"]
        logs: dict[str, list[Any]] = {}
        wire = all("wire_bytes_up" in r for row in doc["rows"] for run in row["runs"] for r in run["rounds"])
        for row in doc["rows"]:
            for run in row["runs"]:
                rounds = [RoundLog(**r) for r in run["rounds"]]
                log = RunLog(mode=run["mode"], seed=int(run["seed"]), rounds=rounds, privacy=list(run["privacy"]),
                             leakage=list(run.get("leakage", [])))  # fmt: skip
                logs.setdefault(row["mode"], []).append(log)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DataError(f"{path}: not a ddapps federated results.json ({err})") from None
    return base, logs, wire


def merge(runs: Sequence[tuple[dict[str, Any], dict[str, list[Any]]]]) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """One config and the logs by mode, seeds sorted; refuses differing settings and repeated seeds."""
    first = runs[0][0]
    failed = any(log.failures for _, logs in runs for mode_logs in logs.values() for log in mode_logs)
    ignored = IGNORED if failed else IGNORED + FAULT_ONLY
    merged: dict[str, list[Any]] = {}
    for base, logs in runs:
        diff = sorted(k for k in set(first) | set(base) if k not in ignored and first.get(k) != base.get(k))
        if diff:
            raise ConfigError(f"runs differ in {diff}; only mode and seed may differ")
        for mode, mode_logs in logs.items():
            merged.setdefault(mode, []).extend(mode_logs)
    for mode, mode_logs in merged.items():
        seeds = [log.seed for log in mode_logs]
        if len(seeds) != len(set(seeds)):
            raise ConfigError(f"mode {mode!r} has seed(s) in more than one run: {sorted(seeds)}")
        mode_logs.sort(key=lambda log: log.seed)
    return first, merged


def comparisons(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every mode minus each baseline on their shared seeds: paired difference and ratios."""
    from ddapps.utils.intervals import paired_t_interval

    by = {r["mode"]: r for r in rows}
    out = []
    for row in rows:
        for name in BASELINES:
            base = by.get(name)
            if base is None or name == row["mode"]:
                continue
            shared = sorted(set(row["seeds"]) & set(base["seeds"]))
            if not shared:
                continue
            mine = [row["accuracies"][row["seeds"].index(s)] for s in shared]
            theirs = [base["accuracies"][base["seeds"].index(s)] for s in shared]
            mean, low, high = paired_t_interval(mine, theirs)
            out.append({
                "mode": row["mode"], "minus": name, "seeds": len(shared), "difference": mean, "t_low": low,
                "t_high": high, "accuracy_ratio": sum(mine) / sum(theirs) if sum(theirs) else None,
                "bytes_up_ratio": base["bytes_up"] / row["bytes_up"] if row["bytes_up"] else None,
            })  # fmt: skip
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ddapps.federated.combine", description=__doc__.splitlines()[0])
    p.add_argument("--run", type=Path, action="append", required=True, help="a results.json (repeat)")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    return exit_status(lambda: combine(args.run, args.out))


def combine(paths: Sequence[Path], out: Path) -> None:
    """Merge the runs at ``paths`` into ``out`` (results.json, report.md, the plot, comparisons.json)."""
    from ddapps.federated.experiment import write_experiment
    from ddapps.federated.settings import FederatedConfig
    from ddapps.report import format_table
    from ddapps.utils.atomic import write_json

    loaded = [load_logs(path) for path in paths]
    base, logs = merge([(b, mode_logs) for b, mode_logs, _ in loaded])
    config = FederatedConfig.from_flat(base)
    out.mkdir(parents=True, exist_ok=True)
    command = "python -m ddapps.federated.combine " + " ".join(f"--run {r}" for r in paths)
    if not all(wire for _, _, wire in loaded):  # a mean over seeds with missing values would mislead
        command += "  (wire bytes: n/a, a merged run predates them)"
        for mode_logs in logs.values():
            for log in mode_logs:
                for entry in log.rounds:
                    entry.wire_bytes_up = entry.wire_bytes_down = 0
    rows = write_experiment(out, config, logs, command=command)
    table = comparisons(rows)
    write_json(out / "comparisons.json", table)
    text = format_table(
        [c | {k: f"{c[k]:.2f}" for k in ("difference", "t_low", "t_high")} for c in table],
        ["mode", "minus", "seeds", "difference", "t_low", "t_high", "accuracy_ratio", "bytes_up_ratio"],
    ) if table else "no shared seeds"  # fmt: skip
    print(text)
    print(f"wrote {out}/results.json, report.md, accuracy_vs_bytes.png, comparisons.json")


if __name__ == "__main__":
    sys.exit(main())
