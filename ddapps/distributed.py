"""Multi-process distribution matching: the classes split over ranks (``torch.distributed``).

    torchrun --nproc_per_node=4 -m ddapps.distributed --dataset cifar10 --ipc 50 --out runs/dm50

DM's loss (Zhao & Bilen, WACV 2023) is a sum of independent per-class terms,

    L(S) = sum_c || mean_{x in T_c} psi(A(x)) - mean_{s in S_c} psi(A(s)) ||^2,

so rank ``r`` evaluates only the terms of its contiguous block of classes. Every rank draws the
same random network ``psi`` and the same per-class real batches and augmentations from the same
per-iteration generator (it draws them for all classes and keeps its own), every rank holds the
whole synthetic set, and a gradient hook sums the image gradient over ranks (``all_reduce``) before
the identical optimiser step. The gradient of class ``c``'s images is zero on every rank but the
owner's, so the result equals the single-process run (up to the convolution kernels chosen for a
smaller batch). Networks with batch normalisation couple the classes and are refused. The loss
value shown and checked for divergence is the global sum. Backends: gloo on CPU, nccl on CUDA
(``--device cuda`` uses ``cuda:$LOCAL_RANK``). Rank 0 writes the outputs; no checkpoints.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.distributed as dist
from torch import Tensor, nn

from ddapps.data import Benchmark
from ddapps.errors import ConfigError
from ddapps.methods.dm import DistributionMatching
from ddapps.nets import reinitialize_


class ShardedDM(DistributionMatching):
    """DM whose per-class loss terms are split over ``world_size`` ranks of the default process group."""

    def __init__(self, config: Any = None, *, rank: int = 0, world_size: int = 1, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        if not 0 <= rank < world_size:
            raise ConfigError(f"rank must be in [0, {world_size}), got {rank}")
        self.rank, self.world_size = rank, world_size

    def _sum_over_ranks(self, tensor: Tensor) -> Tensor:
        if self.world_size > 1:
            tensor = tensor.clone()
            dist.all_reduce(tensor)
        return tensor

    def init_params(self, real: Benchmark, ipc: int, init: Any, generator: torch.Generator) -> dict[str, Tensor]:
        params = super().init_params(real, ipc, init, generator)
        params["images"].register_hook(self._sum_over_ranks)
        return params

    def setup(self, real: Benchmark, ipc: int, generator: torch.Generator) -> None:
        super().setup(real, ipc, generator)
        if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in self.net.modules()):
            raise ConfigError("distributed DM needs a network without batch norm (it couples the classes)")
        self.classes = torch.arange(real.num_classes).tensor_split(self.world_size)[self.rank].tolist()

    def loss(
        self, params: dict[str, Tensor], real: Benchmark, ipc: int, generator: torch.Generator, iteration: int
    ) -> Tensor:
        reinitialize_(self.net, generator)
        syn = params["images"]
        mine = set(self.classes)
        real_batches, syn_batches = [], []
        for c in range(real.num_classes):  # every rank consumes the generator for every class
            idx = real.train.class_indices(c)
            pick = idx[torch.randperm(idx.numel(), generator=generator)[: self.config.batch_real]]
            aug = self.dsa.sample(max(pick.numel(), ipc), generator=generator, device=self.device, shared=True) if self.dsa else None
            if c in mine:
                x_real, x_syn = self.real_images[pick.to(self.device)], syn[c * ipc : (c + 1) * ipc]
                if aug is not None:
                    x_real, x_syn = self.dsa.apply(x_real, aug), self.dsa.apply(x_syn, aug)
                real_batches.append(x_real)
                syn_batches.append(x_syn)
        local = syn.sum() * 0  # a rank without classes still joins the gradient all-reduce
        if real_batches:
            local = local + self.mean_embedding_gap(real_batches, syn_batches)[0]
        total = self._sum_over_ranks(local.detach())
        return local - local.detach() + total  # value: the global loss; gradient: this rank's terms


def _parser() -> argparse.ArgumentParser:
    from ddapps.cli import _add_data_args, _add_run_args, _Parser

    p = _Parser(prog="torchrun ... -m ddapps.distributed", description="DM with the classes split over ranks")
    _add_data_args(p)
    p.add_argument("--ipc", type=int, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--config", type=Path, help="JSON file of DM config overrides")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--iterations", type=int)
    _add_run_args(p)
    return p


def run(args: argparse.Namespace) -> int:
    """Distil with DM on this rank (``RANK``/``WORLD_SIZE`` from torchrun); rank 0 writes ``--out``."""
    from ddapps.cli import _load, _overrides, _setup
    from ddapps.report import command_line, results_document, write_outputs
    from ddapps.utils.precision import use_precision
    from ddapps.utils.seeding import make_generator

    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    device = _setup(args)
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    overrides = _overrides(args)
    distiller = ShardedDM(overrides, rank=rank, world_size=world, device=device, progress=rank == 0 and not args.quiet)
    if world > 1:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        benchmark = _load(args)
        start = time.perf_counter()
        with use_precision(args.precision):
            synset = distiller.distill(benchmark, args.ipc, generator=make_generator(args.seed))
        seconds = time.perf_counter() - start
        synset.meta |= {"seed": args.seed, "world_size": world}
        if rank == 0:
            synset.save(args.out / "synset.safetensors")
            row = {"dataset": benchmark.name, "method": "dm", "ipc": args.ipc, "world_size": world,
                   "distill_seconds": round(seconds, 3)}
            config = {"overrides": overrides, "seed": args.seed, "precision": args.precision, "world_size": world}
            write_outputs(args.out, results_document("distributed dm", config, device, [row]),
                          f"# ddapps distributed DM\n\nCommand: `{command_line()}`\n\n{row}\n")
    finally:
        if world > 1:
            dist.destroy_process_group()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m ddapps.distributed`` (one process per rank under torchrun)."""
    import sys

    from ddapps.errors import DDAppsError

    args = _parser().parse_args(argv)
    try:
        return run(args)
    except DDAppsError as err:
        print(f"ddapps: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
