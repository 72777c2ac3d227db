"""Fixed-budget training of one architecture: a number of SGD steps, the same for every proxy.

A proxy and the reference differ only in the data they draw batches from and in how many steps
they take, so their costs compare directly. The optimiser is the evaluation protocol's (Zhao et al.,
ICLR 2021): SGD with momentum 0.9, weight decay 5e-4, the learning rate x0.1 after half of the
steps; the loss is cross-entropy (hard labels, or softmax-softened soft labels) or the set's own
evaluation loss. Batches are drawn without replacement within each pass over the data, from an
explicit ``torch.Generator``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ddapps.errors import ConfigError
from ddapps.evaluation.training import LOSSES, net_output_dim, protocol_loss


@dataclass(frozen=True)
class StepBudget:
    """``steps`` SGD steps of ``batch_size`` images (protocol optimiser settings)."""

    steps: int
    batch_size: int = 64
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4

    def __post_init__(self) -> None:
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise ConfigError(f"steps must be a positive int, got {self.steps!r}")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ConfigError(f"batch_size must be a positive int, got {self.batch_size!r}")
        if not self.lr > 0:
            raise ConfigError(f"lr must be > 0, got {self.lr!r}")


def train_steps(
    net: nn.Module,
    images: Tensor,
    labels: Tensor,
    budget: StepBudget,
    *,
    generator: torch.Generator,
    lr: float | None = None,
    loss: str = "cross_entropy",
    device: torch.device | str = "cpu",
) -> float:
    """Train ``net`` in place for ``budget.steps`` steps; return the wall-clock seconds it took.

    Minimises the protocol loss (cross-entropy by default) of ``net(images)`` against ``labels``.
    ``lr`` overrides the budget's learning rate (a synthetic set's learned lr). A run whose loss
    diverges is not stopped: its network simply scores low, as it would under full training.
    """
    if loss not in LOSSES:
        raise ConfigError(f"unknown loss {loss!r}; choose one of: {', '.join(LOSSES)}")
    n = int(images.shape[0])
    if n == 0:
        raise ConfigError("cannot train on an empty set")
    start = time.perf_counter()
    net.to(device).train()
    num_classes = int(labels.shape[1]) if labels.is_floating_point() else net_output_dim(net)
    optimizer = torch.optim.SGD(
        net.parameters(), lr=budget.lr if lr is None else lr, momentum=budget.momentum, weight_decay=budget.weight_decay
    )
    decay_at = budget.steps // 2
    order = torch.randperm(n, generator=generator)
    cursor = 0
    for step in range(budget.steps):
        if step == decay_at and step > 0:
            for group in optimizer.param_groups:
                group["lr"] *= 0.1
        if cursor >= n:
            order, cursor = torch.randperm(n, generator=generator), 0
        idx = order[cursor : cursor + budget.batch_size]
        cursor += budget.batch_size
        x, y = images[idx].to(device), labels[idx].to(device)
        value = protocol_loss(net(x), y, loss, num_classes)
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        optimizer.step()
    return time.perf_counter() - start
