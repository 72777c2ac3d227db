"""The baselines of the distilled modes: subset and noise-init uploads, FedProx, client sampling,
the shared augmentation policy and the leakage of what clients upload."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("flwr")

from ddapps.errors import ConfigError  # noqa: E402
from ddapps.federated import task  # noqa: E402
from ddapps.federated.client_app import app  # noqa: E402
from ddapps.federated.driver import run_inprocess  # noqa: E402
from ddapps.federated.experiment import mode_row  # noqa: E402
from ddapps.federated.leakage import summarize, upload_distances  # noqa: E402
from ddapps.federated.proximal import proximal_penalty  # noqa: E402
from ddapps.federated.records import arrays_to_state, records_to_synset, state_to_arrays  # noqa: E402
from ddapps.federated.sampling import sample_nodes  # noqa: E402

from .conftest import instruction, node_context, tiny_config  # noqa: E402


def test_modes_choose_the_clients_method_and_options() -> None:
    subset, noise, dp = (tiny_config(mode=m) for m in ("subset", "oneshot-noise", "oneshot-dp"))
    assert subset.upload_method == "random" and "iterations" not in subset.method_overrides()
    assert noise.upload_method == "dm" and noise.method_overrides()["init"] == "noise"
    assert noise.method_overrides()["iterations"] == tiny_config().method_overrides()["iterations"]
    assert dp.upload_method == "dp-dm"
    with pytest.raises(ConfigError, match="subset runs exactly one round"):
        tiny_config(mode="subset", rounds=2)
    with pytest.raises(ConfigError, match="augment"):
        tiny_config(augment="flip")
    with pytest.raises(ConfigError, match="fraction"):
        tiny_config(fraction=0.0)


def test_subset_uploads_client_images_as_many_as_the_distilled_set() -> None:
    # Prepare
    split = task.client_split(tiny_config(), 0)
    replies = {
        m: app(instruction(tiny_config(mode=m), "train.distill"), node_context(0)) for m in ("oneshot", "subset")
    }
    # Execute
    sets = {m: records_to_synset(r.content) for m, r in replies.items()}
    # Assert
    distilled, subset = sets["oneshot"], sets["subset"]
    assert torch.equal(distilled.labels.sort().values, subset.labels.sort().values)  # same classes, same ipc
    assert subset.meta["method"] == "random"
    own = split.images.flatten(1)
    assert all(bool((own == x.flatten()).all(dim=1).any()) for x in subset.images)  # each one a client image
    assert not all(bool((own == x.flatten()).all(dim=1).any()) for x in distilled.images)


def test_noise_init_upload_does_not_start_from_client_images() -> None:
    reply = app(instruction(tiny_config(mode="oneshot-noise"), "train.distill"), node_context(0))
    synset = records_to_synset(reply.content)
    distances = upload_distances(tiny_config(), task.load_benchmark(tiny_config()), 0, synset.images)
    real = upload_distances(
        tiny_config(), task.load_benchmark(tiny_config()), 0, task.client_split(tiny_config(), 0).images[:4]
    )
    assert min(distances["nn_client"]) > 1.0 and real["nn_client"] == [0.0] * 4


def test_leakage_summary_quantiles() -> None:
    uploads = [
        {"nn_client": [0.0, 1.0, 2.0], "nn_nonclient": [3.0, 3.0, 1.0]},
        {"nn_client": [3.0, 4.0], "nn_nonclient": [5.0] * 2},
    ]
    out = summarize(uploads)
    assert out["leak_images"] == 5 and out["nn_client_median"] == 2.0 and out["nn_nonclient_median"] == 3.0
    assert out["nn_client_p5"] == pytest.approx(0.2) and out["closer_to_client_frac"] == pytest.approx(0.8)
    assert summarize([])["nn_client_median"] is None


def test_client_sampling_is_seeded_per_round() -> None:
    nodes = list(range(1000, 1050))
    first = sample_nodes(nodes, 0.1, seed=0, server_round=1)
    assert len(first) == 5 and first == sorted(first) and set(first) <= set(nodes)
    assert first == sample_nodes(reversed(nodes), 0.1, seed=0, server_round=1)
    assert first != sample_nodes(nodes, 0.1, seed=0, server_round=2)
    assert sample_nodes(nodes, 1.0, seed=0, server_round=1) == nodes


def test_proximal_penalty_is_half_mu_squared_distance() -> None:
    net = torch.nn.Linear(3, 2)
    penalty = proximal_penalty(net, mu=0.5)
    assert float(penalty().detach()) == 0.0
    with torch.no_grad():
        net.weight.add_(1.0)
    assert float(penalty().detach()) == pytest.approx(0.25 * 6)


def test_fedprox_client_stays_closer_to_the_global_model_than_fedavg() -> None:
    # Prepare
    config = tiny_config(mode="fedavg", local_epochs=3, local_lr=0.2)
    bench = task.load_benchmark(config)
    global_state = task.initial_model(config, bench).state_dict()
    arrays = state_to_arrays(global_state)

    def drift(mode: str) -> float:
        reply = app(instruction(config.replace(mode=mode, proximal_mu=1.0), "train", arrays=arrays), node_context(0))
        state = arrays_to_state(reply.content["arrays"])
        return sum(float((state[k] - v).pow(2).sum()) for k, v in global_state.items())

    # Execute / Assert
    assert drift("fedprox") < 0.5 * drift("fedavg")


def test_augment_policy_reaches_both_sides(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, object]] = []
    original = task.train

    def spy(net, images, labels, settings, generator, augment_strategy=None, penalty=None):  # type: ignore[no-untyped-def]
        seen.append((settings.batch_size, augment_strategy))
        return original(net, images[:8], labels[:8], settings, generator, augment_strategy, penalty)

    monkeypatch.setattr(task, "train", spy)
    for augment in ("dsa", "none"):
        for mode in ("subset", "fedavg"):
            run_inprocess(tiny_config(mode=mode, augment=augment, clients=2))
    strategies = [s for _, s in seen]
    assert strategies[:3] == [strategies[0]] * 3 and isinstance(strategies[0], str)  # dsa: server, 2 clients
    assert strategies[3:] == [None] * 3


def test_fedprox_with_sampling_and_subset_rows() -> None:
    # Execute
    log = run_inprocess(tiny_config(mode="fedprox", rounds=2, fraction=0.5, clients=4))
    subset = run_inprocess(tiny_config(mode="subset"))
    row = mode_row(tiny_config(mode="subset"), "subset", [subset])
    # Assert
    assert [log.round(n).replies for n in (1, 2)] == [2, 2] and log.mode == "fedprox"
    assert row["nn_client_median"] == 0.0 and row["nn_nonclient_median"] > 0.0
    assert row["leak_images"] == sum(len(u["nn_client"]) for u in subset.leakage) > 0
    assert row["augment"] == "none" and row["model"] == "mlp"
