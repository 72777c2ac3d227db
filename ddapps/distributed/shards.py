"""The bookkeeping shared by every class-sharded distiller (:mod:`ddapps.distributed`)."""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from ddapps.data import Benchmark
from ddapps.errors import ConfigError
from ddapps.nets import batch_norm_layers
from ddapps.synthetic import SyntheticSet


class ClassShards:
    """Mixin for an :class:`~ddapps.methods.iterative.IterativeDistiller` whose loss is a sum of
    per-class terms: rank ``rank`` of ``world_size`` owns a contiguous block of classes.

    Put it first in the bases (``class ShardedDM(ClassShards, DistributionMatching)``). It registers
    a hook that sums the image gradient over ranks, answers :meth:`owns_class` for the method's
    class loop, and turns a rank's partial loss into the global one (:meth:`global_loss`).
    """

    def __init__(self, config: Any = None, *, rank: int = 0, world_size: int = 1, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)  # type: ignore[call-arg]  # a mixin before a Distiller
        if not 0 <= rank < world_size:
            raise ConfigError(f"rank must be in [0, {world_size}), got {rank}")
        self.rank, self.world_size = rank, world_size
        self.owned: frozenset[int] = frozenset()

    def shard_classes(self, num_classes: int) -> None:
        """Take this rank's contiguous block of ``num_classes`` (empty when ranks outnumber classes)."""
        self.owned = frozenset(torch.arange(num_classes).tensor_split(self.world_size)[self.rank].tolist())

    def owns_class(self, c: int) -> bool:
        return c in self.owned

    def sum_over_ranks(self, tensor: Tensor) -> Tensor:
        """``tensor`` summed over all ranks (a new tensor; the input itself as-is with one rank)."""
        if self.world_size > 1:
            tensor = tensor.clone()
            dist.all_reduce(tensor)
        return tensor

    def init_params(
        self, real: Benchmark, ipc: int, init: SyntheticSet | None, generator: torch.Generator
    ) -> dict[str, Tensor]:
        params = super().init_params(real, ipc, init, generator)  # type: ignore[misc]
        params["images"].register_hook(self.sum_over_ranks)
        return params

    def global_loss(self, local: Tensor, images: Tensor) -> Tensor:
        """Value: the loss summed over ranks; gradient: this rank's terms only (the image hook sums
        those). ``images`` joins the graph so a rank without classes still joins the all-reduce."""
        local = local + images.sum() * 0
        total = self.sum_over_ranks(local.detach())
        return local - local.detach() + total

    def refuse_batch_norm(self, net: nn.Module, why: str) -> None:
        """:class:`ConfigError` if ``net`` has batch normalisation (``why``: how it couples classes)."""
        if batch_norm_layers(net):
            raise ConfigError(f"distributed {self.name} needs a network without batch norm ({why})")  # type: ignore[attr-defined]
