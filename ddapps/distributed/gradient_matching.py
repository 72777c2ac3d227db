"""DC and DSA with the classes and the network's training batches split over ranks.

Gradient matching (DC: Zhao, Mopuri & Bilen, ICLR 2021; DSA: Zhao & Bilen, ICML 2021) spends its
time in two places: the per-class gradients of the matching loss, split here by class like DM's
terms, and the ``inner_loop`` epochs that train the network on the synthetic set between outer
steps, split here by batch rows as DistributedDataParallel would (each rank's gradient of the
summed loss of its rows over the batch size, summed over ranks in one all-reduce), so every rank
takes the same network step. Batch-normalised networks are allowed: their statistics come from
real data every rank draws alike and are frozen during the matching; their training steps run
whole on every rank (batch statistics need the whole batch).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ddapps.data import Benchmark
from ddapps.distributed.shards import ClassShards
from ddapps.methods.gradient_matching import DatasetCondensation, GradientMatching, SiameseAugmentedCondensation
from ddapps.utils.precision import parameter_gradients


class ShardedGradientMatching(ClassShards):
    """Mixin: put it before a :class:`~ddapps.methods.gradient_matching.GradientMatching` subclass."""

    def setup(self, real: Benchmark, ipc: int, generator: torch.Generator) -> None:
        super().setup(real, ipc, generator)  # type: ignore[misc]
        self.shard_classes(real.num_classes)

    def matching_loss(self, images: Tensor, ipc: int, generator: torch.Generator) -> Tensor:
        return self.global_loss(super().matching_loss(images, ipc, generator), images)  # type: ignore[misc]

    def batch_gradients(self, x: Tensor, labels: Tensor) -> list[Tensor]:
        """The whole batch's mean cross-entropy gradient, from this rank's rows plus an all-reduce."""
        params: list[Tensor] = self.net_params  # type: ignore[attr-defined]
        rows = torch.arange(x.shape[0]).tensor_split(self.world_size)[self.rank]
        if rows.numel():
            lo, hi = int(rows[0]), int(rows[-1]) + 1
            share = (hi - lo) / x.shape[0]  # mean over the rows -> this rank's part of the batch mean
            grads = [g * share for g in parameter_gradients(self.net, x[lo:hi], labels[lo:hi])]  # type: ignore[attr-defined]
        else:
            grads = [torch.zeros_like(p) for p in params]
        flat = self.sum_over_ranks(torch.cat([g.reshape(-1) for g in grads]))
        return [chunk.view_as(p) for chunk, p in zip(flat.split([p.numel() for p in params]), params)]


class ShardedDC(ShardedGradientMatching, DatasetCondensation):
    """DC with classes and training batches split over ranks."""


class ShardedDSA(ShardedGradientMatching, SiameseAugmentedCondensation):
    """DSA with classes and training batches split over ranks."""


SHARDED_GRADIENT_MATCHING: dict[str, type[GradientMatching]] = {"dc": ShardedDC, "dsa": ShardedDSA}
