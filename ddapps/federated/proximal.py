"""FedProx's proximal term, added by a ``fedprox`` client to its local loss.

Li et al., "Federated Optimization in Heterogeneous Networks", MLSys 2020, Eq. 2: a client
minimises ``F_k(w) + mu/2 * ||w - w_t||^2``, ``w_t`` the global weights it received. Note the
square: the example in Flower's ``FedProx`` docstring adds the unsquared norm; ddapps follows the
paper.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn


def proximal_penalty(net: nn.Module, mu: float) -> Callable[[], Tensor]:
    """``mu/2 * sum_l ||w_l - w_l^t||^2`` over ``net``'s parameters, ``w^t`` their values now.

    Call it right after loading the global weights and before local training.
    """
    anchors = [(p, p.detach().clone()) for p in net.parameters() if p.requires_grad]
    half_mu = 0.5 * float(mu)

    def penalty() -> Tensor:
        total = torch.zeros(())
        for param, anchor in anchors:
            total = total + (param - anchor).pow(2).sum()
        return half_mu * total

    return penalty
