"""Training and testing a classifier on a (synthetic or real) tensor set.

This is the inner routine of the standard evaluation protocol of dataset distillation (Zhao et al.,
ICLR 2021; reused by DSA, DM, MTT): SGD with momentum 0.9 and weight decay 5e-4, batch 256, the
learning rate multiplied by 0.1 once, after half of the epochs; optional DSA augmentation of every
batch. Soft labels are trained with soft cross-entropy (at a temperature ``T``: the KL of knowledge
distillation, Hinton et al. 2015, up to the teacher's entropy, which has no gradient), and kernel
methods' sets with MSE on centred one-hot targets (KIP/FRePo protocol), as their metadata asks. A
``relabel`` function replaces each augmented batch's targets (a teacher run online, as SRe2L and
RDED evaluate). The forward pass and the loss run under the current precision's autocast region
(:mod:`ddapps.utils.precision`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from ddapps.augment import DSA
from ddapps.errors import ConfigError
from ddapps.nets.base import Net
from ddapps.utils.precision import autocast

LOSSES = ("cross_entropy", "mse")


@dataclass(frozen=True)
class TrainSettings:
    """Optimiser settings of one training run (the protocol's defaults)."""

    epochs: int = 300
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 256
    loss: str = "cross_entropy"
    temperature: float = 1.0
    """Softmax temperature ``T`` of soft targets (cross-entropy only; 1: plain soft cross-entropy)."""

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ConfigError(f"unknown loss {self.loss!r}; choose one of: {', '.join(LOSSES)}")
        if self.epochs < 0 or self.batch_size < 1 or self.lr <= 0:
            raise ConfigError("epochs must be >= 0, batch_size >= 1 and lr > 0")
        if not self.temperature > 0:
            raise ConfigError(f"temperature must be > 0, got {self.temperature}")


def protocol_loss(logits: Tensor, targets: Tensor, kind: str, num_classes: int, temperature: float = 1.0) -> Tensor:
    """Loss of the protocol: (soft) cross-entropy, or 0.5 * MSE to centred one-hot or given targets.

    Soft targets are logits: ``T^2 * mean_i CE(softmax(t_i / T), softmax(s_i / T))``, the gradient of
    the KL divergence of knowledge distillation (Hinton et al., arXiv 1503.02531, 2015).
    """
    if kind == "mse":
        if not targets.is_floating_point():
            targets = F.one_hot(targets, num_classes).float() - 1.0 / num_classes
        # 0.5 * mean squared error over all outputs (KIP/FRePo's loss); a sum over classes would
        # scale gradients by the number of classes and diverge at the protocol's lr 0.01.
        return 0.5 * F.mse_loss(logits, targets)
    if targets.is_floating_point():
        t = temperature
        return -(t * t) * ((targets / t).softmax(dim=1) * (logits / t).log_softmax(dim=1)).sum(dim=1).mean()
    return F.cross_entropy(logits, targets)


def train_classifier(
    net: nn.Module,
    images: Tensor,
    labels: Tensor,
    settings: TrainSettings,
    *,
    generator: torch.Generator,
    augment: DSA | None = None,
    device: torch.device | str = "cpu",
    progress: bool = False,
    penalty: Callable[[], Tensor] | None = None,
    on_epoch: Callable[[int], None] | None = None,
    relabel: Callable[[Tensor], Tensor] | None = None,
) -> nn.Module:
    """Train ``net`` in place on ``(images, labels)``; all randomness comes from ``generator``.

    ``labels`` are hard (``int64 [N]``) or soft (``float [N, K]``, treated as logits to soften
    with a softmax for cross-entropy, or as regression targets for MSE). ``penalty()``, if given,
    is added to every batch's loss (e.g. FedProx's proximal term). ``on_epoch(epoch)``, if given,
    is called after every epoch (e.g. to score a validation split and keep the best weights).
    ``relabel(x)``, if given, gives the soft targets (logits ``[B, K]``) of each augmented batch ``x``
    in place of its stored labels (knowledge distillation with the teacher online).
    """
    device = torch.device(device)
    net.to(device).train()
    images, labels = images.to(device), labels.to(device)
    num_classes = int(labels.shape[1]) if labels.is_floating_point() else int(net_output_dim(net))
    temperature = settings.temperature
    optimizer = torch.optim.SGD(
        net.parameters(), lr=settings.lr, momentum=settings.momentum, weight_decay=settings.weight_decay
    )
    decay_at = settings.epochs // 2 + 1
    n = images.shape[0]
    for epoch in tqdm(range(settings.epochs), desc="train", disable=not progress, leave=False):
        if epoch == decay_at:
            for group in optimizer.param_groups:
                group["lr"] *= 0.1
        order = torch.randperm(n, generator=generator).to(device)
        for start in range(0, n, settings.batch_size):
            idx = order[start : start + settings.batch_size]
            x, y = images[idx], labels[idx]
            if augment is not None:
                x = augment(x, generator=generator)
            if relabel is not None:
                with torch.no_grad():
                    y = relabel(x).float()
            with autocast(device):
                loss = protocol_loss(net(x).float(), y, settings.loss, num_classes, temperature)
            if penalty is not None:
                loss = loss + penalty()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if on_epoch is not None:
            on_epoch(epoch)
            net.train()
    return net


def net_output_dim(net: nn.Module) -> int:
    """Number of logits the net produces (its ``num_classes`` attribute or last Linear)."""
    value = getattr(net, "num_classes", None)
    if value is not None:
        return int(value)
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ConfigError("cannot tell the number of classes of this network")
    return linears[-1].out_features


@torch.inference_mode()
def test_accuracy(
    net: nn.Module, images: Tensor, labels: Tensor, *, device: torch.device | str = "cpu", batch_size: int = 1024
) -> float:
    """Top-1 accuracy in percent (0-100)."""
    net.to(device).eval()
    correct = 0
    for start in range(0, images.shape[0], batch_size):
        x = images[start : start + batch_size].to(device)
        y = labels[start : start + batch_size].to(device)
        correct += int((net(x).argmax(dim=1) == y).sum())
    return 100.0 * correct / max(1, images.shape[0])


@torch.inference_mode()
def embed_all(net: Net, images: Tensor, *, device: torch.device | str = "cpu", batch_size: int = 1024) -> Tensor:
    """``net.embed`` of every image, in eval mode, on CPU."""
    net.to(device).eval()
    feats = [net.embed(images[s : s + batch_size].to(device)).cpu() for s in range(0, images.shape[0], batch_size)]
    return torch.cat(feats)
