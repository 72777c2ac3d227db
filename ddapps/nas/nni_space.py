"""A :class:`~ddapps.nas.space.SpaceSpec` as an NNI 3.0 ``ModelSpace`` (needs the ``nas`` extra).

The space holds one ``ParametrizedModule`` wrapping the core's :class:`~ddapps.nets.convnet.ConvNet`
whose five options are ``nni.choice`` mutables labelled ``depth``, ``width``, ``norm``, ``act`` and
``pool``. When NNI freezes a sample the wrapper turns into a plain ``ConvNet`` built from the same
code as ``create_net("convnet", ...)``: the searched architectures are the core's. Modules are built
on the ``meta`` device (no memory, no draw from the global RNG); the evaluator gives them storage
and initializes them from an explicit generator (:func:`ddapps.nas.scoring.initialize`).
"""

from __future__ import annotations

from typing import Any

import nni
import torch
from nni.nas.nn.pytorch import ModelSpace, ParametrizedModule

from ddapps.nas.space import AXES, SpaceSpec
from ddapps.nets.convnet import ConvNet


class MutableConvNet(ParametrizedModule, ConvNet, wraps=ConvNet):  # type: ignore[call-arg]  # NNI metaclass
    """``ConvNet`` whose keyword options may be ``nni.choice`` mutables."""


class ConvNetSpace(ModelSpace):
    """NNI model space of ConvNets: one ``nni.choice`` per axis of ``choices``.

    ``choices`` maps each axis of :data:`~ddapps.nas.space.AXES` to its list of values (widths
    already scaled); the arguments are plain JSON-able values so NNI can serialize the space.
    """

    def __init__(
        self, in_channels: int, num_classes: int, image_size: list[int], choices: dict[str, list[Any]]
    ) -> None:
        super().__init__()
        options = {axis: nni.choice(axis, list(choices[axis])) for axis in AXES}
        with torch.device("meta"):
            self.net = MutableConvNet(in_channels, num_classes, tuple(image_size), **options)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def make_model_space(spec: SpaceSpec, in_channels: int, num_classes: int, image_size: tuple[int, int]) -> ConvNetSpace:
    """The NNI model space of ``spec`` for images of ``in_channels`` x ``image_size``."""
    choices = spec.choices()
    choices["width"] = [spec.scaled_width(w) for w in spec.width]
    return ConvNetSpace(in_channels, num_classes, list(image_size), choices)


def sample_to_arch(spec: SpaceSpec, sample: dict[str, Any]) -> dict[str, Any]:
    """Map an NNI sample (scaled width) back to an architecture of ``spec`` (listed width)."""
    by_scaled = {spec.scaled_width(w): w for w in spec.width}
    arch = {axis: sample[axis] for axis in AXES}
    arch["width"] = by_scaled.get(arch["width"], arch["width"])
    return arch
