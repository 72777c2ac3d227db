"""``InProcessGrid``: a Flower ``Grid`` that calls a ClientApp directly, one node after another.

For scripted runs on a CPU-bound machine where Ray's actors cost more than they give: the
ServerApp logic is unchanged (it sees a ``Grid``), every virtual node has its own ``Context``
(``partition-id``, ``num-partitions``, persistent ``state``), and an exception that escapes the
ClientApp becomes an error reply, as in Flower's simulation engine.

Message ids are the messages' object ids, as in a deployment. Time-outs are emulated as if the
nodes ran in parallel: a reply whose own handling took longer than ``timeout`` is dropped, so the
server sees a missing reply and reports a time-out.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from flwr.app import Context, Error, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid
from flwr.supercore.run import Run
from flwr.supercore.task_identity import TaskIdentity

CLIENT_APP_RAISED_EXCEPTION = 2
SUPERLINK_NODE_ID = 1  # flwr.common.constant.SUPERLINK_NODE_ID: the server's own node id
NODE_ID_OFFSET = 1000  # virtual node of partition p has id 1000 + p


class InProcessGrid(Grid):
    """``num_nodes`` virtual nodes (ids ``1000 + p``) serving ``partition-id`` ``p = 0..n-1``.

    Creating it sets Flower's process-wide ``TaskIdentity`` (task 1, ``run_id``, the SuperLink's
    node id) as Flower's own runtimes do before a ServerApp runs, so ``Message(...)`` works.
    """

    def __init__(self, client_app: ClientApp, num_nodes: int, run_id: int = 1) -> None:
        self.client_app = client_app
        self._run = Run.create_empty(run_id)
        TaskIdentity.task_id = 1
        TaskIdentity.run_id = run_id
        TaskIdentity.node_id = SUPERLINK_NODE_ID
        self.contexts = {
            NODE_ID_OFFSET + pid: Context(
                run_id=run_id,
                node_id=NODE_ID_OFFSET + pid,
                node_config={"partition-id": pid, "num-partitions": num_nodes},
                state=RecordDict(),
                run_config={},
            )  # fmt: skip
            for pid in range(num_nodes)
        }
        self._replies: dict[str, Message] = {}

    def set_run(self, run: Run) -> None:
        self._run = run

    @property
    def run(self) -> Run:
        return self._run

    def create_message(
        self, content: RecordDict, message_type: str, dst_node_id: int, group_id: str, ttl: float | None = None
    ) -> Message:
        return Message(content, dst_node_id, message_type, ttl=ttl, group_id=group_id)

    def get_node_ids(self) -> Iterable[int]:
        return list(self.contexts)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        return [self._deliver(m, None) for m in messages]

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return [self._replies.pop(i) for i in message_ids if i in self._replies]

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> Iterable[Message]:
        ids = [self._deliver(m, timeout) for m in messages]
        return list(self.pull_messages(ids))

    def _deliver(self, message: Message, timeout: float | None) -> str:
        message_id = message.object_id  # as Flower's deployment grid: replies name it, wire sizes count it
        message.metadata.__dict__["_message_id"] = message_id
        context = self.contexts.get(int(message.metadata.dst_node_id))
        if context is None:
            return message_id  # no such node: never answers
        start = time.perf_counter()
        try:
            reply = self.client_app(message, context)
        except Exception as err:
            reason = f"{type(err).__name__}: {err}"
            reply = Message(Error(code=CLIENT_APP_RAISED_EXCEPTION, reason=reason), reply_to=message)
        if timeout is None or time.perf_counter() - start <= timeout:
            self._replies[message_id] = reply
        return message_id
