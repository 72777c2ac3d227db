"""Seeded client partitions of a training split: IID, Dirichlet(alpha) label skew, quantity skew.

Equivalent to flwr-datasets' ``IidPartitioner`` and ``DirichletPartitioner`` (which is not a
dependency of ddapps): for label skew, each class ``c`` draws client proportions
``p_c ~ Dir(alpha * 1_N)`` and its shuffled indices are cut at the cumulative proportions
(Hsu et al., 2019, "Measuring the effects of non-identical data distribution"). Draws are
repeated until every client holds at least ``min_size`` samples. Small ``alpha`` gives strong
skew; large ``alpha`` approaches IID. Quantity skew (Li et al., "Federated Learning on Non-IID
Data Silos: An Experimental Study", ICDE 2022): client shares of the whole set
``q ~ Dir(alpha * 1_N)``, labels IID within each part.

flwr-datasets 0.6.1 resolves with the pinned Flower but brings ``datasets``, ``pyarrow``,
``huggingface_hub`` and ``seaborn`` and partitions Hugging Face ``Dataset`` objects; ddapps'
splits are tensors, so these few lines stay ours.

All randomness comes from the ``torch.Generator`` passed in (the Dirichlet draws use a NumPy
generator seeded from it), so the same seed gives the same partition in every process -- the
server and every client compute it independently and agree.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ddapps.errors import ConfigError
from ddapps.utils.seeding import draw_seed

PARTITIONERS = ("iid", "dirichlet", "quantity")
_MAX_DRAWS = 100


def iid_partition(n: int, num_clients: int, generator: torch.Generator) -> list[Tensor]:
    """Shuffle ``range(n)`` and cut it into ``num_clients`` parts of near-equal size (sorted)."""
    _check_clients(n, num_clients)
    order = torch.randperm(n, generator=generator)
    return [part.sort().values for part in torch.tensor_split(order, num_clients)]


def dirichlet_partition(
    labels: Tensor, num_clients: int, alpha: float, generator: torch.Generator, *, min_size: int = 10
) -> list[Tensor]:
    """Label-skewed parts: class ``c`` is split among clients by ``Dir(alpha)`` proportions.

    Returns one sorted index tensor per client. Raises :class:`ConfigError` when no draw in
    ``100`` gives every client ``min_size`` samples (lower ``min_size`` or raise ``alpha``).
    """
    if not alpha > 0:
        raise ConfigError(f"dirichlet alpha must be > 0, got {alpha}")
    n = int(labels.numel())
    _check_clients(n, num_clients)
    if min_size * num_clients > n:
        raise ConfigError(f"cannot give {num_clients} clients {min_size} samples each from {n}")
    rng = np.random.default_rng(draw_seed(generator))
    classes = torch.unique(labels).tolist()
    by_class = {c: (labels == c).nonzero().flatten() for c in classes}
    for _ in range(_MAX_DRAWS):
        parts: list[list[Tensor]] = [[] for _ in range(num_clients)]
        for c in classes:
            idx = by_class[c][torch.randperm(by_class[c].numel(), generator=generator)]
            share = rng.dirichlet(np.full(num_clients, float(alpha)))
            cuts = (np.cumsum(share)[:-1] * idx.numel()).astype(np.int64).tolist()
            for client, piece in enumerate(torch.tensor_split(idx, cuts)):
                parts[client].append(piece)
        out = [torch.cat(p).sort().values for p in parts]
        if min(int(p.numel()) for p in out) >= min_size:
            return out
    raise ConfigError(
        f"no Dirichlet({alpha}) draw gave all {num_clients} clients >= {min_size} samples; "
        "raise alpha or lower min_size"
    )


def quantity_partition(
    n: int, num_clients: int, alpha: float, generator: torch.Generator, *, min_size: int = 10
) -> list[Tensor]:
    """Size-skewed IID parts: client ``k`` gets a share ``q_k`` of the shuffled indices,
    ``q ~ Dir(alpha)``, redrawn (up to 100 times) until every client holds ``min_size`` samples."""
    if not alpha > 0:
        raise ConfigError(f"quantity alpha must be > 0, got {alpha}")
    _check_clients(n, num_clients)
    if min_size * num_clients > n:
        raise ConfigError(f"cannot give {num_clients} clients {min_size} samples each from {n}")
    rng = np.random.default_rng(draw_seed(generator))
    order = torch.randperm(n, generator=generator)
    for _ in range(_MAX_DRAWS):
        cuts = (np.cumsum(rng.dirichlet(np.full(num_clients, float(alpha))))[:-1] * n).astype(np.int64)
        parts = [p.sort().values for p in torch.tensor_split(order, cuts.tolist())]
        if min(int(p.numel()) for p in parts) >= min_size:
            return parts
    raise ConfigError(
        f"no quantity-skew Dir({alpha}) draw gave all {num_clients} clients >= {min_size} samples; raise alpha"
    )


def make_partition(
    labels: Tensor,
    num_clients: int,
    kind: str,
    alpha: float,
    generator: torch.Generator,
    *,
    max_per_client: int = 0,
) -> list[Tensor]:
    """The ``kind`` partition (``iid``, ``dirichlet`` or ``quantity``), each part optionally subsampled.

    ``max_per_client > 0`` keeps a seeded random subset of at most that many samples per client
    (a compute budget; the label skew of the part is kept in expectation).
    """
    if kind not in PARTITIONERS:
        raise ConfigError(f"unknown partitioner {kind!r}; choose one of: {', '.join(PARTITIONERS)}")
    if kind == "iid":
        parts = iid_partition(int(labels.numel()), num_clients, generator)
    elif kind == "quantity":
        parts = quantity_partition(int(labels.numel()), num_clients, alpha, generator)
    else:
        parts = dirichlet_partition(labels, num_clients, alpha, generator)
    if max_per_client < 0:
        raise ConfigError(f"max_per_client must be >= 0, got {max_per_client}")
    if max_per_client:
        parts = [p[torch.randperm(p.numel(), generator=generator)[:max_per_client]].sort().values for p in parts]
    return parts


def label_histogram(labels: Tensor, parts: list[Tensor], num_classes: int) -> Tensor:
    """``[num_clients, num_classes]`` counts of each class in each part."""
    return torch.stack([torch.bincount(labels[p], minlength=num_classes) for p in parts])


def _check_clients(n: int, num_clients: int) -> None:
    if isinstance(num_clients, bool) or not isinstance(num_clients, int) or num_clients < 1:
        raise ConfigError(f"the number of clients must be a positive integer, got {num_clients!r}")
    if num_clients > n:
        raise ConfigError(f"cannot split {n} samples among {num_clients} clients")
