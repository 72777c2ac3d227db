"""Wire bytes: the Fleet API protobufs and object contents of a message, next to its record bytes."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("flwr")

from flwr.app import Array, ArrayRecord, ConfigRecord, Error, Message, Metadata, RecordDict  # noqa: E402
from flwr.app.message import make_message, remove_content_from_message  # noqa: E402
from flwr.common.serde import message_to_proto  # noqa: E402
from flwr.proto.fleet_pb2 import PullMessagesRequest, PullMessagesResponse  # noqa: E402
from flwr.proto.node_pb2 import Node  # noqa: E402
from flwr.supercore.inflatable.inflatable_object import get_all_nested_objects, get_object_tree  # noqa: E402
from flwr.supercore.inflatable.inflatable_utils import inflate_object_from_contents  # noqa: E402
from flwr.supercore.task_identity import TaskIdentity  # noqa: E402

from ddapps.federated.records import record_bytes  # noqa: E402
from ddapps.federated.wire_bytes import RunLog  # noqa: E402
from ddapps.federated.wire_size import instruction_bytes, reply_bytes  # noqa: E402


def _instruction(arrays: dict[str, np.ndarray], node: int = 1000) -> Message:
    TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = 1, 1, 1
    content = RecordDict({"config": ConfigRecord({"server-round": 1, "mode": "oneshot"})})
    content["arrays"] = ArrayRecord({k: Array(v) for k, v in arrays.items()})
    return Message(content, node, "train", group_id="1")


def _superlink_error(instruction: Message) -> Message:
    """The reply a SuperLink writes for a node that missed its heartbeats (source node 1)."""
    metadata = Metadata(
        run_id=1, message_id="", src_node_id=1, dst_node_id=1, reply_to_message_id=instruction.object_id,
        group_id="1", created_at=0.0, ttl=10.0, message_type="train",
    )  # fmt: skip
    return make_message(metadata=metadata, error=Error(code=5, reason="Error: Node Unavailable"))


def test_an_instruction_costs_its_pull_response_and_the_contents_that_rebuild_it() -> None:
    # Prepare: a known message (a config and a 1,000-float array)
    message = _instruction({"w": np.arange(1000, dtype=np.float32)})
    # Execute
    down, up = instruction_bytes(message)
    # Assert: exactly the serialized PullMessagesResponse (message id = object id, as a deployment sets it)
    proto = message_to_proto(remove_content_from_message(message))
    proto.metadata.message_id = message.object_id
    response = PullMessagesResponse(messages_list=[proto], message_object_trees=[get_object_tree(message)])
    contents = {object_id: obj.deflate() for object_id, obj in get_all_nested_objects(message).items()}
    assert down == len(response.SerializeToString()) + sum(len(c) for c in contents.values())
    assert up == len(PullMessagesRequest(node=Node(node_id=1000)).SerializeToString())
    # ... and those contents are exactly what a node needs to rebuild the message
    rebuilt = inflate_object_from_contents(message.object_id, dict(contents))
    assert isinstance(rebuilt, Message)
    assert np.array_equal(rebuilt.content.array_records["arrays"]["w"].numpy(), np.arange(1000, dtype=np.float32))
    # wire >= records: the records are inside, plus headers, ids and the tree
    assert record_bytes(message.content) + 4000 > down > record_bytes(message.content) >= 4000


def test_a_repeated_array_travels_once_within_a_message() -> None:
    big = np.ones(50_000, dtype=np.float32)
    once = instruction_bytes(_instruction({"a": big}))[0]
    twice = instruction_bytes(_instruction({"a": big, "b": big.copy()}))[0]
    assert 0 < twice - once < 1000  # a second key and tree entry, not a second 200 kB array


def test_replies_count_what_the_node_pushes_and_the_superlinks_own_replies_nothing() -> None:
    instruction = _instruction({"w": np.zeros(10, dtype=np.float32)})
    instruction.metadata.__dict__["_message_id"] = instruction.object_id
    reply = Message(
        RecordDict({"arrays": ArrayRecord({"w": Array(np.ones(256, dtype=np.float32))})}), reply_to=instruction
    )
    down, up = reply_bytes(reply)
    assert up > record_bytes(reply.content) >= 1024 and down > 64  # down: the ids of the objects to push
    error = Message(Error(code=2, reason="partition 0: boom"), reply_to=instruction)
    assert reply_bytes(error)[1] > len("partition 0: boom")  # a node's error crosses the wire
    unavailable = _superlink_error(instruction)
    assert reply_bytes(unavailable) == (0, 0)


def test_the_run_log_sums_wire_bytes_and_blames_a_superlink_error_on_the_node_addressed() -> None:
    log = RunLog(mode="test", seed=0)
    messages = [_instruction({"w": np.zeros(10, dtype=np.float32)}, node) for node in (1000, 1001)]
    expected = log.sent(1, messages)
    ok = Message(RecordDict({"m": ConfigRecord({"x": 1})}), reply_to=messages[0])
    lost = _superlink_error(messages[1])
    good = log.received(1, expected, [lost, ok])
    assert good == [ok]
    assert log.failures == [{"round": 1, "node_id": 1001, "kind": "error", "reason": "Error: Node Unavailable"}]
    pulls = [instruction_bytes(m) for m in messages]
    assert log.wire_bytes_down == sum(d for d, _ in pulls) + reply_bytes(ok)[0]
    assert log.wire_bytes_up == sum(u for _, u in pulls) + reply_bytes(ok)[1]
    assert log.bytes_up == record_bytes(ok.content) < log.wire_bytes_up
