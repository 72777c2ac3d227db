"""Parameters of Differentiable Siamese Augmentation (DSA).

Zhao & Bilen, "Dataset Condensation with Differentiable Siamese Augmentation", ICML 2021
(arXiv:2102.08259). Two objects, in the kornia / torchvision-v2 style of sampling parameters first
and applying them second:

- :class:`DSAParams`: the ranges the random values are drawn from (the paper's defaults);
- :class:`AugParams`: one draw of those values for ``n`` images. Applying the *same* draw to the
  real and to the synthetic batch is what makes the augmentation "siamese".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

import torch
from torch import Tensor

from ddapps.errors import ConfigError


@dataclass(frozen=True)
class DSAParams:
    """Ranges of the DSA operations; the defaults are the paper's (and its code's ``ParamDiffAug``).

    Attributes:
        scale: per-axis scale factors are uniform in ``[1/scale, scale]``.
        rotate: the rotation angle is uniform in ``[-rotate, rotate]`` degrees.
        crop_pad: translations are integers uniform in ``[-s, s]`` with
            ``s = int(side * crop_pad + 0.5)``; uncovered pixels are zero.
        cutout: the zeroed square has side ``int(side * cutout + 0.5)``.
        flip: probability of a horizontal flip.
        brightness: ``x + (U - 0.5) * brightness``.
        saturation: ``(x - mean_c) * (U * saturation) + mean_c`` (mean over channels, per pixel).
        contrast: ``(x - mean) * (U + contrast) + mean`` (mean over the whole image).
    """

    scale: float = 1.2
    rotate: float = 15.0
    crop_pad: float = 0.125
    cutout: float = 0.5
    flip: float = 0.5
    brightness: float = 1.0
    saturation: float = 2.0
    contrast: float = 0.5

    def __post_init__(self) -> None:
        for name in ("scale", "rotate", "crop_pad", "cutout", "flip", "brightness", "saturation", "contrast"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ConfigError(f"DSAParams.{name} must be a finite number >= 0, got {value!r}")
        if self.scale < 1:
            raise ConfigError(f"DSAParams.scale must be >= 1, got {self.scale!r}")
        for name in ("flip", "cutout"):
            if getattr(self, name) > 1:
                value = getattr(self, name)
                raise ConfigError(f"DSAParams.{name} must be in [0, 1], got {value!r}")


def _freeze(values: Mapping[str, Mapping[str, Tensor]]) -> Mapping[str, Mapping[str, Tensor]]:
    return MappingProxyType({op: MappingProxyType(dict(v)) for op, v in values.items()})


@dataclass(frozen=True, eq=False)
class AugParams:
    """One sampled DSA transform for up to ``n`` images.

    Attributes:
        ops: the operations to apply, in order (one in mode ``'S'``, all in mode ``'M'``,
            none for the identity strategy).
        values: ``values[op][name]`` is a tensor whose first dimension is ``n`` (one row per
            image). Applying to a batch of ``N <= n`` images uses the first ``N`` rows, so one
            draw serves a real and a synthetic batch of different sizes.
        n: the number of images the draw covers.
        params: the ranges the draw came from; ``crop`` and ``cutout`` need them at apply time
            because their pixel sizes depend on the image size.
    """

    ops: tuple[str, ...]
    values: Mapping[str, Mapping[str, Tensor]]
    n: int
    params: DSAParams = field(default_factory=DSAParams)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ops", tuple(self.ops))
        object.__setattr__(self, "values", _freeze(self.values))
        for op, named in self.values.items():
            for name, t in named.items():
                if t.shape[:1] != (self.n,):
                    raise ConfigError(
                        f"AugParams.values[{op!r}][{name!r}] has shape {tuple(t.shape)}; "
                        f"its first dimension must be n={self.n}"
                    )

    def __len__(self) -> int:
        return self.n

    def to(self, device: torch.device | str) -> AugParams:
        """A copy with every tensor moved to ``device``."""
        moved = {op: {k: t.to(device) for k, t in v.items()} for op, v in self.values.items()}
        return AugParams(self.ops, moved, self.n, self.params)
