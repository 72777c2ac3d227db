"""Storage policies by name: ``distilled:METHOD`` and Avalanche's own baselines.

* ``distilled:dm`` (any registered method after the colon): :class:`DistilledBuffer`;
* ``reservoir``: ``ReservoirSamplingBuffer`` (uniform over the whole stream);
* ``class-balanced``: ``ClassBalancedBuffer`` (random, equal share per class seen);
* ``herding``: ``ParametricBuffer(groupby="class", selection_strategy=HerdingSelectionStrategy)``
  on the learner's ``features`` (iCaRL herding; a multi-head learner names its layer in ``feature_layer``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from torch import nn

from ddapps.errors import ConfigError


def _reservoir(mem_size: int, model: nn.Module) -> Any:
    from avalanche.training.storage_policy import ReservoirSamplingBuffer

    return ReservoirSamplingBuffer(mem_size)


def _class_balanced(mem_size: int, model: nn.Module) -> Any:
    from avalanche.training.storage_policy import ClassBalancedBuffer

    return ClassBalancedBuffer(mem_size, adaptive_size=True)


def _herding(mem_size: int, model: nn.Module) -> Any:
    from avalanche.training.storage_policy import HerdingSelectionStrategy, ParametricBuffer

    layer = getattr(model, "feature_layer", "features")
    return ParametricBuffer(mem_size, groupby="class", selection_strategy=HerdingSelectionStrategy(model, layer))


BASELINE_BUFFERS: dict[str, Callable[[int, nn.Module], Any]] = {
    "reservoir": _reservoir,
    "class-balanced": _class_balanced,
    "herding": _herding,
}
"""Avalanche's storage policies by name: ``factory(mem_size, learner)``."""
BASELINES = tuple(BASELINE_BUFFERS)


@dataclass(frozen=True)
class BufferOptions:
    """What a :class:`DistilledBuffer` needs beyond its name (ignored by the baselines)."""

    overrides: Mapping[str, Any] | None = None
    """The distilling method's complete overrides; ``None``: those of ``budget``."""
    budget: str = "small"
    dataset_name: str = "tensors"
    labels: str = "hard"
    shrink: str = "redistill"
    revisit: str = "warm-start"
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
    from ddapps.continual.distilled_buffer import DistilledBuffer

    kind, method = parse_buffer(spec)
    if method is not None:
        return DistilledBuffer(
            mem_size, method, options.overrides, budget=options.budget, seed=seed, dataset_name=options.dataset_name,
            labels=options.labels, num_classes=options.num_classes, shrink=options.shrink, revisit=options.revisit,
            device=options.device,
            cache=cache,
        )  # fmt: skip
    return BASELINE_BUFFERS[kind](mem_size, model)
