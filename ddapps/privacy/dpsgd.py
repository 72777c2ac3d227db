"""DP-SGD baseline: train a classifier with Opacus and return it with its privacy record.

DP-SGD (Abadi et al., "Deep Learning with Differential Privacy", CCS 2016): at every step each
record joins the batch independently with probability ``q`` (Poisson sampling), each per-example
gradient is clipped to L2 norm ``C`` and the sum gets ``N(0, (sigma C)^2 I)``. Carlini et al. ("No
Free Lunch in 'Privacy for Free'", 2022) found DP-SGD the baseline that distillation-for-privacy
must beat, so the audit and the utility curve run it next to ``dp-dm``/``dp-dc``.

The mechanism is Opacus' (``PrivacyEngine(accountant="rdp").make_private`` with Poisson sampling:
per-example gradients, flat clipping, Gaussian noise; ``q = 1 / ceil(n / batch_size)``, i.e. an
expected batch of about ``batch_size``; ``steps = epochs / q``). ``sigma`` for the target epsilon
comes from :func:`ddapps.dp.accounting.calibrate_noise` -- the bisection Opacus'
``make_private_with_epsilon`` runs, on the same RDP accountant, but cached: an audit trains a target
and its shadows on sets of about the same size, and Opacus' uncached search cost ~3 s per model
on two CPU cores. The epsilon reported is Opacus' accountant's over the steps taken.
``epsilon`` ``inf`` runs the same loop with ``noise_multiplier`` 0: Poisson sampling and
per-example clipping, no noise, no guarantee (so "inf" means the same as for ``dp-dm``: clipping
only, not plain training).

Randomness: the model's initial weights come from the caller's generator. Opacus draws the
Poisson sampling and the noise from two ``torch.Generator`` s; by default both are seeded with 63
bits from the operating system's secret source (``os.urandom``) that are never stored, so knowing
the run's seed does not reveal the noise (Opacus' own non-secure mode uses the global generator;
its ``secure_mode`` needs torchcsprng, which ddapps does not depend on). ``dp_deterministic_noise``
seeds them from the caller's generator instead: reproducible and *not private*.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

from ddapps.dp.mechanism import DPOptions
from ddapps.errors import ConfigError
from ddapps.utils.seeding import draw_seed, make_generator

ACCOUNTANT = "opacus-rdp"

NetT = TypeVar("NetT", bound=nn.Module)


@dataclass(frozen=True)
class DPSGDConfig(DPOptions):
    """DP-SGD hyper-parameters: the privacy options of :class:`~ddapps.dp.mechanism.DPOptions`
    (``dp_epsilon`` ``None``/``inf`` adds no noise; ``dp_deterministic_noise`` seeds it, not private)
    plus CPU-cheap training defaults. ``batch_size`` is the *expected* batch under Poisson
    sampling (``sample_rate`` is derived from it and must stay unset). Plain SGD (no momentum) with
    the loss averaged over the expected batch.
    """

    batch_size: int = 64
    epochs: int = 30
    lr: float = 0.5
    momentum: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        trainable = self.batch_size >= 1 and self.epochs >= 1 and self.lr > 0 and 0 <= self.momentum < 1
        if not trainable:
            raise ConfigError("DP-SGD needs batch_size >= 1, epochs >= 1, lr > 0 and 0 <= momentum < 1")
        if self.sample_rate is not None:
            raise ConfigError("DP-SGD derives its sample rate from batch_size; leave sample_rate unset")


def noise_generators(config: DPSGDConfig, generator: torch.Generator) -> tuple[torch.Generator, torch.Generator, str]:
    """``(sampling generator, noise generator, source)``: secret seeds, or drawn from ``generator``."""
    if config.dp_deterministic_noise:
        return (
            make_generator(draw_seed(generator)),
            make_generator(draw_seed(generator)),
            "seeded (deterministic; not private)",
        )
    secret = [int.from_bytes(os.urandom(8), "big") for _ in range(2)]
    return make_generator(secret[0]), make_generator(secret[1]), "torch generator seeded from os.urandom"


def train_dpsgd(
    net: NetT,
    images: Tensor,
    labels: Tensor,
    config: DPSGDConfig,
    *,
    generator: torch.Generator,
    device: torch.device | str = "cpu",
) -> tuple[NetT, dict[str, Any]]:
    """Train ``net`` (in place) on ``(images, labels)`` with DP-SGD: ``(net in eval mode, privacy record)``.

    The record (keys as in ``dp-dm``'s ``meta["privacy"]``) holds ``private``, ``nominal_epsilon``
    (spent: the accountant's epsilon over the steps taken, ``None`` without noise), ``epsilon`` (the
    guarantee: ``nominal_epsilon`` when ``private``, else ``None``), ``target_epsilon``, ``delta``,
    ``noise_multiplier``, ``sample_rate``, ``steps``, ``clip_norm``, ``batch_size``, ``epochs``,
    ``lr``, ``noise_source``.
    """
    try:
        from opacus import PrivacyEngine
    except ImportError:  # pragma: no cover - depends on the installed extras
        raise ConfigError("DP-SGD needs Opacus: pip install 'ddapps[privacy]'") from None
    if images.shape[0] < 1 or images.shape[0] != labels.shape[0] or labels.is_floating_point():
        raise ConfigError("DP-SGD needs at least one image and one integer label per image")
    device = torch.device(device)
    net.to(device).train()
    sampling, noise, source = noise_generators(config, generator)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(images.to(device), labels.to(device)),
        batch_size=config.batch_size,
        generator=sampling,
    )
    optimizer = torch.optim.SGD(net.parameters(), lr=config.lr, momentum=config.momentum)
    common = dict(module=net, optimizer=optimizer, data_loader=loader, max_grad_norm=config.clip_norm,
                  poisson_sampling=True, noise_generator=noise)  # fmt: skip
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Ss]ecure RNG.*")  # the secret seeding is documented above
        warnings.filterwarnings("ignore", message="Optimal order is the largest alpha")
        warnings.filterwarnings("ignore", message="Full backward hook is firing")  # inputs need no grad
        engine = PrivacyEngine(accountant="rdp")
        model, optimizer, loader = engine.make_private(**common, noise_multiplier=noise_multiplier(config, len(loader)))
        steps = _train(model, optimizer, loader, config.epochs)
        spent = float(engine.get_epsilon(config.dp_delta)) if config.noisy else None
    optimizer.zero_grad(set_to_none=True)  # drops the last per-example gradients too
    model.remove_hooks()
    record = {
        "private": config.private,
        "epsilon": spent if config.private else None,
        "nominal_epsilon": spent,
        "target_epsilon": config.dp_epsilon if config.noisy else None,
        "delta": config.dp_delta,
        "noise_multiplier": float(optimizer.noise_multiplier),
        "sample_rate": 1.0 / len(loader),
        "steps": steps,
        "clip_norm": config.clip_norm,
        "batch_size": config.batch_size,
        "epochs": config.epochs,
        "lr": config.lr,
        "sampling": "poisson",
        "noise_source": source,
        "adjacency": "add/remove one example",
        "accountant": ACCOUNTANT,
    }
    return net.eval(), record


def noise_multiplier(config: DPSGDConfig, batches: int) -> float:
    """``sigma`` reaching ``config.dp_epsilon`` after ``epochs * batches`` steps at ``q = 1 / batches`` (0 without noise)."""
    from ddapps.dp.accounting import calibrate_noise

    if not config.noisy:
        return 0.0
    return calibrate_noise(config.dp_epsilon, config.dp_delta, 1.0 / batches, config.epochs * batches)


def _train(model: nn.Module, optimizer: torch.optim.Optimizer, loader: Any, epochs: int) -> int:
    """The DP-SGD loop; returns the number of optimiser steps (one per Poisson batch).

    An empty batch still takes a step: its zero gradient gets the noise, as the mechanism requires.
    """
    steps = 0
    for _ in range(epochs):
        for x, y in loader:
            optimizer.zero_grad(set_to_none=True)
            out = model(x)
            loss = nn.functional.cross_entropy(out, y) if x.shape[0] else out.sum() * 0.0
            loss.backward()
            optimizer.step()
            steps += 1
    return steps
