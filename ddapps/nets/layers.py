"""Named normalization, activation and pooling layers shared by the networks.

The names follow DatasetCondensation (Zhao et al., ICLR 2021): its "instancenorm" is
``nn.GroupNorm(C, C, affine=True)`` (one group per channel, with a learned scale and shift), and
its ConvNet pools 2x2. Each table maps a name to a factory; an unknown name is a
:class:`~ddapps.errors.ConfigError` listing the choices.
"""

from __future__ import annotations

import math
from typing import Callable

from torch import nn

from ddapps.errors import ConfigError

NORMS: dict[str, Callable[[int], nn.Module]] = {
    "instance": lambda c: nn.GroupNorm(c, c, affine=True),
    "batch": lambda c: nn.BatchNorm2d(c),
    # Normalizes over all of [C, H, W] per sample, with a per-channel scale and shift.
    "layer": lambda c: nn.GroupNorm(1, c, affine=True),
    # Four groups, or fewer when C is not a multiple of 4.
    "group": lambda c: nn.GroupNorm(math.gcd(4, c), c, affine=True),
    "none": lambda c: nn.Identity(),
}

ACTS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "leakyrelu": lambda: nn.LeakyReLU(0.01),
}

POOLS: dict[str, Callable[[], nn.Module]] = {
    "avg": lambda: nn.AvgPool2d(kernel_size=2, stride=2),
    "max": lambda: nn.MaxPool2d(kernel_size=2, stride=2),
    "none": nn.Identity,
}


def _choose(table: dict, kind: str, name: object) -> Callable:
    key = str(name).lower()
    if key not in table:
        raise ConfigError(f"unknown {kind} {name!r}; choose one of: {', '.join(sorted(table))}")
    return table[key]


def check_choice(table: dict, kind: str, name: object) -> str:
    """``name`` lower-cased if it is a key of ``table``; :class:`ConfigError` otherwise."""
    _choose(table, kind, name)
    return str(name).lower()


def make_norm(name: str, channels: int) -> nn.Module:
    """A 2-D normalization layer for ``channels`` channels: one of :data:`NORMS`."""
    return _choose(NORMS, "norm", name)(channels)


def make_act(name: str) -> nn.Module:
    """An activation: one of :data:`ACTS`."""
    return _choose(ACTS, "act", name)()


def make_pool(name: str, hw: tuple[int, int]) -> tuple[nn.Module, tuple[int, int]]:
    """A 2x2 pooling layer (one of :data:`POOLS`) for a ``hw`` map, and the map size after it.

    When halving would shrink the map below 1x1 the pool is replaced by ``nn.Identity`` so that
    deep networks still run on tiny images (8x8 digits: 8 -> 4 -> 2 -> 1 -> 1).
    """
    factory = _choose(POOLS, "pool", name)
    if str(name).lower() == "none" or min(hw) < 2:
        return nn.Identity(), hw
    return factory(), (hw[0] // 2, hw[1] // 2)


def conv_out(hw: tuple[int, int], kernel: int, stride: int, padding: tuple[int, int]) -> tuple[int, int]:
    """Spatial size after a square convolution (the usual floor formula)."""
    return (
        (hw[0] + 2 * padding[0] - kernel) // stride + 1,
        (hw[1] + 2 * padding[1] - kernel) // stride + 1,
    )
