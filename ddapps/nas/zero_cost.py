"""Zero-cost proxies: scores of an untrained network that cost one forward/backward pass or less.

A data proxy (a distilled set) must beat what is free. Two free baselines:

* ``params``: the number of trainable parameters (bigger networks tend to train to higher accuracy;
  on NAS-Bench-201 it is a strong baseline, Abdelfattah et al., "Zero-Cost Proxies for Lightweight
  NAS", ICLR 2021, Table 1);
* ``synflow``: SynFlow's saliency summed over all parameters (Tanaka et al., "Pruning neural
  networks without any data by iteratively conserving synaptic flow", NeurIPS 2020), used as a NAS
  proxy by Abdelfattah et al.: replace every parameter by its absolute value, feed an all-ones
  input, and sum ``|theta * dR/dtheta|`` where ``R`` is the sum of the outputs. Computed in float64
  on a copy in eval mode (batch-norm uses its initial running statistics), so it sees no data.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

ZERO_COST = ("params", "synflow")


def param_count(net: nn.Module) -> float:
    """Trainable parameters of ``net``."""
    return float(sum(p.numel() for p in net.parameters() if p.requires_grad))


def synflow(net: nn.Module, input_shape: tuple[int, int, int]) -> float:
    """SynFlow score of ``net`` for inputs of ``input_shape`` = ``(C, H, W)`` (``net`` is left untouched)."""
    model = copy.deepcopy(net).double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.abs_()
    model.zero_grad(set_to_none=True)
    output = model(torch.ones(1, *input_shape, dtype=torch.float64))
    output.sum().backward()
    total = 0.0
    for p in model.parameters():
        if p.grad is not None:
            total += float((p.detach() * p.grad).abs().sum())
    return total


def zero_cost_score(name: str, net: nn.Module, input_shape: tuple[int, int, int]) -> float:
    """The zero-cost proxy ``name`` (see :data:`ZERO_COST`) of the untrained ``net``."""
    if name == "params":
        return param_count(net)
    if name == "synflow":
        return synflow(net, input_shape)
    from ddapps.errors import ConfigError

    raise ConfigError(f"unknown zero-cost proxy {name!r}; choose one of: {', '.join(ZERO_COST)}")
