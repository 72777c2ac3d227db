"""What a federated run measured: bytes up/down and accuracy per round, failures, privacy metadata.

Bytes are Flower's own ``count_bytes()`` of every record in a message's content (see
:func:`ddapps.federated.records.record_bytes`): ``bytes_down`` sums the instructions the server
sent in a round, ``bytes_up`` the replies it received (an error reply carries no records and
counts 0). Round 0 is the initial global model (no communication).

Wire bytes are what the same messages take on Flower's Fleet API between the SuperLink and the
SuperNodes, as the SuperLink counts them (:mod:`ddapps.federated.wire_size`): ``wire_bytes_down``
sums, over a round's instructions, their pulls, and over its replies, the SuperLink's answers to
their pushes; ``wire_bytes_up`` the nodes' pull requests and pushed replies (error replies
included: a node's error crosses the wire; a reply the SuperLink writes itself counts 0).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

from flwr.app import Message

from ddapps.federated.records import record_bytes
from ddapps.federated.wire_size import SUPERLINK_NODE_ID, instruction_bytes, reply_bytes


@dataclass
class RoundLog:
    """One round: bytes, the clients that answered, failures, the global model's accuracy."""

    round: int
    bytes_up: int = 0
    bytes_down: int = 0
    wire_bytes_up: int = 0
    wire_bytes_down: int = 0
    replies: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
    accuracy: float | None = None
    seconds: float = 0.0


@dataclass
class RunLog:
    """A whole run (one mode, one seed)."""

    mode: str
    seed: int
    rounds: list[RoundLog] = field(default_factory=list)
    privacy: list[dict[str, Any]] = field(default_factory=list)
    node_partitions: dict[int, int] = field(default_factory=dict)
    destinations: dict[str, int] = field(default_factory=dict, repr=False)
    """Destination node of every instruction sent, by its deployment message id (its object id)."""
    leakage: list[dict[str, Any]] = field(default_factory=list)
    """Per upload of a distilled mode: round, node, partition, ``nn_client`` / ``nn_nonclient``
    per image (:mod:`ddapps.federated.leakage`)."""

    def round(self, number: int) -> RoundLog:
        """The log of round ``number`` (created on first use)."""
        for entry in self.rounds:
            if entry.round == number:
                return entry
        entry = RoundLog(round=number)
        self.rounds.append(entry)
        self.rounds.sort(key=lambda r: r.round)
        return entry

    def sent(self, number: int, messages: Iterable[Message]) -> list[int]:
        """Account the instructions of round ``number``; return their destination nodes."""
        entry = self.round(number)
        nodes = []
        for message in messages:
            entry.bytes_down += record_bytes(message.content)
            down, up = instruction_bytes(message)
            entry.wire_bytes_down += down
            entry.wire_bytes_up += up
            nodes.append(int(message.metadata.dst_node_id))
            self.destinations[message.object_id] = nodes[-1]
        return nodes

    def received(self, number: int, expected: Iterable[int], replies: Iterable[Message]) -> list[Message]:
        """Account the replies of round ``number``; record errors and time-outs; return the good ones.

        Good replies are returned sorted by source node, so aggregation order (and therefore
        the floating-point result) does not depend on arrival order. A reply the SuperLink wrote
        for a node (e.g. "node unavailable" for a node that stopped sending heartbeats) is
        recorded against the node its instruction was sent to.
        """
        entry = self.round(number)
        good, seen = [], set()
        for node, reply in sorted(((self._sender(m), m) for m in replies), key=lambda pair: pair[0]):
            seen.add(node)
            down, up = reply_bytes(reply)
            entry.wire_bytes_down += down
            entry.wire_bytes_up += up
            if reply.has_error():
                self.fail(number, node, "error", str(reply.error.reason))
            else:
                entry.bytes_up += record_bytes(reply.content)
                good.append(reply)
        for node in sorted(set(expected) - seen):
            self.fail(number, node, "timeout", "no reply before the round timeout")
        entry.replies = len(good)
        return good

    def _sender(self, reply: Message) -> int:
        """The node a reply answers for: its source, or its instruction's destination if the SuperLink wrote it."""
        node = int(reply.metadata.src_node_id)
        if node == SUPERLINK_NODE_ID:
            return self.destinations.get(str(reply.metadata.reply_to_message_id), node)
        return node

    def fail(self, number: int, node: int, kind: str, reason: str) -> None:
        """Record that ``node`` failed in round ``number``."""
        failure: dict[str, Any] = {"round": number, "node_id": node, "kind": kind, "reason": reason}
        if node in self.node_partitions:
            failure["partition_id"] = self.node_partitions[node]
        self.round(number).failures.append(failure)

    # ---------------------------------------------------------------- views
    @property
    def bytes_up(self) -> int:
        return sum(r.bytes_up for r in self.rounds)

    @property
    def bytes_down(self) -> int:
        return sum(r.bytes_down for r in self.rounds)

    @property
    def wire_bytes_up(self) -> int:
        return sum(r.wire_bytes_up for r in self.rounds)

    @property
    def wire_bytes_down(self) -> int:
        return sum(r.wire_bytes_down for r in self.rounds)

    @property
    def final_accuracy(self) -> float:
        scored = [r.accuracy for r in self.rounds if r.accuracy is not None]
        return float(scored[-1]) if scored else float("nan")

    @property
    def failures(self) -> list[dict[str, Any]]:
        return [f for r in self.rounds for f in r.failures]

    def curve(self) -> list[tuple[int, int, float]]:
        """``(cumulative bytes up+down, round, accuracy)`` after each evaluated round."""
        points, total = [], 0
        for r in self.rounds:
            total += r.bytes_up + r.bytes_down
            if r.accuracy is not None:
                points.append((total, r.round, float(r.accuracy)))
        return points

    def as_dict(self) -> dict[str, Any]:
        """JSON-able summary with per-round detail."""
        return {
            "mode": self.mode,
            "seed": self.seed,
            "bytes_up": self.bytes_up,
            "bytes_down": self.bytes_down,
            "wire_bytes_up": self.wire_bytes_up,
            "wire_bytes_down": self.wire_bytes_down,
            "final_accuracy": self.final_accuracy,
            "failures": self.failures,
            "privacy": self.privacy,
            "leakage": self.leakage,
            "rounds": [asdict(r) for r in self.rounds],
        }
