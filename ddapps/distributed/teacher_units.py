"""SRe2L and RDED with their independent units of work split over ranks (:mod:`ddapps.distributed`).

SRe2L's recover (Yin, Xing & Shen, NeurIPS 2023) optimises batches -- one image slot of a block of
classes -- that never interact, and RDED (Sun et al., CVPR 2024) selects and stitches each class's
patches alone. Rank ``r`` of ``W`` computes units ``r, r + W, r + 2W, ...`` (round robin, so the
ranks' shares differ by at most one unit) with the per-unit generators every rank derives alike;
one ``all_reduce`` (a sum: the rows of other ranks' units are zero) then gives every rank the whole
set, which equals the single-process one exactly. The teacher's relabelling runs whole on every
rank. Several ranks need a saved teacher (``teacher=FILE``): ranks training their own could differ.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch.distributed as dist
from torch import Tensor

from ddapps.data import Benchmark
from ddapps.errors import ConfigError
from ddapps.methods.rded import RealisticDiverseDistillation
from ddapps.methods.sre2l import SqueezeRecoverRelabel
from ddapps.methods.teacher_based import TeacherDistiller
from ddapps.teacher import Teacher


class UnitShards:
    """Mixin before a :class:`~ddapps.methods.teacher_based.TeacherDistiller`: rank ``rank`` of
    ``world_size`` owns every ``world_size``-th unit."""

    def __init__(self, config: Any = None, *, rank: int = 0, world_size: int = 1, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)  # type: ignore[call-arg]  # a mixin before a Distiller
        if not 0 <= rank < world_size:
            raise ConfigError(f"rank must be in [0, {world_size}), got {rank}")
        self.rank, self.world_size = rank, world_size

    def owns_unit(self, unit: int) -> bool:
        return unit % self.world_size == self.rank

    def combine_units(self, images: Tensor) -> Tensor:
        if self.world_size == 1:
            return images
        assert isinstance(self, TeacherDistiller)
        summed = images.to(self.device).clone()
        dist.all_reduce(summed)
        return summed.to("cpu")

    def get_teacher(self, real: Benchmark) -> Teacher:
        assert isinstance(self, TeacherDistiller)
        path = self.config.teacher
        if self.world_size > 1 and not (path and Path(path).is_file()):
            raise ConfigError(
                f"distributed {self.name} needs a saved teacher: run `ddapps teacher ... --out FILE` first "
                "and pass --set teacher=FILE"
            )
        return super().get_teacher(real)  # type: ignore[misc]


class ShardedSRe2L(UnitShards, SqueezeRecoverRelabel):
    """SRe2L with its recover batches split over ranks."""


class ShardedRDED(UnitShards, RealisticDiverseDistillation):
    """RDED with its classes split over ranks."""
