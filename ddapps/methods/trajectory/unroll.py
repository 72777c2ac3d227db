"""The unrolled student of trajectory matching, with two ways to differentiate it.

Trajectory matching (Cazenavette et al., CVPR 2022, Eq. 1-2) starts a student at an expert's
parameters ``theta_0 = theta*_t``, takes ``N`` SGD steps on synthetic minibatches ``X_i`` with a
learnable learning rate ``eta``,

    theta_{i+1} = theta_i - eta * g_i,    g_i = grad_theta CE(f(theta_i, A_i(X_i)), y_i),

and minimises the normalised distance to the expert ``M`` epochs later,

    L = ||theta_N - theta*_{t+M}||^2 / ||theta*_t - theta*_{t+M}||^2,

over the synthetic images and ``eta``.

* :func:`match_loss` builds the whole unrolled graph and lets autograd differentiate it, as the
  paper does: memory grows linearly with ``N``.
* :func:`match_loss_constant_memory` (TESLA; Cui et al., "Scaling Up Dataset Distillation to
  ImageNet-1K with Constant Memory", ICML 2023) returns the same loss and the same *exact*
  gradients with memory independent of ``N``: a forward pass without a graph keeps only the
  parameter trajectory ``theta_0..theta_N`` (``N`` flat vectors, negligible next to activations),
  then a backward walk carries the adjoint ``a_i = dL/dtheta_i`` from ``a_N = 2 (theta_N -
  theta*_{t+M}) / ||theta*_t - theta*_{t+M}||^2`` down to step 0. At step ``i`` it rebuilds only
  that step's graph and takes one vector-Jacobian product of ``g_i`` with ``a_{i+1}``:

      dL/dX_i   += -eta * (dg_i/dX_i)^T a_{i+1}        (the batch's share of the image gradient)
      dL/deta   += -a_{i+1} . g_i
      a_i        = a_{i+1} - eta * H_i a_{i+1}          (H_i: Hessian of step i's loss at theta_i)

  so the gradient for each batch accumulates while walking the steps, and only one step's
  activations are alive at any time.

Both take a :class:`StepPlan` (every step's batch indices and DSA draw, sampled up front from the
iteration's generator) so they compute the same function.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ddapps.augment import DSA, AugParams
from ddapps.errors import ConfigError
from ddapps.methods.trajectory.flat import FlatSpec


@dataclass(frozen=True)
class StepPlan:
    """The minibatch indices and DSA draw (``None``: no augmentation) of every unrolled step."""

    batches: tuple[Tensor, ...]
    augs: tuple[AugParams | None, ...]

    def __len__(self) -> int:
        return len(self.batches)


def plan_steps(
    n: int,
    steps: int,
    batch: int | None,
    dsa: DSA | None,
    generator: torch.Generator,
    device: torch.device | str = "cpu",
) -> StepPlan:
    """Minibatches of ``batch`` synthetic images (``None``: all ``n``) for ``steps`` steps.

    As in the paper's code, a random permutation of all images is cut into batches and a new
    permutation is drawn when they run out; each step gets its own DSA draw.
    """
    size = n if batch is None else min(batch, n)
    batches: list[Tensor] = []
    augs: list[AugParams | None] = []
    pending: list[Tensor] = []
    for _ in range(steps):
        if not pending:
            pending = list(torch.randperm(n, generator=generator).split(size))[::-1]
        idx = pending.pop()
        batches.append(idx.to(device))
        augs.append(None if dsa is None else dsa.sample(idx.numel(), generator=generator, device=device))
    return StepPlan(tuple(batches), tuple(augs))


def _step_loss(
    net: nn.Module, spec: FlatSpec, theta: Tensor, x: Tensor, y: Tensor, aug: AugParams | None, dsa: DSA | None
) -> Tensor:
    if aug is not None and dsa is not None:
        x = dsa.apply(x, aug)
    return F.cross_entropy(spec.forward(net, theta, x), y)


def _normalized_distance(theta: Tensor, start: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    denom = (start - target).pow(2).sum()
    return (theta - target).pow(2).sum() / denom, denom


def match_loss(
    net: nn.Module,
    spec: FlatSpec,
    start: Tensor,
    target: Tensor,
    images: Tensor,
    labels: Tensor,
    lr: Tensor,
    plan: StepPlan,
    dsa: DSA | None = None,
) -> Tensor:
    """The trajectory-matching loss through the fully unrolled graph (memory linear in steps)."""
    theta = unroll_sgd(net, spec, start, images, labels, lr, plan, dsa)
    return _normalized_distance(theta, start.detach(), target.detach())[0]


def unroll_sgd(
    net: nn.Module,
    spec: FlatSpec,
    start: Tensor,
    images: Tensor,
    labels: Tensor,
    lr: Tensor,
    plan: StepPlan,
    dsa: DSA | None = None,
) -> Tensor:
    """``theta_N`` after ``len(plan)`` differentiable SGD steps from ``start`` (detached).

    ``lr`` is one learning rate for every step (a scalar) or one per step (``[len(plan)]``, as
    in Wang et al., "Dataset Distillation", 2018). The result stays differentiable in ``images``
    and ``lr``; memory grows linearly with the number of steps.
    """
    if lr.ndim and lr.numel() != len(plan):
        raise ConfigError(f"expected one learning rate per step ({len(plan)}), got {lr.numel()}")
    theta = start.detach().requires_grad_(True)
    for i, (idx, aug) in enumerate(zip(plan.batches, plan.augs)):
        ce = _step_loss(net, spec, theta, images[idx], labels[idx], aug, dsa)
        (grad,) = torch.autograd.grad(ce, theta, create_graph=True)
        theta = theta - (lr[i] if lr.ndim else lr) * grad
    return theta


def match_loss_constant_memory(
    net: nn.Module,
    spec: FlatSpec,
    start: Tensor,
    target: Tensor,
    images: Tensor,
    labels: Tensor,
    lr: Tensor,
    plan: StepPlan,
    dsa: DSA | None = None,
) -> Tensor:
    """The same loss as :func:`match_loss` with exact gradients in memory independent of the steps.

    The gradients are computed here (see the module docstring); the returned scalar carries them,
    so ``loss.backward()`` deposits them on ``images`` and ``lr`` as autograd would.
    """
    eta = lr.detach()
    start, target = start.detach(), target.detach()
    data = images.detach()
    trajectory = [start]
    for idx, aug in zip(plan.batches, plan.augs):
        theta = trajectory[-1].clone().requires_grad_(True)
        ce = _step_loss(net, spec, theta, data[idx], labels[idx], aug, dsa)
        (grad,) = torch.autograd.grad(ce, theta)
        trajectory.append((theta.detach() - eta * grad).detach())
    loss, denom = _normalized_distance(trajectory[-1], start, target)
    adjoint = 2.0 * (trajectory[-1] - target) / denom
    grad_images = torch.zeros_like(data)
    grad_lr = torch.zeros_like(eta)
    for i in reversed(range(len(plan))):
        idx, aug = plan.batches[i], plan.augs[i]
        theta = trajectory[i].clone().requires_grad_(True)
        x = data[idx].clone().requires_grad_(True)
        ce = _step_loss(net, spec, theta, x, labels[idx], aug, dsa)
        (grad,) = torch.autograd.grad(ce, theta, create_graph=True)
        dot = (grad * adjoint).sum()
        hvp, grad_x = torch.autograd.grad(dot, (theta, x))
        grad_lr -= dot.detach()
        grad_images.index_add_(0, idx, grad_x, alpha=-float(eta))
        adjoint = adjoint - eta * hvp
        trajectory[i + 1] = trajectory[i]  # drop theta_{i+1}: no longer needed
    return _WithGradients.apply(loss, images, lr, grad_images, grad_lr)


class _WithGradients(torch.autograd.Function):
    """Returns ``loss``; its backward hands out precomputed gradients for ``images`` and ``lr``."""

    @staticmethod
    def forward(ctx: Any, loss: Tensor, images: Tensor, lr: Tensor, grad_images: Tensor, grad_lr: Tensor) -> Tensor:
        ctx.save_for_backward(grad_images, grad_lr)
        return loss.detach().clone()

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        grad_images, grad_lr = ctx.saved_tensors
        return None, grad_out * grad_images, grad_out * grad_lr, None, None
