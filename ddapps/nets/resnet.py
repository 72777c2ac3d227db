"""ResNet-18 with the CIFAR-style stem, as in the cross-architecture evaluation of distillation.

He et al., "Deep Residual Learning for Image Recognition", CVPR 2016: a 3x3 stride-1 stem of
``width`` (64) channels (no 7x7 convolution, no max pool, as is usual for 32x32 images), four
stages of two basic blocks with ``width`` x 1, 2, 4, 8 channels and strides 1, 2, 2, 2, then
global average pooling -> linear. Global (adaptive) pooling makes any image size work, 8x8
included. ``stem="imagenet"`` is the paper's ImageNet stem instead (7x7 stride-2 convolution, norm,
ReLU, 3x3 stride-2 max pool: 4x less resolution from the start), the ResNet-18 that SRe2L and RDED
use as teacher at 224 px (Tiny-ImageNet's 64 px keep the small-image stem). ``resnet18`` uses batch norm; ``resnet18_in`` uses instance norm
(``GroupNorm(C, C, affine=True)``), which keeps each sample's output independent of the rest of
the batch (Zhao et al., ICLR 2021, evaluate both).
"""

from __future__ import annotations

from functools import partial
from typing import Sequence

import torch
from torch import nn

from ddapps.errors import ConfigError
from ddapps.nets.base import NETS, Net, as_hw
from ddapps.nets.layers import NORMS, check_choice, make_norm
from ddapps.validation import check_positive

STEMS = ("cifar", "imagenet")


class BasicBlock(nn.Module):
    """Two conv3x3 -> norm layers with a residual connection (projected when shapes change)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, norm: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.norm1 = make_norm(norm, out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.norm2 = make_norm(norm, out_channels)
        self.act = nn.ReLU()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                make_norm(norm, out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        return self.act(out + self.shortcut(x))


class ResNet(Net):
    """A CIFAR-style ResNet of :class:`BasicBlock` stages; ``blocks`` per stage."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        image_size: int | Sequence[int],
        *,
        blocks: Sequence[int] = (2, 2, 2, 2),
        width: int = 64,
        norm: str = "batch",
        stem: str = "cifar",
    ) -> None:
        size = as_hw(image_size)
        check_positive("width", width)
        norm = check_choice(NORMS, "norm", norm)
        if stem not in STEMS:
            raise ConfigError(f"unknown stem {stem!r}; choose one of: {', '.join(STEMS)}")
        layers: list[nn.Module] = (
            [nn.Conv2d(in_channels, width, 3, stride=1, padding=1, bias=False), make_norm(norm, width), nn.ReLU()]
            if stem == "cifar"
            else [
                nn.Conv2d(in_channels, width, 7, stride=2, padding=3, bias=False),
                make_norm(norm, width),
                nn.ReLU(),
                nn.MaxPool2d(3, stride=2, padding=1),
            ]
        )
        channels = width
        for stage, count in enumerate(blocks):
            out_channels = width * 2**stage
            for i in range(count):
                stride = 2 if stage > 0 and i == 0 else 1
                layers.append(BasicBlock(channels, out_channels, stride, norm))
                channels = out_channels
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        super().__init__(nn.Sequential(*layers), in_channels, num_classes, size)


def _resnet18(
    in_channels: int,
    num_classes: int,
    image_size: int | Sequence[int],
    *,
    width: int = 64,
    norm: str = "batch",
    stem: str = "cifar",
) -> ResNet:
    """ResNet-18: two basic blocks in each of four stages."""
    return ResNet(in_channels, num_classes, image_size, blocks=(2, 2, 2, 2), width=width, norm=norm, stem=stem)


NETS.register("resnet18")(_resnet18)
NETS.register("resnet18_in")(partial(_resnet18, norm="instance"))
