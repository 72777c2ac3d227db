"""DM with its per-class loss terms split over ranks (:mod:`ddapps.distributed`).

DM (Zhao & Bilen, WACV 2023) minimises ``sum_c ||mean psi(A(T_c)) - mean psi(A(S_c))||^2``;
rank ``r`` evaluates the terms of its classes under the random network every rank draws alike.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from ddapps.data import Benchmark
from ddapps.distributed.shards import ClassShards
from ddapps.methods.dm import DistributionMatching


class ShardedDM(ClassShards, DistributionMatching):
    """DM whose per-class loss terms are split over ``world_size`` ranks of the default process group."""

    def setup(self, real: Benchmark, ipc: int, generator: torch.Generator) -> None:
        super().setup(real, ipc, generator)
        self.refuse_batch_norm(self.net, "it couples the classes")
        self.shard_classes(real.num_classes)

    def loss(
        self, params: dict[str, Tensor], real: Benchmark, ipc: int, generator: torch.Generator, iteration: int
    ) -> Tensor:
        return self.global_loss(super().loss(params, real, ipc, generator, iteration), params["images"])

    def mean_embedding_gap(
        self, real_batches: Sequence[Tensor], syn_batches: Sequence[Tensor]
    ) -> tuple[Tensor, Tensor]:
        if not real_batches:  # a rank without classes (more ranks than classes)
            return torch.zeros((), device=self.device), torch.zeros(0, device=self.device)
        return super().mean_embedding_gap(real_batches, syn_batches)
