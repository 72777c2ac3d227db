"""Server loop of the distilled modes: ``oneshot`` (DOSFL-style) and ``iterative`` (FedDM-style).

Each round the server sends every node the run config (and, in ``iterative``, the global model as
an ArrayRecord), waits up to ``round-timeout`` for the synthetic sets, keeps each client's newest
set, and trains the global model on their union:

* ``oneshot`` (Zhou et al., 2020, "Distilled One-Shot Federated Learning"): one round; the global
  model starts from the run's initial weights and trains ``server-epochs`` on the union;
* ``iterative`` (after Xiong et al., CVPR 2023): ``rounds`` rounds; the global model keeps its
  weights across rounds and trains ``server-epochs`` on the current union each round; clients
  match features of the perturbed global model (see :mod:`ddapps.federated.feddm`).

A client that fails, times out or sends an invalid set is recorded and left out of that round;
its earlier set (if any) stays in the union. With ``fraction < 1`` each round addresses a seeded
sample of the nodes (:mod:`ddapps.federated.sampling`). Every received upload is measured for
leakage (:mod:`ddapps.federated.leakage`) into ``log.leakage``.
"""

from __future__ import annotations

import time

from flwr.app import Message, RecordDict
from flwr.serverapp import Grid

from ddapps.data import Benchmark
from ddapps.errors import SyntheticSetError
from ddapps.federated import task
from ddapps.federated.client_app import GLOBAL_MODEL_KEY
from ddapps.federated.leakage import upload_distances
from ddapps.federated.modes import mode_spec
from ddapps.federated.mods import CONFIG_KEY
from ddapps.federated.records import config_record, records_to_synset, state_to_arrays
from ddapps.federated.sampling import sample_nodes
from ddapps.federated.settings import FederatedConfig
from ddapps.federated.synsets import union
from ddapps.federated.wire_bytes import RunLog
from ddapps.synthetic import SyntheticSet
from ddapps.utils.seeding import derive_seed, make_generator

DISTILL_MESSAGE = "train.distill"


def wait_for_nodes(grid: Grid, wanted: int, timeout: float) -> list[int]:
    """Sorted node ids once ``wanted`` nodes are connected (or whatever is there after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        nodes = sorted(int(n) for n in grid.get_node_ids())
        if len(nodes) >= wanted or time.monotonic() >= deadline:
            return nodes
        time.sleep(1.0)


def run_distilled(grid: Grid, config: FederatedConfig, bench: Benchmark) -> RunLog:
    """Run ``oneshot`` or ``iterative`` on ``grid``; return what was measured."""
    log = RunLog(mode=config.mode, seed=config.seed)
    net = task.initial_model(config, bench)
    initial_state = {k: v.clone() for k, v in net.state_dict().items()}
    log.round(0).accuracy = task.evaluate(net, bench)
    nodes = wait_for_nodes(grid, config.clients, config.round_timeout)
    latest: dict[int, SyntheticSet] = {}
    for number in range(1, config.rounds + 1):
        start = time.perf_counter()
        content = RecordDict({CONFIG_KEY: config_record(config.to_flat() | {"server-round": number})})
        if mode_spec(config.mode).global_model:
            content[GLOBAL_MODEL_KEY] = state_to_arrays(net.state_dict())
        chosen = sample_nodes(nodes, config.fraction, config.seed, number)
        messages = [Message(content, n, DISTILL_MESSAGE, group_id=str(number)) for n in chosen]
        expected = log.sent(number, messages)
        replies = grid.send_and_receive(messages, timeout=config.round_timeout)
        for reply in log.received(number, expected, replies):
            node = int(reply.metadata.src_node_id)
            try:
                synset = records_to_synset(reply.content)
            except SyntheticSetError as err:
                log.fail(number, node, "invalid", str(err))
                continue
            latest[node] = synset
            _note_client(log, node, number, synset)
            _note_leakage(log, config, bench, node, number, synset)
        if latest:
            if mode_spec(config.mode).one_round:
                net.load_state_dict(initial_state)
            images, labels = union([latest[n] for n in sorted(latest)])
            loss = next(iter(latest.values())).eval_protocol.loss
            gen = make_generator(derive_seed(config.seed, "server-train", number))
            strategy = task.augment_strategy(config, bench)
            task.train(net, images, labels, task.server_settings(config, loss), gen, strategy)
        entry = log.round(number)
        entry.accuracy = task.evaluate(net, bench)
        entry.seconds = time.perf_counter() - start
    return log


def _note_client(log: RunLog, node: int, number: int, synset: SyntheticSet) -> None:
    client = synset.meta.get("client", {})
    if isinstance(client, dict) and "partition_id" in client:
        log.node_partitions[node] = int(client["partition_id"])
    privacy = synset.meta.get("privacy")
    if privacy is not None:
        log.privacy.append(
            {"round": number, "node_id": node, "partition_id": log.node_partitions.get(node), "privacy": privacy}
        )


def _note_leakage(
    log: RunLog, config: FederatedConfig, bench: Benchmark, node: int, number: int, synset: SyntheticSet
) -> None:
    partition = log.node_partitions.get(node)
    if partition is None:
        return
    distances = upload_distances(config, bench, partition, synset.training_data()[0])
    log.leakage.append({"round": number, "node_id": node, "partition_id": partition} | distances)
