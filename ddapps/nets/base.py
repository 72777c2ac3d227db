"""The network registry and the contract every network follows.

Every registered network is a :class:`Net`: a ``features`` module that maps images to a flat
vector of ``feature_dim`` numbers, then one ``classifier`` (``nn.Linear``). ``embed(x)`` returns the
features (distribution matching, Zhao & Bilen WACV 2023, matches their means) and ``forward(x)``
the logits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from ddapps.errors import ConfigError
from ddapps.registry import Registry
from ddapps.validation import check_positive

NETS: Registry[Callable[..., "Net"]] = Registry("network")
"""Name -> network class or builder; every entry is called as
``builder(in_channels, num_classes, image_size, **options)``."""


def batch_norm_layers(net: nn.Module) -> list[nn.Module]:
    """The batch-normalisation layers of ``net`` (they mix the examples of a batch)."""
    return [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def as_hw(image_size: int | Sequence[int]) -> tuple[int, int]:
    """``32`` or ``(32, 32)`` -> ``(32, 32)``; :class:`ConfigError` for anything else."""
    if isinstance(image_size, (bool, str, bytes)):
        raise ConfigError(f"image_size must be an int or (H, W), got {image_size!r}")
    if isinstance(image_size, int):
        size: tuple[int, ...] = (image_size, image_size)
    else:
        try:
            size = tuple(int(s) for s in image_size)
        except (TypeError, ValueError):
            raise ConfigError(f"image_size must be an int or (H, W), got {image_size!r}") from None
    if len(size) != 2 or min(size) < 1:
        raise ConfigError(f"image_size must be an int or (H, W) of sizes >= 1, got {image_size!r}")
    return size[0], size[1]


class Net(nn.Module):
    """``features`` (images -> ``[N, feature_dim]``) followed by a linear ``classifier``.

    ``feature_dim`` is found by a dry run of ``features`` on zero images at construction, so no
    layer size is hard-coded and any image size the features accept works. The dry run is done in
    eval mode under ``no_grad``: it changes no batch-norm statistics and also works on the meta
    device (see :func:`ddapps.nets.create_net`).
    """

    feature_dim: int

    def __init__(self, features: nn.Module, in_channels: int, num_classes: int, image_size: tuple[int, int]) -> None:
        super().__init__()
        check_positive("in_channels", in_channels)
        check_positive("num_classes", num_classes)
        self.features = features
        self.input_shape = (int(in_channels), *as_hw(image_size))
        """``(C, H, W)`` of the images the net takes (what a saved teacher needs to rebuild it)."""
        self.feature_dim = _dry_run_dim(features, in_channels, image_size)
        self.classifier = nn.Linear(self.feature_dim, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Features right before the classifier, ``[N, feature_dim]``."""
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits, ``[N, num_classes]``."""
        return self.classifier(self.features(x))


def _dry_run_dim(features: nn.Module, in_channels: int, image_size: tuple[int, int]) -> int:
    # Two samples, not one: instance norm on a 1x1 map (and batch norm in training) refuses N=1.
    was_training = features.training
    features.eval()
    with torch.no_grad():
        out = features(torch.zeros(2, in_channels, *image_size))
    features.train(was_training)
    if out.dim() != 2:
        raise ValueError(f"features must return [N, D], got shape {tuple(out.shape)}")
    return int(out.shape[1])
