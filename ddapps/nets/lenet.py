"""LeNet-5 as used in the cross-architecture evaluation of dataset condensation.

LeCun et al., "Gradient-based learning applied to document recognition", Proc. IEEE 1998; the
small-image variant of Zhao, Mopuri & Bilen (ICLR 2021): conv5x5(6) -> ReLU -> maxpool2 ->
conv5x5(16) -> ReLU -> maxpool2 -> fc 120 -> ReLU -> fc 84 -> ReLU -> classifier.

Sizes: a 28x28 input gets padding 2 in the first convolution (as 32x32 does without it, the
classifier then sees 16x5x5). A convolution whose input side is below 10 pixels uses padding 2
("same") instead of 0, and a pool that would shrink the map below 1x1 is skipped, so 8x8 works.
"""

from __future__ import annotations

from typing import Sequence

from torch import nn

from ddapps.nets.base import NETS, Net, as_hw
from ddapps.nets.layers import conv_out, make_pool


def _pad(side: int) -> int:
    return 0 if side >= 10 else 2


@NETS.register("lenet")
class LeNet(Net):
    """LeNet-5 for small images; ``embed`` returns the 84-unit layer."""

    def __init__(self, in_channels: int, num_classes: int, image_size: int | Sequence[int]) -> None:
        size = hw = as_hw(image_size)
        layers: list[nn.Module] = []
        channels = in_channels
        for block, out_channels in enumerate((6, 16)):
            pad = (2, 2) if block == 0 and size == (28, 28) else (_pad(hw[0]), _pad(hw[1]))
            layers += [nn.Conv2d(channels, out_channels, kernel_size=5, padding=pad), nn.ReLU()]
            hw = conv_out(hw, 5, 1, pad)
            pool, hw = make_pool("max", hw)
            layers.append(pool)
            channels = out_channels
        layers += [
            nn.Flatten(),
            nn.Linear(channels * hw[0] * hw[1], 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
        ]
        super().__init__(nn.Sequential(*layers), in_channels, num_classes, size)
