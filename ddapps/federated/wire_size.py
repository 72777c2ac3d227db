"""Bytes a message takes on Flower 1.42's Fleet API (SuperLink <-> SuperNode), as the SuperLink counts them.

Flower 1.42 does not send a Message as one protobuf. Its Fleet API is protobuf over HTTP
(``flwr.supernode.fleet_http_client``; the gRPC Fleet transport is deprecated) and a message
travels as its content-free ``Message`` protobuf with its ``ObjectTree``, then one request per
distinct object of the tree (the message itself, its ``RecordDict``, every record, ``Array`` and
``ArrayChunk``), each carrying the object's deflated bytes (``InflatableObject.deflate()``). The
SuperLink records these sizes per run (``flwr.superlink.servicer.fleet.fleet_handlers``; ``flwr ls``
shows them as network traffic in/out), and :func:`instruction_bytes` / :func:`reply_bytes` rebuild
the same protobufs for one message:

* an instruction a node pulls: down, the ``PullMessagesResponse`` (message + tree) and the content
  of every object; up, the node's ``PullMessagesRequest``;
* a reply a node pushes: up, the ``PushMessagesRequest`` (message + tree + ClientApp runtime) and
  the content of every object; down, the ``PushMessagesResponse`` (the ids of the objects to push
  and a push-session id).

Ids are those of a deployment: a message's id is its object id (SHA-256, 64 characters), a reply
names the instruction's; run and node ids are the engine's own (a deployment's are 64-bit, the
in-process engine's small: a few bytes less per message). Not counted, as the SuperLink does not
count them either: HTTP headers, heartbeats, polls with nothing to pull, receipt confirmations
and the FAB download. Not modelled: an object byte-identical to one the SuperLink or the node
still holds (e.g. two concurrent replies carrying the same record) is transferred only once. A
reply the SuperLink writes itself (source node 1, e.g. "node unavailable") never crossed the
Fleet API: ``(0, 0)``.
"""

from __future__ import annotations

from flwr.app import Message
from flwr.app.message import remove_content_from_message
from flwr.common.serde import message_to_proto
from flwr.proto.fleet_pb2 import (
    PullMessagesRequest,
    PullMessagesResponse,
    PushMessagesRequest,
    PushMessagesResponse,
    Reconnect,
)
from flwr.proto.message_pb2 import Message as ProtoMessage
from flwr.proto.message_pb2 import ObjectTree
from flwr.proto.node_pb2 import Node
from flwr.supercore.inflatable.inflatable_object import (
    get_all_nested_objects,
    get_object_tree,
    is_valid_sha256_hash,
    no_object_id_recompute,
)

SUPERLINK_NODE_ID = 1  # flwr.common.constant.SUPERLINK_NODE_ID: replies it writes never cross the Fleet API
PUSH_SESSION_ID = "0" * 36  # the SuperLink's push-session ids are uuid4 strings: 36 characters
RECONNECT_SECONDS = 5  # PushMessagesResponse.reconnect as fleet_handlers.push_messages sets it
_ANY_ID = "0" * 64


def _parts(message: Message) -> tuple[ProtoMessage, ObjectTree, list[str], int]:
    """The content-free protobuf (deployment ids), the object tree, distinct object ids, their bytes."""
    with no_object_id_recompute():
        objects = get_all_nested_objects(message)
        tree = get_object_tree(message)
        payload = sum(len(obj.deflate()) for obj in objects.values())
        proto = message_to_proto(remove_content_from_message(message))
        proto.metadata.message_id = message.object_id
    reply_to = proto.metadata.reply_to_message_id
    if reply_to and not is_valid_sha256_hash(reply_to):
        proto.metadata.reply_to_message_id = _ANY_ID  # e.g. the simulation engine's uuid ids
    return proto, tree, list(objects), payload


def instruction_bytes(message: Message) -> tuple[int, int]:
    """``(down, up)``: the bytes of pulling instruction ``message`` from the SuperLink."""
    proto, tree, _, payload = _parts(message)
    down = PullMessagesResponse(messages_list=[proto], message_object_trees=[tree]).ByteSize() + payload
    up = PullMessagesRequest(node=Node(node_id=int(message.metadata.dst_node_id))).ByteSize()
    return int(down), int(up)


def reply_bytes(reply: Message) -> tuple[int, int]:
    """``(down, up)``: the bytes of pushing ``reply`` to the SuperLink (``(0, 0)`` for the SuperLink's own)."""
    if int(reply.metadata.src_node_id) == SUPERLINK_NODE_ID:
        return 0, 0
    proto, tree, object_ids, payload = _parts(reply)
    request = PushMessagesRequest(
        node=Node(node_id=int(reply.metadata.src_node_id)),
        messages_list=[proto],
        message_object_trees=[tree],
        clientapp_runtime_list=[0.0],  # one double: 8 bytes whatever its value
    )
    response = PushMessagesResponse(
        reconnect=Reconnect(reconnect=RECONNECT_SECONDS),
        results={proto.metadata.message_id: 0},
        objects_to_push=object_ids,
        session_id=PUSH_SESSION_ID,
    )
    return int(response.ByteSize()), int(request.ByteSize()) + payload
