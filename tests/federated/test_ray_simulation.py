"""Integration: the same ClientApp and ServerApp on Flower's simulation engine (Ray)."""

from __future__ import annotations

import pytest

pytest.importorskip("ray")

from ddapps.federated.driver import run_inprocess, run_ray  # noqa: E402

from .conftest import tiny_config  # noqa: E402


@pytest.mark.slow
def test_oneshot_on_ray_matches_the_in_process_engine() -> None:
    # Prepare: 2 virtual SuperNodes, digits, the smoke budget; partition 1 fails on purpose. Ray's actors
    # start slowly on a loaded 2-core machine (one run took 294 s): the round time-out must not be what is tested.
    config = tiny_config(clients=2, fail_partitions=(1,), round_timeout=3600.0)
    # Execute
    log = run_ray(config)
    # Assert: the run completed, the failure is reported, and the result is the in-process one.
    assert log.rounds[1].replies == 1 and log.rounds[1].accuracy is not None
    (failure,) = log.failures
    assert failure["kind"] == "error" and "partition 1" in failure["reason"]
    local = run_inprocess(config)
    assert log.bytes_up == local.bytes_up and log.bytes_down == local.bytes_down
    assert log.final_accuracy == local.final_accuracy
