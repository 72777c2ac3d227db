"""AlexNet for small images, as in the cross-architecture evaluation of dataset condensation.

Krizhevsky, Sutskever & Hinton, NeurIPS 2012; the 32x32 variant of Zhao, Mopuri & Bilen (ICLR
2021): conv5x5(128) -> maxpool2 -> conv5x5(192) -> maxpool2 -> conv3x3(256) -> conv3x3(192) ->
conv3x3(192) -> maxpool2, each convolution followed by an optional norm and ReLU, then flatten ->
linear (192x4x4 features on 32x32). A 28x28 input gets padding 4 in the first convolution (so its
map is 32x32); a pool that would shrink the map below 1x1 is skipped, so 8x8 works.
``width`` scales every layer (128 -> 128, 192, 256, 192, 192).
"""

from __future__ import annotations

from functools import partial
from typing import Sequence

from torch import nn

from ddapps.nets.base import NETS, Net, as_hw
from ddapps.nets.layers import NORMS, check_choice, conv_out, make_norm, make_pool
from ddapps.validation import check_positive

# (channels in halves of width, kernel size, pool after?)
_LAYERS = ((2, 5, True), (3, 5, True), (4, 3, False), (3, 3, False), (3, 3, True))


class AlexNet(Net):
    """Small-image AlexNet; ``norm`` defaults to none (``alexnet_bn`` uses batch norm)."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        image_size: int | Sequence[int],
        *,
        width: int = 128,
        norm: str = "none",
    ) -> None:
        size = hw = as_hw(image_size)
        check_positive("width", width)
        norm = check_choice(NORMS, "norm", norm)
        layers: list[nn.Module] = []
        channels = in_channels
        for i, (mult, kernel, pool_after) in enumerate(_LAYERS):
            out_channels = max(1, width * mult // 2)
            pad = kernel // 2
            if i == 0 and size == (28, 28):
                pad = 4
            layers.append(nn.Conv2d(channels, out_channels, kernel_size=kernel, padding=pad))
            hw = conv_out(hw, kernel, 1, (pad, pad))
            layers += [make_norm(norm, out_channels), nn.ReLU()]
            if pool_after:
                pool, hw = make_pool("max", hw)
                layers.append(pool)
            channels = out_channels
        layers.append(nn.Flatten())
        super().__init__(nn.Sequential(*layers), in_channels, num_classes, size)


NETS.register("alexnet")(AlexNet)
NETS.register("alexnet_bn")(partial(AlexNet, norm="batch"))
