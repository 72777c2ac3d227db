"""Multi-process distillation: the classes split over ranks (``torch.distributed``, ``torchrun``).

    torchrun --nproc_per_node=4 -m ddapps.distributed --method dm --dataset cifar10 --ipc 50 --out runs/dm50
    torchrun --nproc_per_node=8 -m ddapps.distributed --method dsa --device cuda --dataset cifar10 --ipc 10 --out runs/dsa10
    torchrun --nproc_per_node=8 -m ddapps.distributed --method sre2l --device cuda --dataset imagefolder \
        --data-dir DIR --image-size 224 --ipc 10 --set teacher=T.safetensors --out runs/sre2l10

DM (Zhao & Bilen, WACV 2023) and gradient matching (DC: Zhao, Mopuri & Bilen, ICLR 2021; DSA:
Zhao & Bilen, ICML 2021) minimise a sum of independent per-class terms, so rank ``r`` evaluates
only the terms of its contiguous block of classes (:mod:`.shards`). Every rank draws the same
networks, real batches and augmentations from the same per-iteration generator (for all classes,
keeping its own), holds the whole synthetic set, and a gradient hook sums the image gradient over
ranks (``all_reduce``) before the identical optimiser step. DC/DSA also train their network
between outer steps; each training batch is split over the ranks like DistributedDataParallel
does (per-rank gradient of its rows, summed over ranks), so every rank takes the same network
step. The result equals the single-process run up to the floating-point order of the sums.
SRe2L and RDED split their independent units of work (recover batches, classes) over the ranks
instead (:mod:`.teacher_units`); their result equals the single-process one exactly.
Backends: gloo on CPU, nccl on CUDA (``cuda:$LOCAL_RANK``). Rank 0 writes the outputs.
"""

from typing import Callable

from ddapps.distributed.dm import ShardedDM
from ddapps.distributed.gradient_matching import SHARDED_GRADIENT_MATCHING, ShardedDC, ShardedDSA
from ddapps.distributed.shards import ClassShards
from ddapps.distributed.teacher_units import ShardedRDED, ShardedSRe2L, UnitShards
from ddapps.methods.base import Distiller

SHARDED_METHODS: dict[str, Callable[..., Distiller]] = {
    "dm": ShardedDM,
    **SHARDED_GRADIENT_MATCHING,
    "sre2l": ShardedSRe2L,
    "rded": ShardedRDED,
}
"""Method name -> its distiller with the work split over ranks."""

__all__ = [
    "SHARDED_METHODS",
    "ClassShards",
    "ShardedDC",
    "ShardedDM",
    "ShardedDSA",
    "ShardedRDED",
    "ShardedSRe2L",
    "UnitShards",
]
