"""Numeric precision of the compute-heavy loops: ``fp32`` (default) or ``bf16`` autocast.

The precision is a context-local setting, chosen once per command (``--precision``) and read where
the heavy work happens -- the loss of every iterative distiller and the forward pass of evaluation
training -- so every method and application inherits it without a new argument:

    with use_precision("bf16"):
        synset = create_distiller("dm").distill(real, ipc=10)

``bf16`` runs those regions under ``torch.autocast(device_type, dtype=torch.bfloat16)``:
convolutions and matrix products in bfloat16, reductions and the learnable tensors in float32;
backward passes and optimiser steps stay outside the autocast region.
"""

from __future__ import annotations

import contextlib
import copy
from contextvars import ContextVar
from typing import TYPE_CHECKING, Iterator, TypeVar

import torch

from ddapps.errors import ConfigError

if TYPE_CHECKING:
    from ddapps.nets.base import Net

NetT = TypeVar("NetT", bound=torch.nn.Module)

PRECISIONS = ("fp32", "bf16")

_PRECISION: ContextVar[str] = ContextVar("ddapps_precision", default="fp32")


def check_precision(name: str) -> str:
    """``name`` if it is a known precision; ConfigError otherwise."""
    if name not in PRECISIONS:
        raise ConfigError(f"unknown precision {name!r}; choose one of: {', '.join(PRECISIONS)}")
    return name


def current_precision() -> str:
    """The precision chosen by the innermost :func:`use_precision` (``fp32`` outside any)."""
    return _PRECISION.get()


@contextlib.contextmanager
def use_precision(name: str) -> Iterator[None]:
    """Run the block with ``name`` as the current precision."""
    token = _PRECISION.set(check_precision(name))
    try:
        yield
    finally:
        _PRECISION.reset(token)


def autocast(device: torch.device | str) -> contextlib.AbstractContextManager[object]:
    """The autocast region of the current precision on ``device`` (a no-op for ``fp32``)."""
    if current_precision() == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)


def frozen_embed(net: Net, x: torch.Tensor) -> torch.Tensor:
    """``net.embed(x)`` for a side that needs no gradient (e.g. DM's real images), as float32.

    Under ``bf16`` the whole forward runs on a bfloat16 copy of ``net`` (weights cast once per
    call, about 0.3 MB for ConvNet-3), not under autocast: autocast keeps normalisation layers in
    float32 and would convert every activation back and forth. Only the features are rounded;
    for DM the real side enters the loss as a mean over ``batch_real`` images, whose sampling
    noise is orders of magnitude above bfloat16 rounding (measured: 0.1% relative error of a
    256-image mean embedding, ConvNet-3 on MNIST).
    """
    with torch.no_grad():
        if current_precision() == "fp32":
            return net.embed(x).float()
        with no_autocast(x.device.type):
            return _bf16_copy(net).embed(x.to(torch.bfloat16)).float()


def parameter_gradients(net: torch.nn.Module, x: torch.Tensor, target: torch.Tensor) -> list[torch.Tensor]:
    """Gradients of the mean cross-entropy of ``net`` on ``(x, target)`` with respect to every
    parameter of ``net`` (in ``net.parameters()`` order), as float32 tensors without a graph.

    Under ``bf16`` the forward and backward run on a bfloat16 copy of ``net`` (see
    :func:`frozen_embed` for why not autocast); ``net`` itself is not touched. Used where the
    gradients are a target or an update, never differentiated further: the real side of gradient
    matching and the network's training steps between its outer steps (float32 master weights).
    """
    if current_precision() == "fp32":
        loss = torch.nn.functional.cross_entropy(net(x), target)
        return list(torch.autograd.grad(loss, list(net.parameters())))
    with no_autocast(x.device.type):
        low = _bf16_copy(net)
        loss = torch.nn.functional.cross_entropy(low(x.to(torch.bfloat16)).float(), target)
        return [g.float() for g in torch.autograd.grad(loss, list(low.parameters()))]


def no_autocast(device_type: str) -> contextlib.AbstractContextManager[object]:
    """Autocast switched off on ``device_type`` (a no-op on devices without autocast, e.g. meta)."""
    if device_type in ("cpu", "cuda"):
        return torch.autocast(device_type, enabled=False)
    return contextlib.nullcontext()


def _bf16_copy(net: NetT) -> NetT:
    """A bfloat16 copy of ``net`` (``net`` itself keeps its dtype)."""
    return copy.deepcopy(net).to(torch.bfloat16)
