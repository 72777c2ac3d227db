"""The evaluation card's outputs: scores from the raw accuracies, then ``card.json``, ``card.md``, ``card.png``.

:func:`score_card` turns the accuracies of :func:`ddapps.bench.card.run_card` into means with
95% intervals, paired gains over random and DD-Ranking's LRS/ARS (:mod:`ddapps.bench.card_scores`);
:func:`write_card` writes the three files atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ddapps.bench.card_scores import paired_gain, per_seed_ars, per_seed_lrs, summary
from ddapps.report import format_table, save_figure
from ddapps.utils.atomic import write_json, write_text


def _key(net: str, regime: str, augment: bool, row: str) -> tuple[str, str, bool, str]:
    return net, regime, augment, row


def score_card(card: dict[str, Any]) -> dict[str, Any]:
    """Add ``cells`` (accuracy and gain over random per net, regime, augmentation and row) and
    ``scores`` (IOR, HLR, LRS, ARS per net, row and regime) to ``card``; return it."""
    acc = {_key(r["net"], r["regime"], r["augment"], r["row"]): r["accuracies"] for r in card["results"]}
    cells = []
    for r in card["results"]:
        random = acc[_key(r["net"], r["regime"], r["augment"], "random")]
        cells.append(
            {k: r[k] for k in ("net", "regime", "augment", "row", "stored_bytes", "eval_seconds")}
            | {"accuracy": summary(r["accuracies"]), "gain_over_random": paired_gain(r["accuracies"], random)}
        )
    augs = card["settings"]["augment"]
    aug_any = True if True in augs else False  # the "personalized" evaluation uses augmentation when run
    no_aug_hard = False if False in augs else True  # DD-Ranking evaluates hard labels without augmentation
    scores = []
    for net in card["settings"]["nets"]:
        real = card["real_hard"].get(net, {}).get("accuracies")
        rows = list(dict.fromkeys(r["row"] for r in card["results"] if r["net"] == net))
        for row in [r for r in rows if r != "random"]:
            hard = acc.get(_key(net, "hard", no_aug_hard, row))
            for regime in card["regimes"]:
                syn, rdm = acc[_key(net, regime, aug_any, row)], acc[_key(net, regime, aug_any, "random")]
                entry: dict[str, Any] = {"net": net, "row": row, "regime": regime, "ior": paired_gain(syn, rdm)}
                if regime != "hard" and real is not None and hard is not None:
                    entry["hlr"] = paired_gain(real, hard)
                    entry["lrs"] = summary(per_seed_lrs(syn, rdm, hard, real))
                if len(augs) == 2:
                    parts = [acc[_key(net, regime, a, x)] for a in (True, False) for x in (row, "random")]
                    entry["ars"] = summary(per_seed_ars(*parts))
                scores.append(entry)
    return card | {"cells": cells, "scores": scores}


def _interval(s: dict[str, Any], digits: int = 2) -> str:
    return f"{s['mean']:.{digits}f} [{s['low']:.{digits}f}, {s['high']:.{digits}f}]"


def _column(regime: str, augment: bool) -> str:
    return f"{regime} {'+dsa' if augment else 'no-aug'}"


def _grid(card: dict[str, Any], field: str) -> str:
    columns = list(dict.fromkeys(_column(c["regime"], c["augment"]) for c in card["cells"]))
    table: dict[tuple[str, str], dict[str, Any]] = {}
    for c in card["cells"]:
        line = table.setdefault((c["net"], c["row"]), {"net": c["net"], "row": c["row"]})
        line[_column(c["regime"], c["augment"])] = _interval(c[field])
    return format_table(list(table.values()), ["net", "row", *columns])


def _scores_table(card: dict[str, Any]) -> str:
    lines = []
    for s in card["scores"]:
        line = {"net": s["net"], "row": s["row"], "regime": s["regime"], "IOR (points)": _interval(s["ior"])}
        line["HLR (points)"] = _interval(s["hlr"]) if "hlr" in s else "-"
        line["LRS"] = _interval(s["lrs"], 3) if "lrs" in s else "-"
        line["ARS"] = _interval(s["ars"], 3) if "ars" in s else "-"
        lines.append(line)
    return format_table(lines, ["net", "row", "regime", "IOR (points)", "HLR (points)", "LRS", "ARS"])


def set_infos(card: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Provenance of each set row: ``card["sets"]`` by row, or the one ``card["set"]`` as row ``set``."""
    return card.get("sets") or {"set": card["set"]}


def _cost_table(card: dict[str, Any]) -> str:
    seconds = card["selection_seconds"] | {row: info.get("distill_seconds") for row, info in set_infos(card).items()}
    lines: dict[str, dict[str, Any]] = {}
    for c in card["cells"]:
        line = lines.setdefault(c["row"], {"row": c["row"], "eval seconds": 0.0})
        line[f"bytes ({c['regime']})"] = c["stored_bytes"]
        line["eval seconds"] += c["eval_seconds"]
    for row, line in lines.items():
        value = seconds.get(row)
        line["distill/selection seconds"] = "unknown" if value is None else f"{value:.1f}"
    columns = list(dict.fromkeys(k for line in lines.values() for k in line))
    return format_table(list(lines.values()), columns)


def card_markdown(card: dict[str, Any], command: str) -> str:
    """The card as Markdown: statements, accuracy, gain, scores and cost tables, the figure."""
    s, data, teacher = card["settings"], card["dataset"], card.get("teacher")
    epochs = s["eval_epochs"] if s["eval_epochs"] is not None else "the protocol's (1000 with DSA, 300 without)"
    teacher_line = "no teacher (no soft or kd regime)."
    if teacher:
        teacher_line = (
            f"`{teacher['net_name']}` {teacher['net_options']}, hash `{teacher['hash'][:16]}...`, "
            f"{teacher['parameters']} parameters (needed at training time by the kd regime); {teacher['origin']}."
        )
    infos = set_infos(card)
    set_lines = [
        f"* Set `{row}`: `{info.get('path')}` ({info.get('method')}, IPC {info.get('ipc')})."
        for row, info in infos.items()
    ]
    lines = [
        f"# Evaluation card: {', '.join(str(i.get('method')) for i in infos.values())} on {data['name']}",
        "",
        f"Command: `{command}`",
        "",
        *set_lines,
        f"* Baselines select {card['baseline_ipc']} real images per class (the sets' stored image bytes), "
        f"budget `{s['budget']}`.",
        f"* Teacher: {teacher_line}",
        f"* Evaluation: nets {', '.join(s['nets'])}; {s['n_eval']} seeds per cell, paired across rows (same "
        f"initialisations and augmentation draws); {epochs} epochs; soft and kd at temperature {s['temperature']}. "
        "Intervals are 95% Student-t over evaluation seeds (one set, one selection per baseline).",
        "* No test-set selection: "
        + (
            f"a validation split of {data['n_val']} images carved from the training data chooses the teacher's "
            f"epoch; the baselines select from the remaining {data['n_train']} training images; "
            if data.get("n_val")
            else f"no validation split (nothing is chosen: every epoch count is fixed, the teacher's included); "
            f"the baselines select from the {data['n_train']} training images; "
        )
        + "every evaluation network trains for the fixed epochs and is scored once on the "
        f"{data['n_test']}-image test split. Nothing on this card was chosen by test accuracy.",
        "",
        "## Accuracy (%)",
        "",
        _grid(card, "accuracy"),
        "",
        "## Gain over random (points, paired by seed)",
        "",
        _grid(card, "gain_over_random"),
        "",
        "## DD-Ranking scores (computed by ddapps from the accuracies above)",
        "",
        "IOR = Acc(row) - Acc(random) in the regime (with DSA when run); HLR = Acc(full real data, hard labels, "
        f"{card['real_epochs'] or 'the protocol'} epochs) - Acc(row, hard, no augmentation); LRS = (e^a - 1/e)/(e - 1/e) "
        "with a = 0.5 IOR - 0.5 HLR; ARS the same map of 0.5 IOR(dsa) + 0.5 IOR(no-aug); accuracies as fractions "
        "(Li et al., DD-Ranking, arXiv 2505.13300).",
        "",
        _scores_table(card),
        "",
        "## Bytes stored and compute",
        "",
        _cost_table(card),
        "",
        "![accuracy per regime](card.png)",
        "",
    ]
    return "\n".join(lines)


def save_card_figure(card: dict[str, Any], path: Path) -> None:
    """Grouped bars: accuracy per regime/augmentation column, one bar per row (first net), 95% intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    net = card["settings"]["nets"][0]
    cells = [c for c in card["cells"] if c["net"] == net]
    columns = list(dict.fromkeys(_column(c["regime"], c["augment"]) for c in cells))
    rows = list(dict.fromkeys(c["row"] for c in cells))
    width = 0.8 / len(rows)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.3 * len(columns)), 3.6))
    for i, row in enumerate(rows):
        by = {_column(c["regime"], c["augment"]): c["accuracy"] for c in cells if c["row"] == row}
        xs = [j + (i - (len(rows) - 1) / 2) * width for j in range(len(columns))]
        means = [by[c]["mean"] for c in columns]
        errors = [[by[c]["mean"] - by[c]["low"] for c in columns], [by[c]["high"] - by[c]["mean"] for c in columns]]
        ax.bar(xs, means, width, yerr=errors, capsize=2, label=row)
    ax.set_xticks(range(len(columns)), columns, rotation=20)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{card['dataset']['name']}, {net}: sets vs baselines (95% intervals)")
    ax.legend(fontsize=7, ncol=2)
    save_figure(fig, path)


def write_card(out: Path, card: dict[str, Any], command: str) -> None:
    """Write ``card.json``, ``card.md`` and ``card.png`` into ``out`` (each atomically)."""
    write_json(out / "card.json", card)
    save_card_figure(card, out / "card.png")
    write_text(out / "card.md", card_markdown(card, command))
