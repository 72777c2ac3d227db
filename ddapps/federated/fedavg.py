"""The FedAvg baseline: Flower's own ``FedAvg`` strategy, with byte and failure accounting.

McMahan et al., "Communication-Efficient Learning of Deep Networks from Decentralized Data",
AISTATS 2017: every round each client trains the global model ``local-epochs`` on its partition
and the server averages the weights, weighted by ``num-examples``. ``AccountedFedAvg`` only
observes: it counts the bytes of the messages FedAvg builds and receives, records error replies
and time-outs, and sorts replies by node before FedAvg aggregates them (a deterministic sum).
With ``fraction < 1`` it keeps the messages of a seeded client sample
(:func:`ddapps.federated.sampling.sample_nodes`) instead of Flower's unseeded one. ``fedprox``
runs the same loop with :class:`~ddapps.federated.fedprox.AccountedFedProx`.
Evaluation is centralised, on the same test split as the distilled modes, after every round.

Missing nodes do not stop a run: a round starts once ``quorum`` of the ``clients`` are connected
(waiting at most ``round-timeout`` seconds; with fewer the round is skipped and recorded as a
``quorum`` failure) and FedAvg samples among the nodes counted then, so its own wait for
``min_available_nodes`` never blocks; a node that does not answer is recorded and the round
aggregates the replies it got.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import cast

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg

from ddapps.data import Benchmark
from ddapps.federated import task
from ddapps.federated.distilled_rounds import wait_for_nodes
from ddapps.federated.records import arrays_to_state, config_record, state_to_arrays
from ddapps.federated.sampling import sample_nodes
from ddapps.federated.settings import FederatedConfig
from ddapps.federated.wire_bytes import RunLog


class AccountedFedAvg(FedAvg):
    """``FedAvg`` that writes what each round sent, received and lost into a :class:`RunLog`."""

    def __init__(
        self,
        log: RunLog,
        *,
        fraction: float = 1.0,
        seed: int = 0,
        quorum: int = 1,
        wait_seconds: float = 0.0,
        **kwargs: object,
    ) -> None:
        kwargs |= {"min_train_nodes": quorum, "min_available_nodes": quorum}
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.log = log
        self.fraction = fraction
        self.seed = seed
        self.quorum = quorum
        self.wait_seconds = wait_seconds
        self._expected: dict[int, list[int]] = {}

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        connected = wait_for_nodes(grid, self.quorum, self.wait_seconds)
        self._expected[server_round] = []
        if len(connected) < self.quorum:
            reason = (
                f"{len(connected)} nodes connected after {self.wait_seconds:g} s, {self.quorum} needed: round skipped"
            )
            self.log.fail(server_round, 0, "quorum", reason)
            return []
        snapshot = cast(Grid, ConnectedNodes(connected))  # FedAvg samples these; its wait cannot block
        messages = list(super().configure_train(server_round, arrays, config, snapshot))
        nodes = [int(m.metadata.dst_node_id) for m in messages]
        chosen = set(sample_nodes(nodes, self.fraction, self.seed, server_round))
        messages = [m for m in messages if int(m.metadata.dst_node_id) in chosen]
        self._expected[server_round] = self.log.sent(server_round, messages)
        return messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        replies = list(replies)
        good = self.log.received(server_round, self._expected.get(server_round, []), replies)
        return super().aggregate_train(server_round, good)


class ConnectedNodes:
    """The nodes counted for a round's quorum: all that FedAvg's sampling reads of a Grid."""

    def __init__(self, nodes: Iterable[int]) -> None:
        self.nodes = list(nodes)

    def get_node_ids(self) -> list[int]:
        return list(self.nodes)


def quorum_size(clients: int, quorum: float) -> int:
    """Nodes a round needs: ``ceil(quorum * clients)``, at least one."""
    return max(1, math.ceil(quorum * clients - 1e-9))


def run_fedavg(grid: Grid, config: FederatedConfig, bench: Benchmark) -> RunLog:
    """``config.rounds`` rounds of FedAvg (or FedProx) on ``grid`` with central evaluation after each."""
    log = RunLog(mode=config.mode, seed=config.seed)
    net = task.initial_model(config, bench)
    wait_for_nodes(grid, config.clients, config.round_timeout)  # let all nodes connect before round 1
    extra: dict[str, object] = {"fraction": config.fraction, "seed": config.seed}
    extra |= {"quorum": quorum_size(config.clients, config.quorum), "wait_seconds": config.round_timeout}
    strategy_class: type[AccountedFedAvg] = AccountedFedAvg
    if config.mode == "fedprox":
        from ddapps.federated.fedprox import AccountedFedProx

        strategy_class, extra["proximal_mu"] = AccountedFedProx, config.proximal_mu
    strategy = strategy_class(
        log,
        **extra,  # type: ignore[arg-type]
        fraction_train=1.0,
        fraction_evaluate=0.0,
    )

    def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
        net.load_state_dict(arrays_to_state(arrays))
        accuracy = task.evaluate(net, bench)
        log.round(server_round).accuracy = accuracy
        return MetricRecord({"accuracy": accuracy})

    strategy.start(
        grid=grid,
        initial_arrays=state_to_arrays(net.state_dict()),
        num_rounds=config.rounds,
        timeout=config.round_timeout,
        train_config=config_record(config.to_flat()),
        evaluate_fn=evaluate,
    )
    return log
