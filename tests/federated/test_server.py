"""Server loops on the in-process grid: modes, byte accounting, failures, outputs, privacy hook."""

from __future__ import annotations

import json
import time

import pytest

pytest.importorskip("flwr")

from flwr.app import Context, Message, RecordDict  # noqa: E402
from flwr.clientapp import ClientApp  # noqa: E402

from ddapps.federated import client_app as client_module  # noqa: E402
from ddapps.federated import task  # noqa: E402
from ddapps.federated.driver import run_inprocess  # noqa: E402
from ddapps.federated.experiment import run_experiment, write_experiment  # noqa: E402
from ddapps.federated.grid import InProcessGrid  # noqa: E402
from ddapps.federated.mods import CONFIG_KEY  # noqa: E402
from ddapps.federated.records import config_record, record_bytes, state_to_arrays  # noqa: E402
from ddapps.federated.wire_bytes import RunLog  # noqa: E402

from .conftest import tiny_config  # noqa: E402


def test_oneshot_with_a_failing_client_completes_and_reports_it() -> None:
    # Prepare
    config = tiny_config(fail_partitions=(1,))
    # Execute
    log = run_inprocess(config)
    # Assert
    assert [r.round for r in log.rounds] == [0, 1]
    assert log.rounds[1].replies == 2 and log.rounds[1].accuracy is not None
    (failure,) = log.failures
    assert failure["kind"] == "error" and failure["node_id"] == 1001 and "partition 1" in failure["reason"]
    content = RecordDict({CONFIG_KEY: config_record(config.to_flat() | {"server-round": 1})})
    assert log.bytes_down == 3 * record_bytes(content)
    assert log.bytes_up > 2 * 2 * 64 * 4  # two clients, >= 2 images of 8x8 floats each


def test_fedavg_bytes_are_the_model_size_times_clients_and_rounds() -> None:
    config = tiny_config(mode="fedavg", rounds=2)
    log = run_inprocess(config)
    model_bytes = state_to_arrays(task.initial_model(config, task.load_benchmark(config)).state_dict()).count_bytes()
    for number in (1, 2):
        entry = log.round(number)
        assert 3 * model_bytes < entry.bytes_down < 3 * model_bytes + 3 * 2000  # + the config record
        assert entry.bytes_up == 3 * (model_bytes + len("num-examples") + 8)  # + the MetricRecord
        assert entry.accuracy is not None
    assert log.bytes_up == 2 * log.round(1).bytes_up and not log.failures


def test_fedavg_survives_a_failing_client() -> None:
    log = run_inprocess(tiny_config(mode="fedavg", rounds=2, fail_partitions=(2,)))
    assert [f["round"] for f in log.failures] == [1, 2]
    assert all(r.replies == 2 for r in log.rounds if r.round > 0)


def test_iterative_sends_the_model_down_every_round() -> None:
    config = tiny_config(mode="iterative", rounds=2)
    log = run_inprocess(config)
    model_bytes = state_to_arrays(task.initial_model(config, task.load_benchmark(config)).state_dict()).count_bytes()
    assert all(log.round(n).bytes_down > 3 * model_bytes for n in (1, 2))
    assert log.round(2).accuracy is not None and not log.failures


def test_runs_are_reproducible() -> None:
    a, b = run_inprocess(tiny_config()), run_inprocess(tiny_config())
    assert a.final_accuracy == b.final_accuracy and a.bytes_up == b.bytes_up


def test_a_slow_node_is_reported_as_timed_out() -> None:
    echo = ClientApp()

    @echo.train()
    def handler(message: Message, context: Context) -> Message:
        if context.node_config["partition-id"] == 1:
            time.sleep(0.3)
        return Message(RecordDict(), reply_to=message)

    grid = InProcessGrid(echo, 2)
    messages = [Message(RecordDict(), n, "train") for n in grid.get_node_ids()]
    log = RunLog(mode="test", seed=0)
    expected = log.sent(1, messages)
    good = log.received(1, expected, grid.send_and_receive(messages, timeout=0.2))
    assert [int(m.metadata.src_node_id) for m in good] == [1000]
    assert log.failures == [{"round": 1, "node_id": 1001, "kind": "timeout", "reason": "no reply before the round timeout"}]


def test_privacy_metadata_of_clients_is_collected(monkeypatch: pytest.MonkeyPatch) -> None:
    real_create = client_module.create_distiller

    def with_privacy(name, overrides):  # type: ignore[no-untyped-def]
        distiller = real_create(name, overrides)
        original = distiller.distill

        def distill(*args, **kwargs):  # type: ignore[no-untyped-def]
            synset = original(*args, **kwargs)
            synset.meta["privacy"] = {"epsilon": 2.0, "delta": 1e-5, "mechanism": "test"}
            return synset

        distiller.distill = distill  # type: ignore[method-assign]
        return distiller

    monkeypatch.setattr(client_module, "create_distiller", with_privacy)
    log = run_inprocess(tiny_config())
    assert len(log.privacy) == 3
    assert log.privacy[0]["privacy"]["epsilon"] == 2.0 and log.privacy[0]["partition_id"] == 0


def test_experiment_outputs_follow_the_schema(tmp_path) -> None:  # type: ignore[no-untyped-def]
    base = tiny_config(fail_partitions=(0,))
    logs = run_experiment(base, ["oneshot", "fedavg"], [0, 1], {"oneshot": 1, "fedavg": 2}, run_inprocess)
    rows = write_experiment(tmp_path, base, logs, command="test")
    doc = json.loads((tmp_path / "results.json").read_text())
    assert [r["mode"] for r in doc["rows"]] == ["oneshot", "fedavg"]
    for row in doc["rows"]:
        for key in ("mode", "dataset", "clients", "alpha", "rounds", "bytes_up", "bytes_down", "acc_mean", "acc_std"):
            assert key in row
        assert row["failures"] and all(f["seed"] in (0, 1) for f in row["failures"])
        assert len(row["per_round"]) == row["rounds"] + 1
    assert rows[1]["rounds"] == 2 and rows[0]["alpha"] == 0.5
    assert (tmp_path / "accuracy_vs_bytes.png").stat().st_size > 1000
    assert "Failures" in (tmp_path / "report.md").read_text()
