"""Command line of ``torchrun ... -m ddapps.distributed`` (see :mod:`ddapps.distributed`).

Options are ``ddapps distill``'s for the method (``--set``, ``--config``, ``--iterations``,
``--seed``, ``--precision``, data flags); ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` come from torchrun.
Rank 0 writes ``synset.safetensors``, ``results.json`` and ``report.md``; no checkpoints.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Sequence

import torch
import torch.distributed as dist

from ddapps.distributed import SHARDED_METHODS


def _parser() -> argparse.ArgumentParser:
    from ddapps.cli.common import Parser, add_data_args, add_run_args

    p = Parser(
        prog="torchrun ... -m ddapps.distributed",
        description="DM, DC or DSA with the classes split over ranks; SRe2L or RDED with their units split",
    )
    p.add_argument("--method", choices=sorted(SHARDED_METHODS), default="dm")
    add_data_args(p)
    p.add_argument("--ipc", type=int, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--config", type=Path, help="JSON file of the method's config overrides")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--iterations", type=int)
    add_run_args(p)
    return p


def run(args: argparse.Namespace) -> int:
    """Distil with ``--method`` on this rank (``RANK``/``WORLD_SIZE`` from torchrun); rank 0 writes ``--out``."""
    from ddapps.cli.common import load_benchmark, method_overrides, setup_run
    from ddapps.report import command_line, write_run
    from ddapps.utils.memory import PeakMemory
    from ddapps.utils.precision import use_precision
    from ddapps.utils.seeding import make_generator

    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    device = setup_run(args)
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    overrides = method_overrides(args)
    sharded = SHARDED_METHODS[args.method]
    distiller = sharded(overrides, rank=rank, world_size=world, device=device, progress=rank == 0 and not args.quiet)
    if world > 1:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        benchmark = load_benchmark(args)
        with PeakMemory(device) as memory:
            start = time.perf_counter()
            with use_precision(args.precision):
                synset = distiller.distill(benchmark, args.ipc, generator=make_generator(args.seed))
            seconds = time.perf_counter() - start
        synset.meta |= {"seed": args.seed, "world_size": world}
        if rank == 0:
            synset.save(args.out / "synset.safetensors")
            row = {
                "dataset": benchmark.name,
                "method": args.method,
                "ipc": args.ipc,
                "world_size": world,
                "distill_seconds": round(seconds, 3),
                "peak_mem_mb": round(memory.peak_mb, 1),  # rank 0's
                "stored_floats": synset.stored_floats(),
            }
            config = {"overrides": overrides, "seed": args.seed, "precision": args.precision, "world_size": world}
            command = command_line("torchrun ... -m ddapps.distributed")
            write_run(
                args.out,
                f"distributed {args.method}",
                config,
                device,
                [row],
                f"# ddapps distributed {args.method}\n\nCommand: `{command}`\n\n{row}\n",
            )
        if world > 1:
            dist.barrier()  # no rank leaves the group while rank 0 is still writing
    finally:
        if world > 1:
            dist.destroy_process_group()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m ddapps.distributed`` (one process per rank under torchrun)."""
    from ddapps.errors import exit_status

    args = _parser().parse_args(argv)
    return exit_status(lambda: run(args))
