"""What a federated run measured: bytes up/down and accuracy per round, failures, privacy metadata.

Bytes are Flower's own ``count_bytes()`` of every record in a message's content (see
:func:`ddapps.federated.records.record_bytes`): ``bytes_down`` sums the instructions the server
sent in a round, ``bytes_up`` the replies it received (an error reply carries no records and
counts 0). Round 0 is the initial global model (no communication).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

from flwr.app import Message

from ddapps.federated.records import record_bytes


@dataclass
class RoundLog:
    """One round: bytes, the clients that answered, failures, the global model's accuracy."""

    round: int
    bytes_up: int = 0
    bytes_down: int = 0
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
            nodes.append(int(message.metadata.dst_node_id))
        return nodes

    def received(self, number: int, expected: Iterable[int], replies: Iterable[Message]) -> list[Message]:
        """Account the replies of round ``number``; record errors and time-outs; return the good ones.

        Good replies are returned sorted by source node, so aggregation order (and therefore
        the floating-point result) does not depend on arrival order.
        """
        entry = self.round(number)
        good, seen = [], set()
        for reply in sorted(replies, key=lambda m: int(m.metadata.src_node_id)):
            node = int(reply.metadata.src_node_id)
            seen.add(node)
            if reply.has_error():
                self.fail(number, node, "error", str(reply.error.reason))
            else:
                entry.bytes_up += record_bytes(reply.content)
                good.append(reply)
        for node in sorted(set(expected) - seen):
            self.fail(number, node, "timeout", "no reply before the round timeout")
        entry.replies = len(good)
        return good

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
            "final_accuracy": self.final_accuracy,
            "failures": self.failures,
            "privacy": self.privacy,
            "rounds": [asdict(r) for r in self.rounds],
        }
