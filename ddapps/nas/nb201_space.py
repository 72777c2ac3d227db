"""The NAS-Bench-201 cell space as an NNI 3.0 ``ModelSpace`` of the core's network (needs the ``nas`` extra).

One ``nni.choice`` per edge of the cell, labelled by the edge (``0_1``, ``0_2``, ``1_2``, ``0_3``,
``1_3``, ``2_3``; the order of :data:`~ddapps.nas.nb201.EDGES`) over the five ops of
:data:`~ddapps.nas.nb201.OPS`. When NNI freezes a sample the wrapper becomes the core's
:class:`~ddapps.nas.nb201.NB201Net` (the same code the rank study trains), so a search's trial and
the study score an architecture with the same network. NNI's own ``nni.nas.hub.pytorch.NasBench201``
builds the same network (parameter counts checked in ``tests/nas/test_nb201.py``) but names its ops
differently and takes three input channels only; this space maps samples straight to the benchmark's
architecture strings (:func:`sample_to_ops`) for the ground-truth lookup.
"""

from __future__ import annotations

from typing import Any

import nni
import torch
from nni.nas.nn.pytorch import ModelSpace, ParametrizedModule

from ddapps.nas.nb201 import EDGES, OPS, NB201Net

EDGE_LABELS = tuple(f"{i}_{j}" for i, j in EDGES)


class NB201ByEdge(NB201Net):
    """:class:`NB201Net` whose six ops are keyword arguments (one per edge label), as NNI needs them."""

    def __init__(self, in_channels: int, num_classes: int, channels: int, cells_per_stage: int, **edges: str) -> None:
        ops = tuple(edges[f"e{label}"] for label in EDGE_LABELS)
        super().__init__(ops, in_channels, num_classes, channels, cells_per_stage)


class MutableNB201(ParametrizedModule, NB201ByEdge, wraps=NB201ByEdge):  # type: ignore[call-arg]  # NNI metaclass
    """``NB201ByEdge`` whose edge ops may be ``nni.choice`` mutables."""


class NB201Space(ModelSpace):
    """NNI model space of NAS-Bench-201 cells at width ``channels`` and ``cells_per_stage`` cells per stage."""

    def __init__(self, in_channels: int, num_classes: int, channels: int = 16, cells_per_stage: int = 5) -> None:
        super().__init__()
        edges = {f"e{label}": nni.choice(label, list(OPS)) for label in EDGE_LABELS}
        with torch.device("meta"):
            self.net = MutableNB201(in_channels, num_classes, channels, cells_per_stage, **edges)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def sample_to_ops(sample: dict[str, Any]) -> tuple[str, ...]:
    """The architecture (op tuple in edge order) of an NNI sample of :class:`NB201Space`."""
    return tuple(str(sample[label]) for label in EDGE_LABELS)


def ops_to_sample(ops: tuple[str, ...]) -> dict[str, str]:
    """The NNI sample of :class:`NB201Space` that freezes to the architecture ``ops``."""
    return dict(zip(EDGE_LABELS, ops))
