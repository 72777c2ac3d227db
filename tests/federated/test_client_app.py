"""The ClientApp called directly (no Ray): distil, FedAvg training, faults, determinism."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("flwr")

from ddapps.federated import task  # noqa: E402
from ddapps.federated.client_app import GLOBAL_MODEL_KEY, METRICS_KEY, app  # noqa: E402
from ddapps.federated.records import records_to_synset, state_to_arrays  # noqa: E402

from .conftest import instruction, node_context, tiny_config  # noqa: E402


def test_distill_replies_a_synthetic_set_in_global_classes() -> None:
    # Prepare
    config = tiny_config()
    split = task.client_split(config, 1)
    # Execute
    reply = app(instruction(config, "train.distill"), node_context(1))
    # Assert
    assert not reply.has_error()
    synset = records_to_synset(reply.content)
    held = [c for c in range(10) if int((split.labels == c).sum()) >= config.ipc]
    assert synset.num_classes == 10 and synset.meta["classes"] == held
    assert sorted(set(synset.labels.tolist())) == held
    assert torch.bincount(synset.labels, minlength=10)[held].eq(config.ipc).all()
    assert synset.meta["client"]["partition_id"] == 1 and synset.meta["method"] == "dm"
    assert reply.content[METRICS_KEY]["num-examples"] == len(split)


def test_distill_is_deterministic_per_seed() -> None:
    config = tiny_config()
    a = records_to_synset(app(instruction(config, "train.distill"), node_context(0)).content)
    b = records_to_synset(app(instruction(config, "train.distill"), node_context(0)).content)
    c = records_to_synset(app(instruction(config.replace(seed=5), "train.distill"), node_context(0)).content)
    assert torch.equal(a.images, b.images)
    assert a.images.shape != c.images.shape or not torch.equal(a.images, c.images)


def test_iterative_round_uses_the_global_model_and_warm_start() -> None:
    config = tiny_config(mode="iterative", rounds=2)
    bench = task.load_benchmark(config)
    context = node_context(2)
    net = task.initial_model(config, bench)
    first = app(instruction(config, "train.distill", 1, **{GLOBAL_MODEL_KEY: state_to_arrays(net.state_dict())}), context)
    second = app(instruction(config, "train.distill", 2, **{GLOBAL_MODEL_KEY: state_to_arrays(net.state_dict())}), context)
    s1, s2 = records_to_synset(first.content), records_to_synset(second.content)
    assert s1.meta["global_model"] is True and s2.meta["client"]["round"] == 2
    assert any(k.startswith("ddapps-previous-") for k in context.state)
    assert s1.images.shape == s2.images.shape and not torch.equal(s1.images, s2.images)


def test_fedavg_train_returns_weights_and_num_examples() -> None:
    config = tiny_config(mode="fedavg", rounds=2)
    bench = task.load_benchmark(config)
    net = task.initial_model(config, bench)
    reply = app(instruction(config, "train", arrays=state_to_arrays(net.state_dict())), node_context(0))
    assert not reply.has_error()
    assert set(reply.content["arrays"].keys()) == set(net.state_dict())
    assert reply.content[METRICS_KEY]["num-examples"] == len(task.client_split(config, 0))


def test_a_failing_client_replies_an_error_naming_its_partition() -> None:
    config = tiny_config(fail_partitions=(1,))
    reply = app(instruction(config, "train.distill"), node_context(1))
    assert reply.has_error() and "partition 1" in str(reply.error.reason)
    assert "InjectedFault" in str(reply.error.reason)
    assert not app(instruction(config, "train.distill"), node_context(0)).has_error()


def test_a_real_exception_is_reported_too() -> None:
    config = tiny_config()
    reply = app(instruction(config, "train"), node_context(0))  # FedAvg instruction without "arrays"
    assert reply.has_error() and "KeyError" in str(reply.error.reason)


def test_dp_client_noise_is_secret_from_the_server() -> None:
    # the server chooses the seed; under dp-dm the client's noise must not follow from it
    options = {"iterations": 3, "batch_real": 8, "dp_epsilon": 4.0, "net_options": {"width": 8}}
    config = tiny_config(method="dp-dm", method_options=options)
    a = records_to_synset(app(instruction(config, "train.distill"), node_context(0)).content)
    b = records_to_synset(app(instruction(config, "train.distill"), node_context(0)).content)
    assert a.images.shape == b.images.shape and not torch.equal(a.images, b.images)
    assert a.meta["privacy"]["private"] is True and a.meta["dataset"]["stats_source"] == "public"
