"""Shared fixtures: tiny fake benchmarks built in memory (tests never download)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ddapps.data import Benchmark, from_tensors

# Tests use tiny tensors: one intra-op thread is faster and immune to oversubscription.
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def fake_benchmark(
    num_classes: int = 3, per_class: int = 12, channels: int = 1, size: int = 8, seed: int = 0, public_stats: bool = False
) -> Benchmark:
    """Class-dependent blobs plus noise: learnable, tiny, deterministic (``public_stats``: fixed constants, for DP)."""
    gen = torch.Generator().manual_seed(seed)
    n = num_classes * per_class
    labels = torch.arange(num_classes).repeat_interleave(per_class)
    protos = torch.rand(num_classes, channels, size, size, generator=gen)
    images = (protos[labels] + 0.3 * torch.rand(n, channels, size, size, generator=gen)).clamp(0, 1)
    test_labels = torch.arange(num_classes).repeat(4)
    test_images = (protos[test_labels] + 0.3 * torch.rand(len(test_labels), channels, size, size, generator=gen)).clamp(0, 1)
    return from_tensors(
        images, labels, test_images, test_labels, name="fake", num_classes=num_classes, public_stats=public_stats
    )


@pytest.fixture
def tiny() -> Benchmark:
    return fake_benchmark()
