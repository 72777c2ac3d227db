"""Seeded IID and Dirichlet partitions."""

from __future__ import annotations

import pytest
import torch

from ddapps.errors import ConfigError
from ddapps.federated.partition import dirichlet_partition, iid_partition, label_histogram, make_partition
from ddapps.utils.seeding import make_generator

LABELS = torch.arange(10).repeat_interleave(100)


def _check_disjoint_cover(parts: list[torch.Tensor], n: int) -> None:
    joined = torch.cat(parts)
    assert joined.numel() == n
    assert torch.equal(joined.sort().values, torch.arange(n))


def test_iid_parts_are_disjoint_balanced_and_seeded() -> None:
    parts = iid_partition(1000, 7, make_generator(0))
    _check_disjoint_cover(parts, 1000)
    assert {p.numel() for p in parts} <= {142, 143}
    again = iid_partition(1000, 7, make_generator(0))
    assert all(torch.equal(a, b) for a, b in zip(parts, again))
    other = iid_partition(1000, 7, make_generator(1))
    assert not all(torch.equal(a, b) for a, b in zip(parts, other))


def test_dirichlet_covers_everything_and_is_deterministic() -> None:
    parts = dirichlet_partition(LABELS, 10, 0.5, make_generator(3))
    _check_disjoint_cover(parts, 1000)
    assert min(p.numel() for p in parts) >= 10
    again = dirichlet_partition(LABELS, 10, 0.5, make_generator(3))
    assert all(torch.equal(a, b) for a, b in zip(parts, again))


def test_smaller_alpha_means_stronger_label_skew() -> None:
    def skew(alpha: float) -> float:
        hist = label_histogram(LABELS, dirichlet_partition(LABELS, 10, alpha, make_generator(0)), 10).float()
        return float((hist.max(dim=1).values / hist.sum(dim=1)).mean())

    assert skew(0.1) > skew(1.0) > skew(100.0)
    assert skew(100.0) < 0.25  # near IID: no class dominates a client


def test_subsampling_and_bad_arguments() -> None:
    parts = make_partition(LABELS, 4, "dirichlet", 0.5, make_generator(0), max_per_client=30)
    assert all(p.numel() <= 30 for p in parts)
    with pytest.raises(ConfigError, match="alpha"):
        dirichlet_partition(LABELS, 4, 0.0, make_generator(0))
    with pytest.raises(ConfigError, match="partitioner"):
        make_partition(LABELS, 4, "shards", 0.5, make_generator(0))
    with pytest.raises(ConfigError, match="clients"):
        iid_partition(10, 0, make_generator(0))
    with pytest.raises(ConfigError):
        dirichlet_partition(LABELS, 200, 0.5, make_generator(0))


def test_quantity_skew_parts_vary_in_size_cover_the_data_and_are_seeded() -> None:
    from ddapps.federated.partition import quantity_partition

    # Prepare / Execute
    parts = quantity_partition(1000, 10, 0.5, make_generator(0))
    again = make_partition(LABELS, 10, "quantity", 0.5, make_generator(0))
    # Assert
    _check_disjoint_cover(parts, 1000)
    sizes = sorted(int(p.numel()) for p in parts)
    assert sizes[0] >= 10 and sizes[-1] > 3 * sizes[0]  # Dir(0.5) shares: strongly unequal sizes
    assert all(torch.equal(a, b) for a, b in zip(parts, again))
    with pytest.raises(ConfigError, match="alpha"):
        quantity_partition(1000, 10, 0.0, make_generator(0))
