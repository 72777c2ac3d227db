"""Server-side privacy report: per-client composed epsilon and the global data's guarantee."""

from __future__ import annotations

import json
import math

import pytest

pytest.importorskip("opacus")

from opacus.accountants import RDPAccountant  # noqa: E402

from ddapps.federated.client_privacy import client_privacy, compose, release_guarantee  # noqa: E402
from ddapps.federated.driver import run_inprocess  # noqa: E402
from ddapps.federated.experiment import run_experiment, write_experiment  # noqa: E402
from tests.federated.conftest import tiny_config  # noqa: E402


def _release(sigma: float, q: float, steps: int, delta: float = 1e-5) -> dict:
    accountant = RDPAccountant()
    accountant.history = [(sigma, q, steps)]
    eps = accountant.get_epsilon(delta=delta)
    return {"epsilon": eps, "delta": delta, "noise_multiplier": sigma, "sample_rate": q, "steps": steps, "accountant": "opacus-rdp"}


def test_releases_compose_in_rdp_and_fall_back_to_sequential() -> None:
    a, b = _release(1.2, 0.1, 50), _release(0.9, 0.2, 30)
    # Execute / Assert: one release is its own figure; two compose in RDP (Opacus, both in history)
    assert compose([a]) == (a["epsilon"], 1e-5, "rdp")
    accountant = RDPAccountant()
    accountant.history = [(1.2, 0.1, 50), (0.9, 0.2, 30)]
    eps, delta, how = compose([a, b])
    assert how == "rdp" and eps == pytest.approx(accountant.get_epsilon(delta=1e-5))
    assert max(a["epsilon"], b["epsilon"]) < eps < a["epsilon"] + b["epsilon"]
    # unknown mechanisms add up; a release without a guarantee makes the client's epsilon infinite
    assert compose([{"epsilon": 1.0, "delta": 1e-6}, {"epsilon": 2.0, "delta": 1e-6}]) == (3.0, 2e-6, "sequential")
    assert compose([a, {"epsilon": None, "delta": 1e-5}])[0] == math.inf


def test_guarantee_is_the_max_over_clients() -> None:
    records = [
        {"round": 1, "node_id": 7, "partition_id": 0, "privacy": {"epsilon": 1.0, "delta": 1e-5}},
        {"round": 1, "node_id": 8, "partition_id": 1, "privacy": {"epsilon": 3.0, "delta": 1e-5}},
        {"round": 2, "node_id": 7, "partition_id": 0, "privacy": {"epsilon": 1.5, "delta": 1e-5}},
    ]
    rows = client_privacy(records)
    assert [(r["client"], r["rounds"], r["epsilon"]) for r in rows] == [(0, [1, 2], 2.5), (1, [1], 3.0)]
    assert release_guarantee(rows) == {"epsilon": 3.0, "delta": 2e-5}  # client 0: deltas add too
    assert release_guarantee([]) is None
    assert release_guarantee(rows + [{"epsilon": "inf", "delta": 1e-5}])["epsilon"] == "inf"


def test_iterative_dp_run_reports_each_clients_epsilon(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # Prepare: 3 clients distil with dp-dm (eps 2 per release) for 2 rounds
    options = {"iterations": 4, "batch_real": 8, "dp_epsilon": 2.0, "net_options": {"width": 8}}
    base = tiny_config(method="dp-dm", method_options=options)
    # Execute
    logs = run_experiment(base, ["iterative"], [0], {"iterative": 2}, run_inprocess)
    write_experiment(tmp_path, base, logs, command="test")
    # Assert: every answering client released twice; its epsilon composes both; the max is reported
    row = json.loads((tmp_path / "results.json").read_text())["rows"][0]
    clients = row["client_privacy"]
    assert clients and all(c["rounds"] == [1, 2] and c["composition"] == "rdp" for c in clients)
    by_client = {}
    for p in row["privacy"]:
        assert p["privacy"]["epsilon"] <= 2.0
        by_client.setdefault(p["partition_id"], []).append(p["privacy"])
    for c in clients:
        assert c["epsilon"] == pytest.approx(compose(by_client[c["client"]])[0]) and 2.0 < c["epsilon"] < 4.0
    assert row["epsilon_max"]["epsilon"] == max(c["epsilon"] for c in clients)
    assert "released global data" in (tmp_path / "report.md").read_text()
