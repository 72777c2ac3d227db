"""Shared helpers of the federated tests: a tiny config on scikit-learn's digits, direct messages."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("flwr")

from flwr.app import Context, Message, RecordDict  # noqa: E402
from flwr.supercore.task_identity import TaskIdentity  # noqa: E402

from ddapps.federated.mods import CONFIG_KEY  # noqa: E402
from ddapps.federated.records import config_record  # noqa: E402
from ddapps.federated.settings import FederatedConfig, budget_config  # noqa: E402


def tiny_config(**changes: Any) -> FederatedConfig:
    """Digits, 3 clients, Dirichlet(0.5), the smoke budget at 2 images per class."""
    values: dict[str, Any] = {"dataset": "digits", "clients": 3, "ipc": 2, "max_per_client": 80} | changes
    return budget_config("smoke", **values)


def instruction(config: FederatedConfig, message_type: str, server_round: int = 1, **records: Any) -> Message:
    """An instruction message as the server builds it, addressed to node 1000."""
    TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = 1, 1, 1
    content = RecordDict({CONFIG_KEY: config_record(config.to_flat() | {"server-round": server_round})} | records)
    message = Message(content, 1000, message_type, group_id=str(server_round))
    message.metadata.__dict__["_message_id"] = "m1"
    return message


def node_context(partition_id: int, num_partitions: int = 3) -> Context:
    """The Context a SuperNode serving ``partition_id`` gives its ClientApp."""
    return Context(
        run_id=1, node_id=1000 + partition_id,
        node_config={"partition-id": partition_id, "num-partitions": num_partitions},
        state=RecordDict(), run_config={},
    )  # fmt: skip
