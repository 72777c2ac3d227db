"""Factorized synthetic sets: stored parameters + a decoder that turns them into training images.

A decoder is a pure, registered function: loading a synthetic set selects it by *name* from
:data:`DECODERS`, so a file can never make ddapps run code of its own. Storage is accounted
honestly: :func:`stored_floats` counts every number a set stores, decoded images are not stored.

Decoders shipped here:

* ``multiformation`` -- IDC (Kim et al., "Dataset Condensation via Efficient Synthetic-Data
  Parameterization", ICML 2022): each stored image is cut into ``factor x factor`` patches and each
  patch is upsampled back to full size, giving ``factor**2`` training images per stored image.
* ``lowrank`` -- the low-rank synthetic-image plugin of Yang et al. (NeurIPS 2023, as cited in
  the REFERENCES of ddapps): image ``= A @ B`` per channel with ``A: [N,C,H,r]`` and ``B: [N,C,r,W]``.
* ``hallucinator`` -- HaBa (Liu et al., "Dataset Distillation via Factorization", NeurIPS 2022):
  ``N`` bases and ``n_hallucinators`` small networks; every (basis, hallucinator) pair is one
  training image with the basis's label. The networks' weights are plain tensors (packed into
  one factor, see :func:`hallucinator_shapes`), applied with ``torch.nn.functional`` only.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from ddapps.errors import ConfigError
from ddapps.registry import Registry

Decoder = Callable[[Mapping[str, Tensor], Tensor, Mapping[str, Any]], tuple[Tensor, Tensor]]
"""``decoder(factors, labels, config) -> (images, labels)``; must be differentiable in factors."""

DECODERS: Registry[Decoder] = Registry("factorization")


@DECODERS.register("multiformation")
def decode_multiformation(
    factors: Mapping[str, Tensor], labels: Tensor, config: Mapping[str, Any]
) -> tuple[Tensor, Tensor]:
    """IDC multi-formation: ``factors["images"] [N,C,H,W]`` -> ``[N*f*f, C, H, W]``."""
    images = factors["images"]
    f = int(config.get("factor", 2))
    if f < 1:
        raise ConfigError(f"multiformation factor must be >= 1, got {f}")
    if f == 1:
        return images, labels
    n, c, h, w = images.shape
    if h % f or w % f:
        raise ConfigError(f"multiformation factor {f} does not divide image size {h}x{w}")
    ph, pw = h // f, w // f
    patches = images.reshape(n, c, f, ph, f, pw).permute(0, 2, 4, 1, 3, 5)
    patches = patches.reshape(n * f * f, c, ph, pw)
    decoded = F.interpolate(patches, size=(h, w), mode="bilinear", align_corners=False)
    return decoded, labels.repeat_interleave(f * f, dim=0)


@DECODERS.register("lowrank")
def decode_lowrank(factors: Mapping[str, Tensor], labels: Tensor, config: Mapping[str, Any]) -> tuple[Tensor, Tensor]:
    """Low-rank images: ``A [N,C,H,r] @ B [N,C,r,W]`` -> ``[N,C,H,W]``."""
    return factors["A"] @ factors["B"], labels


def hallucinator_shapes(channels: int, hidden: int, kernel: int) -> dict[str, tuple[int, ...]]:
    """Parameter shapes of one hallucinator, in packing order.

    Encoder ``conv(channels -> hidden)``, learned per-channel ``scale``/``shift``, decoder
    ``conv_transpose(hidden -> channels)`` (weight layout ``[in, out, k, k]``).
    """
    return {
        "enc_weight": (hidden, channels, kernel, kernel),
        "enc_bias": (hidden,),
        "scale": (hidden,),
        "shift": (hidden,),
        "dec_weight": (hidden, channels, kernel, kernel),
        "dec_bias": (channels,),
    }


def hallucinator_numel(channels: int, hidden: int, kernel: int, count: int) -> int:
    """Floats taken by ``count`` hallucinators (before packing)."""
    return count * sum(math.prod(s) for s in hallucinator_shapes(channels, hidden, kernel).values())


def packed_columns(numel: int, rows: int) -> int:
    """Columns of the ``[rows, cols]`` tensor that packs ``numel`` floats (zero-padded).

    A :class:`~ddapps.synthetic.SyntheticSet` requires every factor to share the unit dimension,
    so shared weights are stored row-wise beside the ``rows`` units; the padding is stored too
    and therefore counted by :func:`stored_floats`.
    """
    return -(-numel // rows)


def _hallucinator_config(config: Mapping[str, Any]) -> tuple[int, int, int, int, tuple[int, int]]:
    try:
        count, channels = int(config["n_hallucinators"]), int(config["channels"])
        hidden, kernel = int(config["hidden"]), int(config["kernel"])
        height, width = (int(v) for v in config["image_size"])
    except (KeyError, TypeError, ValueError):
        raise ConfigError(
            "hallucinator config needs n_hallucinators, channels, hidden, kernel and image_size"
        ) from None
    if min(count, channels, hidden, kernel, height, width) < 1 or kernel % 2 == 0:
        raise ConfigError("hallucinator config values must be positive and the kernel odd")
    return count, channels, hidden, kernel, (height, width)


def unpack_hallucinators(packed: Tensor, config: Mapping[str, Any]) -> list[dict[str, Tensor]]:
    """The per-hallucinator weight dicts held in the packed ``[rows, cols]`` factor."""
    count, channels, hidden, kernel, _ = _hallucinator_config(config)
    shapes = hallucinator_shapes(channels, hidden, kernel)
    flat = packed.reshape(-1)
    need = hallucinator_numel(channels, hidden, kernel, count)
    if flat.numel() < need:
        raise ConfigError(f"hallucinator factor holds {flat.numel()} floats, the config needs {need}")
    nets, offset = [], 0
    for _ in range(count):
        net = {}
        for key, shape in shapes.items():
            size = math.prod(shape)
            net[key] = flat[offset : offset + size].reshape(shape)
            offset += size
        nets.append(net)
    return nets


@DECODERS.register("hallucinator")
def decode_hallucinator(
    factors: Mapping[str, Tensor], labels: Tensor, config: Mapping[str, Any]
) -> tuple[Tensor, Tensor]:
    """HaBa: ``bases [N,C,h,w]`` x ``n_hallucinators`` -> ``[N*n_hallucinators, C, H, W]``.

    Bases stored below the image size are upsampled (bilinear) first. Hallucinator ``j`` maps a
    basis ``x`` to ``x + dec_j(scale_j * relu(enc_j(x)) + shift_j)`` ('same' padding); images are
    basis-major, so class-sorted bases give class-sorted images.
    """
    count, _, _, kernel, size = _hallucinator_config(config)
    x = factors["bases"]
    if tuple(x.shape[-2:]) != size:
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    pad = kernel // 2
    outputs = []
    for net in unpack_hallucinators(factors["hallucinators"], config):
        feat = F.relu(F.conv2d(x, net["enc_weight"], net["enc_bias"], padding=pad))
        feat = feat * net["scale"].view(1, -1, 1, 1) + net["shift"].view(1, -1, 1, 1)
        outputs.append(x + F.conv_transpose2d(feat, net["dec_weight"], net["dec_bias"], padding=pad))
    images = torch.stack(outputs, dim=1).flatten(0, 1)
    return images, labels.repeat_interleave(count, dim=0)


def stored_floats(images: Tensor | None, factors: Mapping[str, Tensor], labels: Tensor) -> int:
    """Number of floating-point values stored (images or factors, plus soft labels)."""
    total = 0 if images is None else images.numel()
    total += sum(t.numel() for t in factors.values())
    if labels.is_floating_point():
        total += labels.numel()
    return total
