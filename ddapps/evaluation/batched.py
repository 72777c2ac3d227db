"""Train the ``n_eval`` networks of one evaluation together, as one batched model.

The evaluation protocol of dataset distillation (Zhao et al., ICLR 2021) trains several freshly
initialised networks of one architecture on the same small set. Here they train as one model:
their parameters and buffers are stacked (``torch.func.stack_module_state``) and a single
``torch.func.vmap`` over ``functional_call`` runs every network's forward and backward in one pass,
with one SGD optimiser over the stacked tensors (SGD is element-wise, so each network's update is
the one it would get alone).

Each network keeps its own randomness: network ``k`` draws its data order and its DSA augmentation
parameters from its own generator, in the same sequence :func:`~ddapps.evaluation.training.train_classifier`
draws them, so its trajectory is the one it would have alone. Values then agree with the sequential
loop up to floating-point reduction order (a batched convolution sums in another order); tests check
the trajectories to a tolerance scaled to the weights.

Batch norm (running statistics updated in place, per network), instance norm, soft labels, the MSE
protocol, online relabelling by a teacher and bf16 autocast are supported. Callbacks that need one
network at a time (``penalty``, ``on_epoch``) are not: :func:`can_batch` says when to fall back.
"""

from __future__ import annotations

import copy
from typing import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap
from tqdm.auto import tqdm

from ddapps.augment import DSA
from ddapps.errors import ConfigError
from ddapps.evaluation.training import TrainSettings, net_output_dim, protocol_loss
from ddapps.utils.precision import autocast


def can_batch(nets: Sequence[nn.Module]) -> bool:
    """Whether ``nets`` share one architecture: same class, same parameter and buffer names and shapes."""
    if len(nets) < 2:
        return False
    first = nets[0]
    signature = _signature(first)
    return all(type(n) is type(first) and _signature(n) == signature for n in nets[1:])


def _signature(net: nn.Module) -> list[tuple[str, tuple[int, ...], torch.dtype]]:
    return [(name, tuple(t.shape), t.dtype) for name, t in net.state_dict().items()]


class StackedNets:
    """``K`` networks of one architecture as stacked tensors and one stateless copy of the module."""

    def __init__(self, nets: Sequence[nn.Module], device: torch.device) -> None:
        if not can_batch(nets):
            raise ConfigError("batched training needs at least two networks of one architecture")
        for net in nets:
            net.to(device)
        self.nets = list(nets)
        params, buffers = stack_module_state(self.nets)
        self.params: dict[str, Tensor] = params
        self.buffers: dict[str, Tensor] = buffers
        self.base = copy.deepcopy(self.nets[0]).to("meta")

    def __len__(self) -> int:
        return len(self.nets)

    def forward(self, x: Tensor, *, shared_input: bool = False) -> Tensor:
        """Logits ``[K, B, classes]`` of every network; ``x`` is ``[K, B, ...]`` (or ``[B, ...]`` if shared)."""

        def one(params: dict[str, Tensor], buffers: dict[str, Tensor], inputs: Tensor) -> Tensor:
            return functional_call(self.base, (params, buffers), (inputs,))

        in_dims = (0, 0, None if shared_input else 0)
        return vmap(one, in_dims=in_dims, randomness="error")(self.params, self.buffers, x)

    def train(self, mode: bool = True) -> None:
        self.base.train(mode)

    def write_back(self) -> list[nn.Module]:
        """Copy each network's slice of the stacked tensors into its module; return the modules."""
        with torch.no_grad():
            for k, net in enumerate(self.nets):
                for name, param in net.named_parameters():
                    param.copy_(self.params[name][k])
                for name, buffer in net.named_buffers():
                    if name in self.buffers:
                        buffer.copy_(self.buffers[name][k])
        return self.nets


def train_classifiers_batched(
    nets: Sequence[nn.Module],
    images: Tensor,
    labels: Tensor,
    settings: TrainSettings,
    *,
    generators: Sequence[torch.Generator],
    augment: DSA | None = None,
    device: torch.device | str = "cpu",
    progress: bool = False,
    relabel: Callable[[Tensor], Tensor] | None = None,
) -> list[nn.Module]:
    """Train ``nets`` (one architecture) together on ``(images, labels)``, network ``k`` with ``generators[k]``.

    The same protocol as :func:`~ddapps.evaluation.training.train_classifier` (SGD with momentum and
    weight decay, lr x 0.1 after half of the epochs, optional DSA per batch, hard/soft/MSE losses,
    ``relabel`` for a teacher run online); returns the trained modules (updated in place).
    """
    if len(generators) != len(nets):
        raise ConfigError(f"{len(nets)} networks need {len(nets)} generators, got {len(generators)}")
    device = torch.device(device)
    stacked = StackedNets(nets, device)
    stacked.train()
    images, labels = images.to(device), labels.to(device)
    num_classes = int(labels.shape[1]) if labels.is_floating_point() else int(net_output_dim(nets[0]))
    optimizer = torch.optim.SGD(
        list(stacked.params.values()), lr=settings.lr, momentum=settings.momentum, weight_decay=settings.weight_decay
    )
    decay_at = settings.epochs // 2 + 1
    n, k = images.shape[0], len(nets)
    for epoch in tqdm(range(settings.epochs), desc=f"train x{k}", disable=not progress, leave=False):
        if epoch == decay_at:
            for group in optimizer.param_groups:
                group["lr"] *= 0.1
        orders = [torch.randperm(n, generator=g).to(device) for g in generators]
        for start in range(0, n, settings.batch_size):
            xs, ys = [], []
            for order, gen in zip(orders, generators):
                idx = order[start : start + settings.batch_size]
                x = images[idx]
                xs.append(augment(x, generator=gen) if augment is not None else x)
                ys.append(labels[idx])
            x_all = torch.stack(xs)
            if relabel is not None:
                with torch.no_grad():
                    y_all = relabel(x_all.flatten(0, 1)).float().unflatten(0, (k, -1))
            else:
                y_all = torch.stack(ys)
            with autocast(device):
                logits = stacked.forward(x_all).float()
            # Each network's loss is its own batch mean; their sum gives each network its own gradient.
            loss = sum(
                protocol_loss(logits[i], y_all[i], settings.loss, num_classes, settings.temperature) for i in range(k)
            )
            optimizer.zero_grad(set_to_none=True)
            assert isinstance(loss, Tensor)
            loss.backward()
            optimizer.step()
    return stacked.write_back()


@torch.inference_mode()
def accuracies_batched(
    nets: Sequence[nn.Module],
    images: Tensor,
    labels: Tensor,
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 1024,
) -> list[float]:
    """Top-1 accuracy (percent) of each of ``nets`` (one architecture) on the same test images, in one pass."""
    stacked = StackedNets(nets, torch.device(device))
    stacked.train(False)
    correct = torch.zeros(len(nets), dtype=torch.long)
    batch_size = max(1, batch_size // len(nets))  # the same activation memory as one network's batch
    for start in range(0, images.shape[0], batch_size):
        x = images[start : start + batch_size].to(device)
        y = labels[start : start + batch_size].to(device)
        correct += (stacked.forward(x, shared_input=True).argmax(dim=2) == y).sum(dim=1).cpu()
    return [100.0 * int(c) / max(1, images.shape[0]) for c in correct]
