"""Client sampling: the seeded share of the clients that takes part in a round.

McMahan et al. (AISTATS 2017) sample a fraction ``C`` of the clients each round. Flower's
strategies sample with Python's global ``random`` module; ddapps draws the sample from a
generator derived from the run's seed and the round instead, so every mode and engine sees the
same clients in the same round and a run can be repeated exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ddapps.errors import ConfigError
from ddapps.utils.seeding import derive_seed, make_generator


def sample_size(num_nodes: int, fraction: float) -> int:
    """``max(1, round(fraction * num_nodes))`` (all nodes when ``fraction`` is 1)."""
    if not 0 < fraction <= 1:
        raise ConfigError(f"fraction must lie in (0, 1], got {fraction}")
    return min(num_nodes, max(1, round(fraction * num_nodes)))


def sample_nodes(nodes: Sequence[int], fraction: float, seed: int, server_round: int) -> list[int]:
    """The sorted nodes of round ``server_round``: a seeded sample of :func:`sample_size` of ``nodes``."""
    ordered = sorted(int(n) for n in nodes)
    k = sample_size(len(ordered), fraction)
    if k >= len(ordered):
        return ordered
    gen = make_generator(derive_seed(seed, "sample-clients", server_round))
    chosen = torch.randperm(len(ordered), generator=gen)[:k].sort().values
    return [ordered[i] for i in chosen.tolist()]
