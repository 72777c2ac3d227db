"""FRePo's model pool: networks trained online on the synthetic set, reset after a fixed age.

Zhou, Nezhadarya & Ba (NeurIPS 2022) keep ``m`` networks at different stages of training; each
meta-step trains one of them a little further on the current synthetic data, and a network that
has taken ``max_updates`` steps is replaced by a fresh initialisation. Every tensor of the pool
(weights, Adam moments, step counts) has a fixed shape, so :meth:`ModelPool.state` and
:meth:`ModelPool.load_state` give a bit-exact checkpoint. Adam (Kingma & Ba, ICLR 2015) is written
out here so that its state is plain, pre-allocated tensors.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.func import functional_call

from ddapps.errors import ConfigError
from ddapps.nets import reinitialize_
from ddapps.nets.base import Net

_BETAS = (0.9, 0.999)
_EPS = 1e-8


class ModelPool:
    """``nets`` trained online with Adam (``lr``) on an MSE regression to their targets."""

    def __init__(self, nets: list[Net], *, lr: float, max_updates: int) -> None:
        if not nets:
            raise ConfigError("a model pool needs at least one network")
        self.nets = nets
        self.lr = lr
        self.max_updates = max_updates
        for net in nets:
            net.requires_grad_(False)
        self.exp_avg = [{k: torch.zeros_like(p) for k, p in net.named_parameters()} for net in nets]
        self.exp_avg_sq = [{k: torch.zeros_like(p) for k, p in net.named_parameters()} for net in nets]
        self.steps = torch.zeros(len(nets), dtype=torch.int64)

    def __len__(self) -> int:
        return len(self.nets)

    def reset_(self, i: int, generator: torch.Generator) -> None:
        """Replace member ``i`` by a fresh initialisation drawn from ``generator``."""
        reinitialize_(self.nets[i], generator)
        for moments in (self.exp_avg[i], self.exp_avg_sq[i]):
            for value in moments.values():
                value.zero_()
        self.steps[i] = 0

    def expired(self, i: int) -> bool:
        """Whether member ``i`` has taken its ``max_updates`` online steps."""
        return int(self.steps[i]) >= self.max_updates

    def train_step_(self, i: int, images: Tensor, targets: Tensor) -> float:
        """One full-batch Adam step of member ``i`` on ``0.5 * ||net(images) - targets||^2`` (mean over rows)."""
        net = self.nets[i]
        params = {k: p.detach().requires_grad_(True) for k, p in net.named_parameters()}
        out = functional_call(net, params, (images.detach(),))
        loss = 0.5 * ((out - targets.detach().to(out.dtype)) ** 2).sum(dim=1).mean()
        grads = torch.autograd.grad(loss, list(params.values()))
        self.steps[i] += 1
        t = int(self.steps[i])
        beta1, beta2 = _BETAS
        with torch.no_grad():
            for (name, param), grad in zip(net.named_parameters(), grads):
                m, v = self.exp_avg[i][name], self.exp_avg_sq[i][name]
                m.mul_(beta1).add_(grad, alpha=1 - beta1)
                v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                denom = (v / (1 - beta2**t)).sqrt_().add_(_EPS)
                param.addcdiv_(m, denom, value=-self.lr / (1 - beta1**t))
        return float(loss.detach())

    def state(self) -> dict[str, Tensor]:
        """Every tensor of the pool by name (live tensors, not copies)."""
        out: dict[str, Tensor] = {"steps": self.steps}
        for i, net in enumerate(self.nets):
            for name, tensor in net.state_dict(keep_vars=True).items():
                out[f"{i}.net.{name}"] = tensor
            for name, value in self.exp_avg[i].items():
                out[f"{i}.exp_avg.{name}"] = value
            for name, value in self.exp_avg_sq[i].items():
                out[f"{i}.exp_avg_sq.{name}"] = value
        return out

    @torch.no_grad()
    def load_state(self, state: dict[str, Tensor]) -> None:
        """Copy ``state`` (as returned by :meth:`state`) into the pool, in place."""
        current = self.state()
        missing = sorted(set(current) - set(state))
        if missing:
            raise ConfigError(f"model pool state lacks {missing[0]!r}")
        for key, tensor in current.items():
            tensor.copy_(state[key])
