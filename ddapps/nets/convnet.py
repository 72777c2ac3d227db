"""ConvNet: the standard network of dataset distillation.

Zhao, Mopuri & Bilen, "Dataset Condensation with Gradient Matching", ICLR 2021 (after Gidaris &
Komodakis, CVPR 2018): ``depth`` blocks of conv3x3(``width``) -> norm -> act -> pool2x2, then
flatten -> linear. ConvNet-3 (width 128, instance norm, ReLU, average pooling) is the default of
DC, DSA, DM and MTT. A 28x28 input gets padding 3 in the first convolution, so its map becomes
32x32 and the classifier sees the same 128x4x4 features as on CIFAR.
"""

from __future__ import annotations

from functools import partial
from typing import Sequence

from torch import nn

from ddapps.nets.base import NETS, Net, as_hw
from ddapps.nets.fused import ConvNetFeatures
from ddapps.nets.layers import (
    ACTS,
    NORMS,
    POOLS,
    check_choice,
    conv_out,
    make_act,
    make_norm,
    make_pool,
)
from ddapps.validation import check_positive


class ConvNet(Net):
    """ConvNet-``depth`` of Zhao et al. (ICLR 2021); see the module docstring."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        image_size: int | Sequence[int],
        *,
        width: int = 128,
        depth: int = 3,
        norm: str = "instance",
        act: str = "relu",
        pool: str = "avg",
    ) -> None:
        size = hw = as_hw(image_size)
        check_positive("width", width)
        check_positive("depth", depth)
        norm, act, pool = (
            check_choice(NORMS, "norm", norm),
            check_choice(ACTS, "act", act),
            check_choice(POOLS, "pool", pool),
        )
        layers: list[nn.Module] = []
        channels = in_channels
        for block in range(depth):
            pad = 3 if block == 0 and size == (28, 28) else 1
            layers.append(nn.Conv2d(channels, width, kernel_size=3, padding=pad))
            hw = conv_out(hw, 3, 1, (pad, pad))
            layers += [make_norm(norm, width), make_act(act)]
            pool_layer, hw = make_pool(pool, hw)
            layers.append(pool_layer)
            channels = width
        layers.append(nn.Flatten())
        super().__init__(ConvNetFeatures(*layers), in_channels, num_classes, size)


NETS.register("convnet")(ConvNet)
for _depth in (1, 2, 3, 4):
    NETS.register(f"convnet{_depth}")(partial(ConvNet, depth=_depth))
NETS.register("convnet_bn")(partial(ConvNet, norm="batch"))
NETS.register("convnet_nonorm")(partial(ConvNet, norm="none"))


def fitting_depth(image_size: Sequence[int] | int, max_depth: int = 3) -> int:
    """The deepest ConvNet (at most ``max_depth`` blocks) whose last feature map is at least 2x2.

    Each block halves the map: 28x28 and 32x32 keep the paper's depth 3 (3x3 and 4x4 maps); 8x8
    digits get depth 2, since a third block would pool them to 1x1, where every input embeds alike.
    """
    side = min(as_hw(image_size))
    depth = 1
    while depth < max_depth and side // 2 ** (depth + 1) >= 2:
        depth += 1
    return depth
