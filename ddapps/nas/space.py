"""ConvNet search spaces: ``convnet720`` and user-defined spaces of the same family.

The space of Zhao et al. (ICLR 2021, Sec. 4.3) varies the standard ConvNet along five axes:
depth {1, 2, 3, 4} x width {32, 64, 128, 256} x normalization {none, batch, layer, instance,
group} x activation {sigmoid, relu, leakyrelu} x pooling {none, max, avg} = 720 architectures.
Every architecture is built by :func:`ddapps.nets.create_net` (``"convnet"``), so it is exactly
the core's ConvNet. A :class:`SpaceSpec` lists the choices of each axis; ``width_scale``
multiplies every width (an explicit CPU budget knob: the architectures keep their depth, norm,
activation and pooling, only get narrower).
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import nn

from ddapps.errors import ConfigError
from ddapps.nets import create_net
from ddapps.nets.layers import ACTS, NORMS, POOLS

AXES = ("depth", "width", "norm", "act", "pool")


MIN_WIDTH = 4
"""Fewest channels a scaled layer may keep: four, so group norm keeps its four groups."""


@dataclass(frozen=True)
class SpaceSpec:
    """The choices of each axis of a ConvNet space (an architecture is one choice per axis)."""

    name: str = "convnet720"
    depth: tuple[int, ...] = (1, 2, 3, 4)
    width: tuple[int, ...] = (32, 64, 128, 256)
    norm: tuple[str, ...] = ("none", "batch", "layer", "instance", "group")
    act: tuple[str, ...] = ("sigmoid", "relu", "leakyrelu")
    pool: tuple[str, ...] = ("none", "max", "avg")
    width_scale: float = 1.0

    def __post_init__(self) -> None:
        for axis in AXES:
            values = getattr(self, axis)
            if not isinstance(values, tuple) or not values:
                raise ConfigError(f"space {self.name!r}: {axis} must be a non-empty list of choices")
            if len(set(values)) != len(values):
                raise ConfigError(f"space {self.name!r}: {axis} has duplicate choices {list(values)}")
        for axis in ("depth", "width"):
            if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in getattr(self, axis)):
                raise ConfigError(f"space {self.name!r}: {axis} choices must be positive ints")
        for axis, table in (("norm", NORMS), ("act", ACTS), ("pool", POOLS)):
            unknown = [v for v in getattr(self, axis) if v not in table]
            if unknown:
                raise ConfigError(
                    f"space {self.name!r}: unknown {axis} {unknown}; choose from {', '.join(sorted(table))}"
                )
        if not (
            isinstance(self.width_scale, (int, float)) and 0 < self.width_scale <= 1 and math.isfinite(self.width_scale)
        ):
            raise ConfigError(f"width_scale must be in (0, 1], got {self.width_scale!r}")
        narrowest = min(self.width) * self.width_scale
        if narrowest < MIN_WIDTH:
            raise ConfigError(
                f"width_scale {self.width_scale:g} makes the narrowest layer {narrowest:g} channels wide; "
                f"need at least {MIN_WIDTH} (width_scale >= {MIN_WIDTH / min(self.width):g} for this space)"
            )

    @property
    def size(self) -> int:
        """Number of architectures."""
        return math.prod(len(getattr(self, axis)) for axis in AXES)

    def choices(self) -> dict[str, list[Any]]:
        """``{axis: [choices]}`` in axis order (widths as listed, before ``width_scale``)."""
        return {axis: list(getattr(self, axis)) for axis in AXES}

    def scaled_width(self, width: int) -> int:
        """The width actually built for a listed ``width`` (at least 1)."""
        return max(1, round(width * self.width_scale))

    def architectures(self) -> Iterator[dict[str, Any]]:
        """Every architecture, in a fixed (row-major) order."""
        for values in itertools.product(*(getattr(self, axis) for axis in AXES)):
            yield dict(zip(AXES, values))

    def sample(self, n: int, generator: torch.Generator) -> list[dict[str, Any]]:
        """``n`` distinct architectures drawn uniformly without replacement with ``generator``."""
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= self.size:
            raise ConfigError(f"cannot sample {n!r} architectures from a space of {self.size}")
        picks = torch.randperm(self.size, generator=generator)[:n].tolist()
        archs = list(self.architectures())
        return [archs[i] for i in picks]

    def check_arch(self, arch: dict[str, Any]) -> dict[str, Any]:
        """``arch`` if it picks one listed choice per axis; :class:`ConfigError` otherwise."""
        if set(arch) != set(AXES):
            raise ConfigError(f"an architecture needs exactly the keys {list(AXES)}, got {sorted(arch)}")
        for axis in AXES:
            if arch[axis] not in getattr(self, axis):
                raise ConfigError(f"{axis}={arch[axis]!r} is not a choice of space {self.name!r}")
        return {axis: arch[axis] for axis in AXES}

    def net_options(self, arch: dict[str, Any]) -> dict[str, Any]:
        """``create_net("convnet", ...)`` options of ``arch`` (width scaled)."""
        arch = self.check_arch(arch)
        return {**arch, "width": self.scaled_width(arch["width"])}

    def build(
        self,
        arch: dict[str, Any],
        in_channels: int,
        num_classes: int,
        image_size: int | tuple[int, int],
        *,
        generator: torch.Generator | None = None,
    ) -> nn.Module:
        """The core ConvNet of ``arch`` (initialized from ``generator`` when given)."""
        return create_net(
            "convnet", in_channels, num_classes, image_size, generator=generator, **self.net_options(arch)
        )

    def describe(self) -> dict[str, Any]:
        """JSON-able description (for reports and ``results.json``)."""
        return {"name": self.name, "size": self.size, **self.choices(), "width_scale": self.width_scale}


SPACES: dict[str, SpaceSpec] = {"convnet720": SpaceSpec()}
"""Named spaces; ``convnet720`` is the papers' space."""


def arch_key(arch: dict[str, Any]) -> str:
    """A short stable name, e.g. ``d3-w128-instance-relu-avg``."""
    return f"d{arch['depth']}-w{arch['width']}-{arch['norm']}-{arch['act']}-{arch['pool']}"


def resolve_space(name_or_path: str, *, width_scale: float = 1.0) -> SpaceSpec:
    """A registered space name, or a JSON file ``{"depth": [...], "width": [...], ...}``.

    Axes missing from the file keep the ``convnet720`` choices; ``width_scale`` applies to both.
    """
    from dataclasses import replace

    if name_or_path in SPACES:
        return replace(SPACES[name_or_path], width_scale=width_scale)
    path = Path(name_or_path)
    if not path.is_file():
        raise ConfigError(f"unknown space {name_or_path!r}; use one of {', '.join(SPACES)} or a JSON file of choices")
    try:
        raw = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"space file {path} is not valid JSON ({err})") from None
    if not isinstance(raw, dict) or not set(raw) <= set(AXES):
        raise ConfigError(f"space file {path} must be an object with keys among {list(AXES)}")
    fields: dict[str, Any] = {axis: tuple(raw[axis]) for axis in AXES if axis in raw and isinstance(raw[axis], list)}
    if len(fields) != len([a for a in AXES if a in raw]):
        raise ConfigError(f"space file {path}: every axis must be a JSON list")
    return SpaceSpec(name=path.stem, width_scale=width_scale, **fields)
