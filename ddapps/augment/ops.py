"""The six DSA operations, each as a sampler plus an applier, in one registry ``OPS``.

Zhao & Bilen, "Dataset Condensation with Differentiable Siamese Augmentation", ICML 2021
(arXiv:2102.08259), Sec. 3.2 and its appendix: ``color`` (brightness, saturation, contrast),
``crop`` (translation with zero padding), ``cutout``, ``flip``, ``scale`` and ``rotate``.

``sample(n, params, generator)`` draws per-image values (first dimension ``n``) on
``generator.device``, using only that generator. Values that depend on the image size (crop
shifts, cutout centres) are kept as uniforms in ``[0, 1)`` and turned into pixels by
``apply(x, values, params)``, since the image size is known only there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import torch
from torch import Tensor

from ddapps.augment import functional as AF
from ddapps.augment.params import DSAParams
from ddapps.registry import Registry

Values = Mapping[str, Tensor]
Sampler = Callable[[int, DSAParams, torch.Generator], dict[str, Tensor]]
Applier = Callable[[Tensor, Values, DSAParams], Tensor]


@dataclass(frozen=True)
class Op:
    """One DSA operation: ``sample`` draws per-image values, ``apply`` uses the first N rows."""

    name: str
    sample: Sampler
    apply: Applier


OPS: Registry[Op] = Registry("DSA operation")


def _rand(generator: torch.Generator, *shape: int) -> Tensor:
    return torch.rand(*shape, generator=generator, device=generator.device)


def _register(name: str, sample: Sampler, apply: Applier) -> None:
    OPS.register(name)(Op(name, sample, apply))


# color: brightness (x + (U - .5) b), saturation (scale deviation from the channel mean by U s),
# contrast (scale deviation from the image mean by U + c), in that order.
def _sample_color(n: int, p: DSAParams, g: torch.Generator) -> dict[str, Tensor]:
    return {
        "brightness": (_rand(g, n) - 0.5) * p.brightness,
        "saturation": _rand(g, n) * p.saturation,
        "contrast": _rand(g, n) + p.contrast,
    }


def _apply_color(x: Tensor, v: Values, p: DSAParams) -> Tensor:
    return AF.adjust_color(x, v["brightness"], v["saturation"], v["contrast"])


# crop: integer shifts uniform in [-s, s], s = int(side * crop_pad + 0.5), zeros where uncovered.
def _sample_crop(n: int, p: DSAParams, g: torch.Generator) -> dict[str, Tensor]:
    return {"u": _rand(g, n, 2)}


def _pixels(u: Tensor, count: Tensor) -> Tensor:
    """``floor(u * count)`` clamped to ``count - 1`` (``u < 1`` can still round up in float)."""
    return torch.minimum(torch.floor(u * count), count - 1).long()


def _apply_crop(x: Tensor, v: Values, p: DSAParams) -> Tensor:
    h, w = x.shape[-2:]
    s = torch.tensor([int(w * p.crop_pad + 0.5), int(h * p.crop_pad + 0.5)], device=x.device)
    u = v["u"].to(device=x.device, dtype=torch.float32)
    return AF.translate(x, _pixels(u, (2 * s + 1).float()) - s)


# cutout: zero a square of side k = int(side * cutout + 0.5) centred at a uniform position among
# side + 1 - k % 2 (the DSA reference's range): for an even k the centre may also sit one past the
# last pixel, so the square is cut to k // 2 rows/columns at either border alike.
def _sample_cutout(n: int, p: DSAParams, g: torch.Generator) -> dict[str, Tensor]:
    return {"u": _rand(g, n, 2)}


def _apply_cutout(x: Tensor, v: Values, p: DSAParams) -> Tensor:
    h, w = x.shape[-2:]
    side = (int(w * p.cutout + 0.5), int(h * p.cutout + 0.5))
    positions = torch.tensor([w + 1 - side[0] % 2, h + 1 - side[1] % 2], device=x.device, dtype=torch.float32)
    centre = _pixels(v["u"].to(device=x.device, dtype=torch.float32), positions)
    return AF.cutout(x, centre, side)


# flip: horizontal flip with probability p.flip.
def _sample_flip(n: int, p: DSAParams, g: torch.Generator) -> dict[str, Tensor]:
    return {"mask": _rand(g, n) < p.flip}


def _apply_flip(x: Tensor, v: Values, p: DSAParams) -> Tensor:
    return AF.hflip(x, v["mask"])


# scale: per-axis factors uniform in [1/scale, scale].
def _sample_scale(n: int, p: DSAParams, g: torch.Generator) -> dict[str, Tensor]:
    return {"factors": _rand(g, n, 2) * (p.scale - 1.0 / p.scale) + 1.0 / p.scale}


def _apply_scale(x: Tensor, v: Values, p: DSAParams) -> Tensor:
    return AF.scale(x, v["factors"])


# rotate: angle uniform in [-rotate, rotate] degrees.
def _sample_rotate(n: int, p: DSAParams, g: torch.Generator) -> dict[str, Tensor]:
    return {"angle": (_rand(g, n) - 0.5) * (2.0 * p.rotate)}


def _apply_rotate(x: Tensor, v: Values, p: DSAParams) -> Tensor:
    return AF.rotate(x, v["angle"])


_register("color", _sample_color, _apply_color)
_register("crop", _sample_crop, _apply_crop)
_register("cutout", _sample_cutout, _apply_cutout)
_register("flip", _sample_flip, _apply_flip)
_register("scale", _sample_scale, _apply_scale)
_register("rotate", _sample_rotate, _apply_rotate)
