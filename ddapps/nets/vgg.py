"""VGG-11 for small images, as in the cross-architecture evaluation of dataset condensation.

Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition", ICLR
2015 (configuration A); the 32x32 variant of Zhao, Mopuri & Bilen (ICLR 2021): eight conv3x3
layers of 64-64*8 channels, each followed by a norm and ReLU, five 2x2 max pools, then one linear
layer on the flattened map (512x1x1 on 32x32). Instance norm by default, as in DC; ``vgg11_bn``
uses batch norm. A 28x28 input gets padding 3 in the first convolution (so its map is 32x32); a
pool that would shrink the map below 1x1 is skipped, so 8x8 works. ``width`` is the first
layer's channels (64).
"""

from __future__ import annotations

from functools import partial
from typing import Sequence

from torch import nn

from ddapps.nets.base import NETS, Net, as_hw
from ddapps.nets.layers import NORMS, check_choice, conv_out, make_norm, make_pool
from ddapps.validation import check_positive

POOL = "M"
# VGG-11: channels as multiples of width, "M" = 2x2 max pool.
VGG11 = (1, POOL, 2, POOL, 4, 4, POOL, 8, 8, POOL, 8, 8, POOL)


class VGG(Net):
    """A VGG given by a configuration such as :data:`VGG11`."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        image_size: int | Sequence[int],
        *,
        config: Sequence[int | str] = VGG11,
        width: int = 64,
        norm: str = "instance",
    ) -> None:
        size = hw = as_hw(image_size)
        check_positive("width", width)
        norm = check_choice(NORMS, "norm", norm)
        layers: list[nn.Module] = []
        channels = in_channels
        for item in config:
            if item == POOL:
                pool, hw = make_pool("max", hw)
                layers.append(pool)
                continue
            out_channels = width * int(item)
            pad = 3 if not layers and size == (28, 28) else 1
            layers.append(nn.Conv2d(channels, out_channels, kernel_size=3, padding=pad))
            hw = conv_out(hw, 3, 1, (pad, pad))
            layers += [make_norm(norm, out_channels), nn.ReLU()]
            channels = out_channels
        layers.append(nn.Flatten())
        super().__init__(nn.Sequential(*layers), in_channels, num_classes, size)


def _vgg11(
    in_channels: int,
    num_classes: int,
    image_size: int | Sequence[int],
    *,
    width: int = 64,
    norm: str = "instance",
) -> VGG:
    """VGG-11 (configuration A); instance norm unless ``norm`` says otherwise."""
    return VGG(in_channels, num_classes, image_size, config=VGG11, width=width, norm=norm)


NETS.register("vgg11")(_vgg11)
NETS.register("vgg11_bn")(partial(_vgg11, norm="batch"))
