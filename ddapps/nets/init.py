"""Deterministic re-initialization of a network in place.

Gradient matching (Zhao et al., ICLR 2021) and distribution matching (Zhao & Bilen, WACV 2023)
draw a fresh randomly initialized network at every iteration. :func:`reinitialize_` does that
without building new modules, from an explicit ``torch.Generator``, so a run is reproducible
without touching the global RNG.

The distributions are PyTorch's defaults: convolution and linear weights follow
``kaiming_uniform_(a=sqrt(5))``, i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (He et al., ICCV 2015),
biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)); norm scales are 1 and shifts 0, and batch-norm running
statistics are reset (mean 0, variance 1, no batches seen).
"""

from __future__ import annotations

import math
from typing import Any, TypeVar

import torch
from torch import nn

ModuleT = TypeVar("ModuleT", bound=nn.Module)

_WEIGHTED = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)
_NORMS = (
    nn.GroupNorm,
    nn.LayerNorm,
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.SyncBatchNorm,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
)


def _fan_in(weight: torch.Tensor) -> int:
    # As torch.nn.init: dim 1 times the receptive field (dim 0 is the output for conv/linear).
    receptive = math.prod(weight.shape[2:]) if weight.dim() > 2 else 1
    return weight.shape[1] * receptive


def _uniform_(param: torch.Tensor, bound: float, generator: torch.Generator) -> None:
    # Sample on the generator's device in float32, then copy: the same seed gives the same
    # weights whatever the parameter's device or dtype, and the parameter keeps its storage.
    values = torch.empty(param.shape, dtype=torch.float32, device=generator.device)
    values.uniform_(-bound, bound, generator=generator)
    param.copy_(values)


def _reset_weighted(module: Any, generator: torch.Generator) -> None:
    fan_in = _fan_in(module.weight)
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    _uniform_(module.weight, bound, generator)
    if module.bias is not None:
        _uniform_(module.bias, bound, generator)


def reset_norm(module: Any) -> None:
    """A normalisation layer back to scale 1, shift 0 and fresh running statistics."""
    if getattr(module, "weight", None) is not None:
        module.weight.fill_(1.0)
    if getattr(module, "bias", None) is not None:
        module.bias.fill_(0.0)
    if hasattr(module, "reset_running_stats"):
        module.reset_running_stats()


@torch.no_grad()
def reinitialize_(module: ModuleT, generator: torch.Generator) -> ModuleT:
    """Re-initialize every parameter and norm statistic of ``module`` in place; return it.

    Parameters keep their identity and storage (optimizers and hooks that hold them stay valid);
    only values change. Modules are visited in ``module.modules()`` order, so the same generator
    state gives the same weights. A module type with parameters of its own that is not a
    convolution, linear or normalization layer raises ``TypeError`` rather than being left at
    values drawn from the global RNG.
    """
    for sub in module.modules():
        if isinstance(sub, _WEIGHTED):
            _reset_weighted(sub, generator)
        elif isinstance(sub, _NORMS):
            reset_norm(sub)
        elif any(True for _ in sub.parameters(recurse=False)):
            raise TypeError(f"reinitialize_ does not know how to initialize {type(sub).__name__}")
    return module
