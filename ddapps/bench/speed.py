"""``ddapps bench speed``: seconds per distillation iteration against the machine's matmul limit.

For each (method, ipc) the method's own loop runs ``warmup + 1 + iterations`` iterations of
:meth:`~ddapps.methods.base.Distiller.distill`; a callback timestamps every iteration (after a
``torch.cuda.synchronize`` on GPU), so the timed work is exactly the method's iteration. The
iteration right after the warm-up runs under ``torch.utils.flop_counter.FlopCounterMode`` (forward
and backward, every op it has a formula for: matmuls and convolutions) and is not timed. The
achieved GFLOP/s (``flops / seconds_per_iter``) is reported beside a measured large matmul on the
same device and threads -- the practical compute limit. Peak memory covers each whole run
(:class:`~ddapps.utils.memory.PeakMemory`). Mean ± std over ``repeats`` runs.
"""

from __future__ import annotations

import logging
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch.utils.flop_counter import FlopCounterMode

from ddapps.budgets import get_budget, with_expert_cache
from ddapps.data import Benchmark
from ddapps.errors import ConfigError
from ddapps.methods import create_distiller
from ddapps.methods.base import IterationEvent, check_ipc
from ddapps.report import command_line, format_table, write_run
from ddapps.utils.memory import PeakMemory
from ddapps.utils.precision import check_precision, use_precision
from ddapps.utils.seeding import make_generator

log = logging.getLogger(__name__)

COLUMNS = (
    "method",
    "ipc",
    "seconds_per_iter",
    "iters_per_second",
    "gflops_achieved",
    "gflops_matmul",
    "matmul_fraction",
    "peak_mem_mb",
)


@dataclass(frozen=True)
class SpeedSettings:
    """How long to measure: iterations timed per run, untimed warm-up iterations (>= 1), runs, matmul size."""

    iterations: int = 10
    warmup: int = 2
    repeats: int = 3
    matmul_size: int = 2048
    matmul_repeats: int = 5

    def __post_init__(self) -> None:
        if self.iterations < 1 or self.warmup < 1 or self.repeats < 1:
            # warm-up >= 1: the FLOP counter starts from a callback, i.e. after some iteration
            raise ConfigError("iterations, warmup and repeats must be >= 1")
        if self.matmul_size < 1 or self.matmul_repeats < 1:
            raise ConfigError("matmul_size and matmul_repeats must be >= 1")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_gflops(
    device: torch.device | str, size: int = 2048, repeats: int = 5, dtype: torch.dtype = torch.float32
) -> float:
    """Best-of-``repeats`` GFLOP/s of one ``size`` x ``size`` matrix product (2 n^3 flops)."""
    device = torch.device(device)
    gen = make_generator(0)
    a = torch.rand(size, size, generator=gen).to(device, dtype)
    b = torch.rand(size, size, generator=gen).to(device, dtype)
    torch.mm(a, b)  # warm-up: kernels selected, caches filled
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        torch.mm(a, b)
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 / best / 1e9


class IterationProbe:
    """Distillation callback: timestamps every iteration and counts the FLOPs of iteration ``warmup + 1``
    (when ``count_flops``; the FLOP counter's dispatch overhead is paid once, in the first run)."""

    def __init__(self, warmup: int, device: torch.device, count_flops: bool = True) -> None:
        self.warmup = warmup
        self.device = device
        self.count_flops = count_flops
        self.stamps: dict[int, float] = {}
        self.flops = 0
        self._counter: FlopCounterMode | None = None

    def __call__(self, event: IterationEvent) -> None:
        _sync(self.device)
        if event.iteration == self.warmup and self.count_flops:
            self._counter = FlopCounterMode(display=False)
            self._counter.__enter__()
        elif self._counter is not None and event.iteration == self.warmup + 1:
            self.close()
        self.stamps[event.iteration] = time.perf_counter()

    def close(self) -> None:
        """Leave the FLOP counter if it is still active (also after an exception)."""
        if self._counter is not None:
            self._counter.__exit__(None, None, None)
            self.flops = int(self._counter.get_total_flops())
            self._counter = None

    def seconds(self) -> list[float]:
        """Seconds of each timed iteration (those after the counted one)."""
        first = self.warmup + 1
        return [self.stamps[i] - self.stamps[i - 1] for i in sorted(self.stamps) if i > first]


def measure_method(
    benchmark: Benchmark,
    method: str,
    ipc: int,
    settings: SpeedSettings,
    *,
    overrides: Mapping[str, Any] | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> dict[str, Any]:
    """Time ``method`` at ``ipc``: one result row (means over ``settings.repeats`` runs).

    The FLOPs are counted in the first run only (the same iteration of every run does the same
    work); ``progress`` prints one line per finished run to stderr."""
    device = torch.device(device)
    total = settings.warmup + 1 + settings.iterations
    config = dict(overrides or {}) | {"iterations": total}
    times, peaks, flops = [], [], 0
    for run in range(settings.repeats):
        distiller = create_distiller(method, config, device=device)
        probe = IterationProbe(settings.warmup, device, count_flops=run == 0)
        with PeakMemory(device) as memory:
            try:
                distiller.distill(benchmark, ipc, generator=make_generator(seed), callbacks=[probe])
            finally:
                probe.close()
        times.append(statistics.fmean(probe.seconds()))
        peaks.append(memory.peak_mb)
        if probe.count_flops:  # the first run; the others skip the counter
            flops = probe.flops
        if progress:
            log.info(
                "bench speed: %s ipc %s run %d/%d: %.4g s/iteration", method, ipc, run + 1, settings.repeats, times[-1]
            )
    mean = statistics.fmean(times)
    return {
        "method": method,
        "ipc": ipc,
        "dataset": benchmark.name,
        "seconds_per_iter": mean,
        "seconds_per_iter_std": statistics.stdev(times) if len(times) > 1 else 0.0,
        "iters_per_second": 1.0 / mean,
        "gflop_per_iter": flops / 1e9,
        "gflops_achieved": flops / mean / 1e9,
        "peak_mem_mb": max(peaks),
        "overrides": config,
    }


def method_overrides(
    method: str, user: Mapping[str, Mapping[str, Any]], out: Path, dataset: str, budget: str = "small"
) -> dict[str, Any]:
    """The budget's ``speed`` section for ``method``, then the user's overrides; experts cached in ``out/experts``."""
    overrides = get_budget(budget).section("speed").get(method, {}) | dict(user.get(method, {}))
    return with_expert_cache(overrides, out / "experts", dataset)


def display_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """``row`` with its measurements as short strings (seconds as ``mean ± std``)."""
    shown = {k: (f"{v:.3g}" if isinstance(v, float) else v) for k, v in row.items()}
    shown["seconds_per_iter"] = f"{row['seconds_per_iter']:.4g} ± {row['seconds_per_iter_std']:.2g}"
    return shown


def parse_method_overrides(values: Mapping[str, Any], methods: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``{"dm.batch_real": 64, "net_options": {...}}`` -> per-method overrides.

    A ``method.key`` applies to that method; a bare ``key`` to every listed method whose config has it.
    """
    from ddapps.methods import METHODS

    result: dict[str, dict[str, Any]] = {m: {} for m in methods}
    for key, value in values.items():
        method, dot, field = key.rpartition(".")
        if dot:
            if method not in result:
                raise ConfigError(f"--set {key}: {method!r} is not one of the benchmarked methods")
            result[method][field] = value
            continue
        takers = [m for m in methods if METHODS.get(m).accepts(key)]
        if not takers:
            raise ConfigError(f"--set {key}: no benchmarked method has an option {key!r}")
        for m in takers:
            result[m][key] = value
    return result


def bench_speed(
    benchmark: Benchmark,
    methods: Sequence[str],
    ipcs: Sequence[int],
    settings: SpeedSettings,
    out: Path,
    *,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
    progress: bool = False,
) -> list[dict[str, Any]]:
    """Measure every (method, ipc); write ``results.json`` and ``report.md`` into ``out``; return rows."""
    check_precision(precision)
    for method in methods:
        create_distiller(method, method_overrides(method, overrides or {}, out, benchmark.name))
    for ipc in ipcs:
        check_ipc(benchmark, ipc)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    limit = matmul_gflops(device, settings.matmul_size, settings.matmul_repeats, dtype)
    rows = []
    with use_precision(precision):
        for ipc in ipcs:
            for method in methods:
                row = measure_method(
                    benchmark,
                    method,
                    ipc,
                    settings,
                    seed=seed,
                    device=device,
                    progress=progress,
                    overrides=method_overrides(method, overrides or {}, out, benchmark.name),
                )
                rows.append(
                    row
                    | {
                        "gflops_matmul": limit,
                        "matmul_fraction": row["gflops_achieved"] / limit,
                        "precision": precision,
                    }
                )
    config = {
        "dataset": benchmark.describe(),
        "methods": list(methods),
        "ipc": list(ipcs),
        "seed": seed,
        "precision": precision,
        "matmul_dtype": str(dtype).removeprefix("torch."),
        **asdict(settings),
    }
    table = format_table([display_row(r) for r in rows], COLUMNS)
    report = "\n".join(
        [
            f"# ddapps bench speed: {benchmark.name}",
            "",
            f"Command: `{command_line()}`",
            "",
            f"Per run: {settings.warmup} warm-up iterations, 1 FLOP-counted iteration, {settings.iterations} "
            f"timed iterations; mean ± std of seconds/iteration over {settings.repeats} runs. `gflops_matmul`: "
            f"best of {settings.matmul_repeats} {settings.matmul_size}^3 {config['matmul_dtype']} matmuls on the same "
            f"device ({precision} precision). FLOPs count matmuls and convolutions (forward and backward).",
            "",
            table,
            "",
        ]
    )
    write_run(out, "bench speed", config, device, rows, report)
    return rows
