"""Choosing a federated setting on a validation split: ``ddapps federated --select KEY=V1,V2 ...``.

Every combination of the ``--select`` values (a grid, in the order given) runs every requested mode
for every seed with ``evaluate="validation"`` (:class:`~ddapps.federated.settings.FederatedConfig`):
the global model is scored on a stratified 10% of the *training* split that no client holds, so the
test split is never read. Per mode, the pick is the combination with the highest mean final
validation accuracy over the seeds (ties: the earlier one in grid order). ``selection.json`` and
``selection.md`` in ``--out`` hold every candidate's accuracies and bytes up, the pick per mode
(``selected_on: "validation"``) and the flags that rerun the pick on the test split.

A key that is a field of the config (``ipc``, ``server_epochs``, ``local_epochs``, ...) sets it;
any other key is a method option, as with ``--set`` (values are JSON, else strings; they are split
at commas, so a JSON object with commas cannot be a grid value).
"""

from __future__ import annotations

import dataclasses
import itertools
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ddapps.errors import ConfigError
from ddapps.federated.settings import VALIDATION_FRACTION, FederatedConfig


def parse_grid(items: Sequence[str]) -> list[tuple[str, list[Any]]]:
    """``["lr_img=1,10", "ipc=5,10"]`` -> ``[("lr_img", [1, 10]), ("ipc", [5, 10])]`` (JSON values)."""
    from ddapps.cli.common import parse_key_values

    grid: list[tuple[str, list[Any]]] = []
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key or not values:
            raise ConfigError(f"--select expects KEY=V1,V2,..., got {item!r}")
        if key in (k for k, _ in grid):
            raise ConfigError(f"--select names {key!r} twice")
        grid.append((key, [parse_key_values([f"{key}={v}"], "--select")[key] for v in values.split(",")]))
    return grid


def candidates(grid: Sequence[tuple[str, Sequence[Any]]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, the first key varying slowest."""
    keys = [k for k, _ in grid]
    return [dict(zip(keys, combo)) for combo in itertools.product(*(values for _, values in grid))]


def apply(base: FederatedConfig, values: Mapping[str, Any]) -> FederatedConfig:
    """``base`` scored on validation, with config fields and method options taken from ``values``."""
    fields = {f.name for f in dataclasses.fields(FederatedConfig)}
    changes = {k: v for k, v in values.items() if k in fields}
    options = dict(base.method_options) | {k: v for k, v in values.items() if k not in fields}
    try:
        return base.replace(evaluate="validation", method_options=options, **changes)
    except (TypeError, ValueError) as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(f"invalid --select value: {err}") from None


def validate(configs: Sequence[FederatedConfig], modes: Sequence[str]) -> None:
    """Build every distilled mode's distiller of every config once: bad options fail before any run."""
    from ddapps.federated.modes import mode_spec
    from ddapps.methods import create_distiller

    for config in configs:
        for mode in modes:
            if mode_spec(mode).loop == "distilled":
                chosen = config.replace(mode=mode)
                create_distiller(chosen.upload_method, chosen.method_overrides())


def flags(values: Mapping[str, Any]) -> str:
    """The ``ddapps federated`` flags that set ``values`` (``--ipc 5 --set lr_img=10``)."""
    import json

    fields = {f.name for f in dataclasses.fields(FederatedConfig)}
    return " ".join(
        f"--{k.replace('_', '-')} {v}" if k in fields else f"--set {k}={json.dumps(v)}" for k, v in values.items()
    )


def run_selection(
    base: FederatedConfig,
    grid: Sequence[tuple[str, Sequence[Any]]],
    modes: Sequence[str],
    seeds: Sequence[int],
    rounds: Mapping[str, int],
    runner: Callable[[FederatedConfig], Any],
    out: Path,
    *,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the grid on the validation split, write ``selection.json``/``selection.md``, return the document."""
    from ddapps.federated.experiment import run_experiment
    from ddapps.report import format_table
    from ddapps.utils.atomic import write_json, write_text

    combos = candidates(grid)
    configs = [apply(base, values) for values in combos]
    validate(configs, modes)  # every candidate, before any run
    rows: list[dict[str, Any]] = []
    start = time.perf_counter()
    for number, (values, config) in enumerate(zip(combos, configs), 1):
        logs = run_experiment(config, modes, seeds, rounds, runner)
        for mode in modes:
            accs = [lg.final_accuracy for lg in logs[mode]]
            rows.append({
                "mode": mode, "values": values, "flags": flags(values), "seeds": list(seeds), "accuracies": accs,
                "acc_mean": statistics.fmean(accs), "acc_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
                "bytes_up": round(statistics.fmean(lg.bytes_up for lg in logs[mode])),
            })  # fmt: skip
            log(f"candidate {number}/{len(combos)} {flags(values)} {mode}: validation accuracy "
                f"{rows[-1]['acc_mean']:.2f}% over seeds {list(seeds)}")  # fmt: skip
        if number == 1 and len(combos) > 1:
            each = time.perf_counter() - start
            log(f"estimated time for the other {len(combos) - 1} candidates, if each costs what the first did: "
                f"{each * (len(combos) - 1) / 60:.1f} min")  # fmt: skip
    selected = {}
    for mode in modes:
        best = max((r for r in rows if r["mode"] == mode), key=lambda r: r["acc_mean"])  # first of equals wins
        selected[mode] = {"values": best["values"], "flags": best["flags"], "acc_mean": best["acc_mean"]}
    doc = {
        "selected_on": "validation", "validation_fraction": VALIDATION_FRACTION,
        "metric": "final global-model accuracy on the held-out validation split, mean over seeds",
        "grid": dict(grid), "modes": list(modes), "seeds": list(seeds), "base_config": base.to_flat(),
        "candidates": rows, "selected": selected, "seconds": time.perf_counter() - start,
    }  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "selection.json", doc)
    table = format_table(rows, ["mode", "flags", "acc_mean", "bytes_up"])
    picks = "\n".join(f"- {mode}: `{s['flags']}` ({s['acc_mean']:.2f}% on validation)" for mode, s in selected.items())
    write_text(out / "selection.md", f"# Selection on the validation split\n\n{table}\n\nSelected:\n\n{picks}\n")
    log(table)
    log("selected on validation:\n" + picks)
    return doc
