"""``python -m ddapps.federated.sweep``: one table and one figure across federated settings.

The heterogeneity study of the federated issue (Dirichlet alpha 0.05 to 1.0, IID, quantity skew,
10 or 50 clients with sampling) is one ``ddapps federated`` run (or one
``python -m ddapps.federated.combine`` result) per setting. This command lines them up: for every
setting and mode the final accuracy (mean ± sample std over seeds), the bytes up, the accuracy and
bytes-up ratios to ``fedavg``, the paired difference to the equal-bytes ``subset`` (95% t-interval
over shared seeds, :func:`ddapps.federated.combine.comparisons`) and the median distance of an
upload to its nearest client image. It writes ``sweep.json``, ``sweep.md`` and ``sweep.png``
(accuracy per setting, one line per mode, ± std bars).

Settings are told apart by partitioner, alpha (not for IID), clients, fraction, dataset, model,
augmentation, upload encoding and evaluation split; two runs of one setting are refused (merge them with ``combine`` first).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

from ddapps.errors import ConfigError, DataError, exit_status

TASK_KEYS = ("dataset", "model", "model_options", "augment", "upload_dtype", "evaluated_on")
SETTING_KEYS = (*TASK_KEYS, "partitioner", "alpha", "clients", "fraction")
COLUMNS = ["setting", "mode", "seeds", "bytes_up", "acc_mean", "of_fedavg", "fedavg_bytes_ratio",
           "minus_subset", "nn_client_median"]  # fmt: skip


def setting_of(row: Mapping[str, Any]) -> dict[str, Any]:
    """The setting a results row was measured in (alpha dropped for IID, where it means nothing)."""
    setting = {k: row.get(k) for k in SETTING_KEYS}
    if setting["partitioner"] == "iid":
        setting["alpha"] = None
    return setting


def label(setting: Mapping[str, Any], *, task: bool = False) -> str:
    """A short name: ``dirichlet a=0.05, 10 clients`` or ``iid, 50 clients x 0.2``; with ``task``,
    dataset, model and augmentation first (``cifar10 convnet {"width": 32} dsa, ...``)."""
    part = setting["partitioner"] if setting["alpha"] is None else f"{setting['partitioner']} a={setting['alpha']:g}"
    text = f"{part}, {setting['clients']} clients"
    if setting["fraction"] not in (None, 1.0):
        text += f" x {setting['fraction']:g}"
    if task:
        options = json.dumps(setting["model_options"], sort_keys=True) if setting["model_options"] else ""
        values = [options if k == "model_options" else setting[k] for k in TASK_KEYS]
        text = " ".join(str(v) for v in values if v) + ", " + text
    return text


def load_setting(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The setting and the rows of one ``results.json``; refuses a file mixing settings."""
    try:
        rows = json.loads(Path(path).read_text())["rows"]
        settings = [setting_of(r) for r in rows]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DataError(f"{path}: not a ddapps federated results.json ({err})") from None
    if not rows:
        raise DataError(f"{path}: no rows")
    if any(s != settings[0] for s in settings):
        raise ConfigError(f"{path}: rows of more than one setting")
    return settings[0], rows


def sweep_rows(runs: Sequence[tuple[Mapping[str, Any], Sequence[Mapping[str, Any]]]]) -> list[dict[str, Any]]:
    """One row per setting and mode, in the order given; refuses two runs of one setting."""
    from ddapps.federated.combine import comparisons

    seen: list[Mapping[str, Any]] = []
    out = []
    task = len({json.dumps([s[k] for k in TASK_KEYS], sort_keys=True) for s, _ in runs}) > 1
    for setting, rows in runs:
        if setting in seen:
            raise ConfigError(f"two runs of the setting {label(setting)!r}: merge them with ddapps.federated.combine")
        seen.append(setting)
        pairs = {(c["mode"], c["minus"]): c for c in comparisons(rows)}
        for row in rows:
            fedavg, subset = pairs.get((row["mode"], "fedavg")), pairs.get((row["mode"], "subset"))
            out.append({
                "setting": label(setting, task=task), **setting, "mode": row["mode"], "seeds": len(row["seeds"]),
                "bytes_up": row["bytes_up"], "acc_mean": row["acc_mean"], "acc_std": row["acc_std"],
                "accuracies": row["accuracies"],
                "of_fedavg": fedavg["accuracy_ratio"] if fedavg else None,
                "fedavg_bytes_ratio": fedavg["bytes_up_ratio"] if fedavg else None,
                "minus_subset": subset and [subset["difference"], subset["t_low"], subset["t_high"]],
                "nn_client_median": row.get("nn_client_median"),
            })  # fmt: skip
    return out


def markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """The sweep as a Markdown table (a paired difference as ``+d [low, high]``)."""
    from ddapps.report import format_table

    def cell(row: Mapping[str, Any], col: str) -> Any:
        value = row[col]
        if value is None:
            return "-"
        if col == "minus_subset":
            return f"{value[0]:+.2f} [{value[1]:.2f}, {value[2]:.2f}]"
        if col == "bytes_up":
            return f"{value:,}"
        return value

    shown = [{c: cell(r, c) for c in COLUMNS} | {"acc_std": r["acc_std"]} for r in rows]
    return format_table(shown, COLUMNS)


def save_sweep_plot(rows: Sequence[Mapping[str, Any]], path: str | Path, *, title: str) -> None:
    """Final accuracy per setting (x, in the order run), one line per mode, ± one std over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ddapps.report import save_accuracy_axes

    settings = list(dict.fromkeys(r["setting"] for r in rows))
    fig, ax = plt.subplots(figsize=(max(5.5, 1.4 * len(settings)), 4.0))
    for mode in dict.fromkeys(r["mode"] for r in rows):
        points = [(settings.index(r["setting"]), r["acc_mean"], r["acc_std"]) for r in rows if r["mode"] == mode]
        xs, ys, es = zip(*points)
        ax.errorbar(xs, ys, yerr=es, marker="o", markersize=4, capsize=3, label=mode)
    ax.set_xticks(range(len(settings)), [s.replace(", ", "\n") for s in settings], fontsize=7)
    save_accuracy_axes(fig, ax, path, xlabel="setting", title=title, log_x=False)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ddapps.federated.sweep", description=__doc__.splitlines()[0])
    p.add_argument("--run", type=Path, action="append", required=True, help="a results.json, one per setting (repeat)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--title", default="final test accuracy per setting (mean ± std over seeds)")
    args = p.parse_args(argv)
    return exit_status(lambda: sweep(args.run, args.out, title=args.title))


def sweep(paths: Sequence[Path], out: Path, *, title: str) -> None:
    """Line up the runs at ``paths`` in ``out`` (sweep.json, sweep.md, sweep.png)."""
    from ddapps.utils.atomic import write_json, write_text

    rows = sweep_rows([load_setting(path) for path in paths])
    out.mkdir(parents=True, exist_ok=True)
    text = markdown(rows)
    write_json(out / "sweep.json", {"runs": [str(r) for r in paths], "rows": rows})
    write_text(out / "sweep.md", text + "\n")
    save_sweep_plot(rows, out / "sweep.png", title=title)
    print(text)
    print(f"wrote {out}/sweep.json, sweep.md, sweep.png")


if __name__ == "__main__":
    sys.exit(main())
