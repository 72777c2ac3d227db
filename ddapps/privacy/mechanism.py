"""The Gaussian mechanism shared by the DP distillation methods (``dp-dm``, ``dp-dc``).

Both privatise their only access to the real data -- per-class sums of per-example vectors
(embeddings for ``dp-dm``, loss gradients for ``dp-dc``) -- as in Private Set Generation (Chen,
Kerkouche & Fritz, NeurIPS 2022): Poisson-sample the examples with rate ``q``, clip each vector to
L2 norm ``C``, sum per class, add ``N(0, (sigma C)^2 I)``. This module holds that mechanism, the
privacy options of the methods' configs (:class:`DPOptions`) and the ``meta["privacy"]`` record
(:func:`privacy_record`). It imports torch only; Opacus is needed by the accountant alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ddapps.errors import ConfigError
from ddapps.nets import batch_norm_layers


@dataclass(frozen=True)
class DPOptions:
    """Privacy options mixed into a method's frozen config (put it first among the bases).

    ``dp_epsilon`` ``None``/``inf``/``'inf'`` clips without noise (no guarantee). ``sample_rate``
    ``None`` lets the method derive ``q`` from its batch size. ``init='real'`` is refused for a
    finite epsilon: the initial images would be real training images.
    """

    dp_epsilon: float | None = 10.0
    dp_delta: float = 1e-5
    clip_norm: float = 1.0
    sample_rate: float | None = None

    def __post_init__(self) -> None:
        parent = getattr(super(), "__post_init__", None)
        if parent is not None:
            parent()
        eps = self.dp_epsilon
        if isinstance(eps, str):  # "inf" from the command line or a saved config (JSON has no inf)
            try:
                eps = float(eps)
            except ValueError:
                raise ConfigError(f"dp_epsilon must be a number or 'inf', got {eps!r}") from None
            object.__setattr__(self, "dp_epsilon", eps)
        if eps is not None and not (isinstance(eps, (int, float)) and eps > 0):
            raise ConfigError(f"dp_epsilon must be > 0 (or inf/None for no noise), got {eps!r}")
        if not 0 < self.dp_delta < 1:
            raise ConfigError(f"dp_delta must be in (0, 1), got {self.dp_delta}")
        if not (self.clip_norm > 0 and math.isfinite(self.clip_norm)):
            raise ConfigError(f"clip_norm must be finite and > 0, got {self.clip_norm}")
        if self.sample_rate is not None and not 0 < self.sample_rate <= 1:
            raise ConfigError(f"sample_rate must be in (0, 1], got {self.sample_rate}")
        if getattr(self, "init", None) == "real" and self.private:
            raise ConfigError("init='real' leaks the real images; use init='noise' or dp_epsilon=inf")

    @property
    def private(self) -> bool:
        """True when a finite epsilon is requested (noise is added)."""
        return self.dp_epsilon is not None and math.isfinite(self.dp_epsilon)


def clip_rows(v: Tensor, clip_norm: float) -> Tensor:
    """Scale each row of ``v`` to L2 norm at most ``clip_norm`` (differentiable)."""
    norms = v.norm(dim=1, keepdim=True)
    return v * (clip_norm / norms.clamp_min(1e-12)).clamp(max=1.0)


def private_class_sums(
    feats: Tensor, labels: Tensor, num_classes: int, clip_norm: float, noise_std: float, generator: torch.Generator
) -> Tensor:
    """``[K, d]`` per-class sums of clipped rows of ``feats`` plus ``N(0, noise_std^2)`` noise each."""
    sums = torch.zeros(num_classes, feats.shape[1], dtype=feats.dtype, device=feats.device)
    if feats.shape[0]:
        sums.index_add_(0, labels, clip_rows(feats, clip_norm))
    if noise_std > 0:
        noise = torch.randn(sums.shape, generator=generator, dtype=sums.dtype)
        sums = sums + noise_std * noise.to(sums.device)
    return sums


def refuse_batch_norm(net: torch.nn.Module, method: str, net_name: str) -> None:
    """:class:`ConfigError` if ``net`` has batch norm: it mixes examples, so no per-example bound holds."""
    if batch_norm_layers(net):
        raise ConfigError(f"{method} needs a net without batch norm (it mixes examples); got {net_name!r}")


def poisson_sample(indices: Tensor, rate: float, generator: torch.Generator) -> Tensor:
    """The entries of ``indices`` that each join independently with probability ``rate``."""
    return indices[torch.rand(indices.numel(), generator=generator) < rate]


def privacy_record(options: DPOptions, sample_rate: float, steps: int) -> dict[str, Any]:
    """Calibrate the noise for ``steps`` accountant steps at ``sample_rate``; the ``meta["privacy"]`` dict.

    ``noise_multiplier`` is 0 and ``epsilon`` ``None`` (no guarantee) unless ``options.private``.
    """
    from ddapps.privacy.accounting import ACCOUNTANT, calibrate_noise, epsilon

    q, private = float(sample_rate), options.private
    sigma = calibrate_noise(options.dp_epsilon, options.dp_delta, q, steps) if private else 0.0
    return {
        "epsilon": epsilon(sigma, q, steps, options.dp_delta) if private else None,
        "target_epsilon": options.dp_epsilon if private else None,
        "delta": options.dp_delta,
        "noise_multiplier": float(sigma),
        "sample_rate": q,
        "steps": int(steps),
        "clip_norm": options.clip_norm,
        "sampling": "poisson",
        "adjacency": "add/remove one example",
        "accountant": ACCOUNTANT,
    }


def inf_as_text(config: dict[str, Any]) -> None:
    """Write an infinite ``dp_epsilon`` of a config dict as ``'inf'`` (JSON has no infinity)."""
    eps = config.get("dp_epsilon")
    if isinstance(eps, float) and math.isinf(eps):
        config["dp_epsilon"] = "inf"
