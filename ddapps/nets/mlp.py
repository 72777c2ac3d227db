"""MLP: the fully connected baseline of the cross-architecture tables.

Zhao, Mopuri & Bilen, "Dataset Condensation with Gradient Matching", ICLR 2021: flatten ->
``depth - 1`` hidden layers of ``width`` (128) units with ReLU -> linear classifier. The default
has 3 linear layers in all; ``embed`` returns the last hidden layer.
"""

from __future__ import annotations

from typing import Sequence

from torch import nn

from ddapps.errors import ConfigError
from ddapps.nets.base import NETS, Net, as_hw
from ddapps.nets.layers import ACTS, check_choice, make_act
from ddapps.validation import check_positive


@NETS.register("mlp")
class MLP(Net):
    """Multi-layer perceptron with ``depth`` linear layers (the last is the classifier)."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        image_size: int | Sequence[int],
        *,
        width: int = 128,
        depth: int = 3,
        act: str = "relu",
    ) -> None:
        size = as_hw(image_size)
        check_positive("width", width)
        if check_positive("depth", depth) < 2:
            raise ConfigError(f"mlp depth counts linear layers and must be >= 2, got {depth}")
        act = check_choice(ACTS, "act", act)
        layers: list[nn.Module] = [nn.Flatten()]
        in_features = in_channels * size[0] * size[1]
        for _ in range(depth - 1):
            layers += [nn.Linear(in_features, width), make_act(act)]
            in_features = width
        super().__init__(nn.Sequential(*layers), in_channels, num_classes, size)
