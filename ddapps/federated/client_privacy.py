"""Server-side privacy report: each client's epsilon over the run, and the released data's guarantee.

Every round a client may send a synthetic set whose ``meta["privacy"]`` records a DP release of
its partition (see ``dp-dm`` / ``dp-dc``). A client that releases several sets (``iterative``
mode: one per round) spends its budget once per release, so its epsilon is the *composition* of
its releases: in Rényi DP with Opacus' accountant when every release is a recorded subsampled
Gaussian mechanism with the same delta (:func:`ddapps.dp.accounting.composed_epsilon`),
otherwise by basic sequential composition (epsilons and deltas add). A release without a
guarantee (``epsilon`` ``None``) makes that client's epsilon infinite.

The server's global data (the union of the clients' latest sets, and the model trained on it)
is post-processing of all releases. The clients' partitions are disjoint, so an example of
client ``k`` is touched only by ``k``'s releases: by parallel composition the released global
data is ``(max_k epsilon_k, max_k delta_k)``-DP with respect to adding or removing one example.

Imports no Flower: the records are plain dicts ``{"round", "node_id", "partition_id", "privacy"}``.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

INF = "inf"
"""How an infinite epsilon (no guarantee) is written: JSON has no infinity."""


def client_privacy(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per client (by partition, else node): ``client, node_id, rounds, epsilon, delta, composition``."""
    by_client: dict[Any, list[Mapping[str, Any]]] = {}
    for record in records:
        key = record.get("partition_id")
        by_client.setdefault(record["node_id"] if key is None else key, []).append(record)
    rows = []
    for key in sorted(by_client, key=str):
        group = sorted(by_client[key], key=lambda r: r["round"])
        eps, delta, how = compose([r["privacy"] for r in group])
        rows.append({
            "client": key,
            "node_id": group[-1]["node_id"],
            "rounds": [r["round"] for r in group],
            "epsilon": INF if math.isinf(eps) else eps,
            "delta": delta,
            "composition": how,
        })  # fmt: skip
    return rows


def compose(releases: Sequence[Mapping[str, Any]]) -> tuple[float, float, str]:
    """``(epsilon, delta, how)`` of one client's releases (``how``: ``rdp``, ``sequential``, ``none``)."""
    if any(r.get("epsilon") is None for r in releases):
        return math.inf, max(float(r.get("delta", 0.0)) for r in releases), "none"
    deltas = {float(r["delta"]) for r in releases}
    keys = ("noise_multiplier", "sample_rate", "steps")
    if len(deltas) == 1 and all(r.get("accountant") == "opacus-rdp" and all(k in r for k in keys) for r in releases):
        from ddapps.dp.accounting import composed_epsilon

        delta = deltas.pop()
        if len(releases) == 1:  # the client's own figure, not a recomputation of it
            return float(releases[0]["epsilon"]), delta, "rdp"
        mechanisms = [(float(r["noise_multiplier"]), float(r["sample_rate"]), int(r["steps"])) for r in releases]
        return composed_epsilon(mechanisms, delta), delta, "rdp"
    return sum(float(r["epsilon"]) for r in releases), min(1.0, sum(float(r["delta"]) for r in releases)), "sequential"


def release_guarantee(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """``{"epsilon", "delta"}`` of the global data: the max over clients (``None``: no client recorded any)."""
    if not rows:
        return None
    eps = [math.inf if r["epsilon"] == INF else float(r["epsilon"]) for r in rows]
    worst = max(eps)
    return {"epsilon": INF if math.isinf(worst) else worst, "delta": max(float(r["delta"]) for r in rows)}


def privacy_lines(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Report lines for result rows carrying ``client_privacy`` and ``epsilon_max`` (none if no DP)."""
    lines = []
    for row in rows:
        for c in row.get("client_privacy", []):
            eps = c["epsilon"] if c["epsilon"] == INF else f"{c['epsilon']:.3g}"
            lines.append(f"- {row['mode']} seed {c['seed']} client {c['client']} (node {c['node_id']}): "
                         f"epsilon {eps}, delta {c['delta']:g} over rounds {c['rounds']} ({c['composition']})")  # fmt: skip
        worst = row.get("epsilon_max")
        if worst is not None:
            eps = worst["epsilon"] if worst["epsilon"] == INF else f"{worst['epsilon']:.3g}"
            lines.append(f"- **{row['mode']}: released global data ({eps}, {worst['delta']:g})-DP** "
                         "(max over clients: parallel composition over disjoint partitions)")  # fmt: skip
    return lines
