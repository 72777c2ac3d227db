"""Storage policies by name: ``distilled:METHOD`` and Avalanche's own baselines.

* ``distilled:dm`` (any registered method after the colon): :class:`DistilledBuffer`;
* ``reservoir``: ``ReservoirSamplingBuffer`` (uniform over the whole stream);
* ``class-balanced``: ``ClassBalancedBuffer`` (random, equal share per class seen);
* ``herding``: ``ParametricBuffer(groupby="class", selection_strategy=HerdingSelectionStrategy)``
  on the learner's ``features`` (iCaRL herding).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from torch import nn

from ddapps.errors import ConfigError

BASELINES = ("reservoir", "class-balanced", "herding")


@dataclass(frozen=True)
class BufferOptions:
    """What a :class:`DistilledBuffer` needs beyond its name (ignored by the baselines)."""

    overrides: Mapping[str, Any] = field(default_factory=dict)
    dataset_name: str = "tensors"
    labels: str = "hard"
    shrink: str = "redistill"
    num_classes: int | None = None
    device: str = "cpu"


def parse_buffer(spec: str) -> tuple[str, str | None]:
    """``"distilled:dm"`` -> ``("distilled", "dm")``; ``"herding"`` -> ``("herding", None)``."""
    from ddapps.methods import METHODS

    kind, sep, method = spec.strip().partition(":")
    if kind == "distilled":
        if not method:
            raise ConfigError("a distilled buffer needs a method: distilled:dm, distilled:random, ...")
        METHODS.get(method)
        return kind, method
    if sep or kind not in BASELINES:
        raise ConfigError(f"unknown buffer {spec!r}; choose distilled:METHOD or one of: {', '.join(BASELINES)}")
    return kind, None


def make_buffer(
    spec: str,
    mem_size: int,
    model: nn.Module,
    *,
    seed: int,
    options: BufferOptions,
    cache: dict[Any, Any] | None = None,
) -> Any:
    """The storage policy named ``spec`` with ``max_size = mem_size`` (``cache``: see DistilledBuffer)."""
    from avalanche.training.storage_policy import (
        ClassBalancedBuffer,
        HerdingSelectionStrategy,
        ParametricBuffer,
        ReservoirSamplingBuffer,
    )

    from ddapps.continual.buffer import DistilledBuffer

    kind, method = parse_buffer(spec)
    if kind == "distilled":
        assert method is not None
        return DistilledBuffer(
            mem_size, method, options.overrides, seed=seed, dataset_name=options.dataset_name,
            labels=options.labels, num_classes=options.num_classes, shrink=options.shrink, device=options.device,
            cache=cache,
        )  # fmt: skip
    if kind == "reservoir":
        return ReservoirSamplingBuffer(mem_size)
    if kind == "class-balanced":
        return ClassBalancedBuffer(mem_size, adaptive_size=True)
    return ParametricBuffer(mem_size, groupby="class", selection_strategy=HerdingSelectionStrategy(model, "features"))
