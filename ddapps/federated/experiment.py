"""Modes x seeds: run them, aggregate result rows, write ``results.json``, ``report.md`` and the plot.

One row per mode: ``mode, dataset, clients, alpha, rounds, bytes_up, bytes_down, wire_bytes_up,
wire_bytes_down, acc_mean, acc_std`` (bytes are means over seeds: ``bytes_*`` of the records,
``wire_bytes_*`` on Flower's Fleet API, see :mod:`ddapps.federated.wire_bytes`; accuracy is the
final round's mean ± std over seeds), plus
``per_round`` (bytes and accuracy per round), ``failures`` (every failed client, with its seed)
``privacy`` (clients' privacy metadata, if any), ``client_privacy`` (each client's composed
epsilon per seed), ``epsilon_max`` (the released global data's ``(epsilon, delta)``: the max over
clients and seeds; ``None`` if no client recorded privacy), ``model``, ``augment``, ``fraction``,
the leakage summary of the uploads over all seeds (``leak_images``, ``nn_client_median``,
``nn_client_p5``, ``nn_nonclient_median``, ``nn_nonclient_p5``, ``closer_to_client_frac``; ``None``
for weight-uploading modes, see :mod:`ddapps.federated.leakage`) and ``runs`` (each seed's full log).
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ddapps.federated.client_privacy import INF, client_privacy, privacy_lines, release_guarantee
from ddapps.federated.leakage import summarize as leak_summary
from ddapps.federated.modes import MODES, mode_spec
from ddapps.federated.settings import FederatedConfig
from ddapps.federated.wire_bytes import RunLog

COLUMNS = [
    "mode", "dataset", "clients", "alpha", "augment", "rounds", "bytes_up", "bytes_down", "wire_bytes_up",
    "wire_bytes_down", "acc_mean",
]  # fmt: skip
LEAK_COLUMNS = ["mode", "leak_images", "nn_client_median", "nn_client_p5", "nn_nonclient_median", "nn_nonclient_p5",
                "closer_to_client_frac"]  # fmt: skip


def run_experiment(
    base: FederatedConfig,
    modes: Sequence[str],
    seeds: Sequence[int],
    rounds: Mapping[str, int],
    runner: Callable[[FederatedConfig], RunLog],
    *,
    on_run: Callable[[RunLog], None] | None = None,
) -> dict[str, list[RunLog]]:
    """Every mode for every seed (``rounds[mode]`` rounds); returns the logs by mode."""
    logs: dict[str, list[RunLog]] = {}
    for mode in modes:
        for seed in seeds:
            log = runner(base.replace(mode=mode, seed=seed, rounds=rounds[mode]))
            logs.setdefault(mode, []).append(log)
            if on_run is not None:
                on_run(log)
    return logs


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0  # sample std (ddof 1)


def mode_row(config: FederatedConfig, mode: str, logs: Sequence[RunLog]) -> dict[str, Any]:
    """The result row of one mode over its seeds."""
    accs = [log.final_accuracy for log in logs]
    mean, std = _mean_std(accs)
    per_client = {log.seed: client_privacy(log.privacy) for log in logs}
    guarantees = [g for g in (release_guarantee(rows) for rows in per_client.values()) if g is not None]
    numbers = sorted({r.round for log in logs for r in log.rounds})
    per_round = []
    for number in numbers:
        entries = [log.round(number) for log in logs]
        scored = [e.accuracy for e in entries if e.accuracy is not None]
        r_mean, r_std = _mean_std(scored) if scored else (float("nan"), 0.0)
        per_round.append({
            "round": number,
            "bytes_up": statistics.fmean(e.bytes_up for e in entries),
            "bytes_down": statistics.fmean(e.bytes_down for e in entries),
            "wire_bytes_up": statistics.fmean(e.wire_bytes_up for e in entries),
            "wire_bytes_down": statistics.fmean(e.wire_bytes_down for e in entries),
            "acc_mean": r_mean,
            "acc_std": r_std,
            "failures": sum(len(e.failures) for e in entries),
        })  # fmt: skip
    return {
        "mode": mode,
        "dataset": config.dataset,
        "clients": config.clients,
        "alpha": config.alpha if config.partitioner != "iid" else None,
        "partitioner": config.partitioner,
        "fraction": config.fraction,
        "model": config.model,
        "model_options": config.model_options,
        "augment": config.augment,
        "evaluated_on": config.evaluate,
        "upload_dtype": config.upload_dtype,
        "rounds": max(r.round for log in logs for r in log.rounds),
        "bytes_up": round(statistics.fmean(log.bytes_up for log in logs)),
        "bytes_down": round(statistics.fmean(log.bytes_down for log in logs)),
        "wire_bytes_up": round(statistics.fmean(log.wire_bytes_up for log in logs)),
        "wire_bytes_down": round(statistics.fmean(log.wire_bytes_down for log in logs)),
        "acc_mean": mean,
        "acc_std": std,
        "seeds": [log.seed for log in logs],
        "accuracies": accs,
        "per_round": per_round,
        "failures": [f | {"seed": log.seed} for log in logs for f in log.failures],
        "privacy": [p | {"seed": log.seed} for log in logs for p in log.privacy],
        "client_privacy": [r | {"seed": seed} for seed, rows in per_client.items() for r in rows],
        "epsilon_max": max(guarantees, key=_epsilon_order) if guarantees else None,
        **_leak_fields(mode, logs),
        "runs": [log.as_dict() for log in logs],
    }


def _leak_fields(mode: str, logs: Sequence[RunLog]) -> dict[str, Any]:
    if mode_spec(mode).loop != "distilled":
        return dict.fromkeys(LEAK_COLUMNS[1:])
    return leak_summary([upload for log in logs for upload in log.leakage])


def _epsilon_order(guarantee: Mapping[str, Any]) -> float:
    return math.inf if guarantee["epsilon"] == INF else float(guarantee["epsilon"])


def comparison(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Sentences comparing each distilled mode with ``fedavg`` (accuracy ratio, upload ratio)."""
    by = {r["mode"]: r for r in rows}
    base = by.get("fedavg")
    if base is None:
        return []
    lines = []
    for mode in (m for m in MODES if mode_spec(m).loop == "distilled"):
        row = by.get(mode)
        if row is None or not row["bytes_up"]:
            continue
        ratio = 100.0 * row["acc_mean"] / base["acc_mean"] if base["acc_mean"] else float("nan")
        fewer = base["bytes_up"] / row["bytes_up"]
        lines.append(
            f"`{mode}` reaches {ratio:.1f}% of `fedavg`'s final accuracy ({row['acc_mean']:.2f} vs "
            f"{base['acc_mean']:.2f}, {base['rounds']} rounds) while uploading {fewer:.1f}x fewer bytes "
            f"({row['bytes_up']:,} vs {base['bytes_up']:,})."
        )
    return lines


def write_experiment(
    out: Path,
    config: FederatedConfig,
    logs: Mapping[str, Sequence[RunLog]],
    *,
    command: str,
    engine: str = "inprocess",
    device: Any = "cpu",
    seconds: float | None = None,
) -> list[dict[str, Any]]:
    """Write ``results.json``, ``report.md`` and ``accuracy_vs_bytes.png`` into ``out``; return the rows."""
    from ddapps.federated.plot import save_bytes_plot
    from ddapps.report import format_table, write_run

    rows = [mode_row(config, mode, mode_logs) for mode, mode_logs in logs.items()]
    doc_config = {"engine": engine, "base_config": config.to_flat(), "seconds": seconds}
    skew = f"{config.partitioner}" + (f" alpha {config.alpha:g}" if config.partitioner != "iid" else "")
    save_bytes_plot(
        rows, out / "accuracy_vs_bytes.png",
        title=f"{config.dataset}, {config.clients} clients, {skew}, augment {config.augment}",
    )  # fmt: skip
    table = format_table(rows, COLUMNS)
    failures = [f"- {r['mode']} seed {f['seed']} round {f['round']}: node {f['node_id']}"
                f"{' (partition ' + str(f['partition_id']) + ')' if 'partition_id' in f else ''} "
                f"{f['kind']}: {f['reason']}" for r in rows for f in r["failures"]]  # fmt: skip
    report = "\n".join([
        "# ddapps federated",
        "",
        f"Command: `{command}`",
        f"Engine: {engine}. Base config: `{config.to_flat()}`" + (f". Wall time: {seconds:.0f} s." if seconds else "."),
        "",
        "Bytes are Flower's `count_bytes()` of every record sent (down) and received (up), summed over",
        "clients and rounds (mean over seeds); wire bytes are what the same messages take on Flower's Fleet",
        "API (protobuf messages and object contents, as the SuperLink counts them); accuracy is the global",
        "model's test accuracy after the last round, mean ± std over seeds.",
        "",
        table,
        "",
        *comparison(rows),
        "",
        "## What leaves a client",
        "",
        "Per uploaded image: L2 distance (normalised pixels) to its nearest image of the uploading client",
        "(`nn_client`) and to its nearest training image of no client of its own (`nn_nonclient`), over",
        "every upload and seed: median and 5th percentile (`ddapps.federated.leakage`).",
        "",
        format_table([r for r in rows if r["leak_images"]], LEAK_COLUMNS) if any(r["leak_images"] for r in rows)
        else "no synthetic uploads",
        "",
        "## Privacy",
        "",
        "Each client's epsilon composes its DP releases over the rounds; the global data's guarantee is",
        "the max over clients (see `ddapps.federated.client_privacy`).",
        "",
        *(privacy_lines(rows) or ["no client recorded privacy metadata: no DP guarantee"]),
        "",
        "## Failures",
        "",
        *(failures or ["none"]),
        "",
        "![accuracy vs cumulative bytes](accuracy_vs_bytes.png)",
        "",
    ])  # fmt: skip
    write_run(out, "federated", doc_config, device, rows, report)
    return rows
