"""The FedAvg baseline: Flower's own ``FedAvg`` strategy, with byte and failure accounting.

McMahan et al., "Communication-Efficient Learning of Deep Networks from Decentralized Data",
AISTATS 2017: every round each client trains the global model ``local-epochs`` on its partition
and the server averages the weights, weighted by ``num-examples``. ``AccountedFedAvg`` only
observes: it counts the bytes of the messages FedAvg builds and receives, records error replies
and time-outs, and sorts replies by node before FedAvg aggregates them (a deterministic sum).
Evaluation is centralised, on the same test split as the distilled modes, after every round.
"""

from __future__ import annotations

from collections.abc import Iterable

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg

from ddapps.data import Benchmark
from ddapps.federated import task
from ddapps.federated.distilled_rounds import wait_for_nodes
from ddapps.federated.records import arrays_to_state, config_record, state_to_arrays
from ddapps.federated.settings import FederatedConfig
from ddapps.federated.wire_bytes import RunLog


class AccountedFedAvg(FedAvg):
    """``FedAvg`` that writes what each round sent, received and lost into a :class:`RunLog`."""

    def __init__(self, log: RunLog, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.log = log
        self._expected: dict[int, list[int]] = {}

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        messages = list(super().configure_train(server_round, arrays, config, grid))
        self._expected[server_round] = self.log.sent(server_round, messages)
        return messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        replies = list(replies)
        good = self.log.received(server_round, self._expected.get(server_round, []), replies)
        return super().aggregate_train(server_round, good)


def run_fedavg(grid: Grid, config: FederatedConfig, bench: Benchmark) -> RunLog:
    """``config.rounds`` rounds of FedAvg on ``grid`` with central evaluation after each."""
    log = RunLog(mode="fedavg", seed=config.seed)
    net = task.initial_model(config, bench)
    nodes = wait_for_nodes(grid, config.clients, config.round_timeout)
    strategy = AccountedFedAvg(
        log,
        fraction_train=1.0,
        fraction_evaluate=0.0,
        min_train_nodes=len(nodes),
        min_available_nodes=len(nodes),
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
