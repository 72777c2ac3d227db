"""The shared iteration loop of :class:`ddapps.methods.iterative.IterativeDistiller`."""

from __future__ import annotations

import weakref

import torch

from ddapps.methods.dm import DistributionMatching
from ddapps.utils.seeding import make_generator
from tests.conftest import fake_benchmark


class _RecordingDM(DistributionMatching):
    """DM that checks, when each loss is built, whether the previous iteration's loss is still alive."""

    def __init__(self, overrides: dict) -> None:
        super().__init__(overrides)
        self.previous: weakref.ref | None = None
        self.previous_alive: list[bool] = []

    def loss(self, params, real, ipc, generator, iteration):  # type: ignore[no-untyped-def]
        if self.previous is not None:
            self.previous_alive.append(self.previous() is not None)
        value = super().loss(params, real, ipc, generator, iteration)
        self.previous = weakref.ref(value)
        return value


def test_previous_iterations_graph_is_released_before_the_next_loss() -> None:
    """A graph kept until the next loss replaces it overlaps the next iteration's memory peak."""
    distiller = _RecordingDM({"iterations": 3, "batch_real": 4, "net_options": {"width": 8}})
    synset = distiller.distill(fake_benchmark(), 2, generator=make_generator(0))
    assert distiller.previous_alive == [False, False]
    assert torch.isfinite(synset.images).all()
