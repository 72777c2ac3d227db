"""FedAvg with nodes that disconnect: rounds go on with a quorum, and are skipped (not hung) without one."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

pytest.importorskip("flwr")

from flwr.app import Message  # noqa: E402
from flwr.clientapp import ClientApp  # noqa: E402

from ddapps.errors import ConfigError  # noqa: E402
from ddapps.federated.client_app import app as client_app  # noqa: E402
from ddapps.federated.fedavg import quorum_size  # noqa: E402
from ddapps.federated.grid import NODE_ID_OFFSET, InProcessGrid  # noqa: E402
from ddapps.federated.server_app import run_server  # noqa: E402
from ddapps.federated.settings import FederatedConfig  # noqa: E402

from .conftest import tiny_config  # noqa: E402


class ShrinkingGrid(InProcessGrid):
    """The nodes of partitions ``gone`` disconnect after round 1: no longer listed, never answering."""

    def __init__(self, app: ClientApp, num_nodes: int, gone: set[int]) -> None:
        super().__init__(app, num_nodes)
        self.gone = {NODE_ID_OFFSET + p for p in gone}
        self.rounds_sent = 0

    def get_node_ids(self) -> Iterable[int]:
        nodes = list(super().get_node_ids())
        return [n for n in nodes if n not in self.gone] if self.rounds_sent else nodes

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> Iterable[Message]:
        messages = list(messages)
        self.rounds_sent += bool(messages)
        return super().send_and_receive(messages, timeout=timeout)


@pytest.mark.timeout(300)  # Flower's FedAvg with min_available_nodes = all nodes waits here forever
def test_fedavg_goes_on_with_the_nodes_left() -> None:
    config = tiny_config(mode="fedavg", rounds=3)
    log = run_server(ShrinkingGrid(client_app, 3, gone={2}), config)
    assert [r.replies for r in log.rounds] == [0, 3, 2, 2]
    assert not log.failures and all(r.accuracy is not None for r in log.rounds)


@pytest.mark.timeout(300)
def test_fedavg_skips_a_round_without_quorum_and_records_it() -> None:
    config = tiny_config(mode="fedavg", rounds=2, round_timeout=1.0)
    log = run_server(ShrinkingGrid(client_app, 3, gone={1, 2}), config)
    (failure,) = log.failures
    assert failure["round"] == 2 and failure["kind"] == "quorum" and "1 nodes connected" in failure["reason"]
    assert log.round(2).replies == 0 and log.round(2).bytes_down == 0
    assert log.round(2).accuracy == log.round(1).accuracy  # no update: the global model is kept


def test_quorum_is_a_share_of_the_clients_rounded_up() -> None:
    assert [quorum_size(10, q) for q in (0.5, 0.51, 1.0, 0.01)] == [5, 6, 10, 1]
    assert FederatedConfig().round_timeout == 300.0
    with pytest.raises(ConfigError, match="quorum"):
        FederatedConfig(quorum=0.0)
