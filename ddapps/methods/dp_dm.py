"""Differentially private distribution matching (``dp-dm``).

Distribution matching (Zhao & Bilen, WACV 2023, :mod:`ddapps.methods.dm`) whose only access to the
real data -- the per-class mean embedding -- is replaced by a Gaussian-mechanism estimate, in the
manner of Private Set Generation (Chen, Kerkouche & Fritz, NeurIPS 2022), which privatises the
real-data term of gradient matching the same way. Each iteration, with a freshly initialised
frozen network ``psi`` and a data-independent siamese augmentation ``A``:

1. *Poisson sampling*: every real example of class ``c`` joins the batch ``B_c`` independently with
   probability ``q`` (``sample_rate``; by default ``batch_real / n_min``, ``n_min`` the smallest
   class), which is the sampling Opacus' RDP accountant assumes.
2. *Clipping*: ``clip(v) = v * min(1, C / ||v||_2)`` on each real embedding ``psi(A(x))``.
3. *Noise*: ``m_c = (sum_{x in B_c} clip(psi(A(x))) + N(0, (sigma C)^2 I)) / (q n_c)``.

The loss minimised over the synthetic images ``S`` is

    L(S) = sum_c || m_c - mean_{s in S_c} clip(psi(A(s))) ||^2 ,

the synthetic side clipped with the same ``C`` so both sides estimate the same statistic (the
synthetic images are public, so this costs no privacy).

Privacy argument (add/remove-one-example adjacency). An example belongs to one class, and its
embedding depends only on itself and public randomness (``psi`` and ``A`` are drawn from the
generator; the net must not use batch norm, which mixes examples, and is refused). The K class
sums of one iteration are computed on disjoint data, so by parallel composition the whole
iteration is a single Poisson-subsampled Gaussian mechanism with rate ``q``, L2 sensitivity ``C``
and noise multiplier ``sigma``; ``iterations`` of them compose, and ``sigma`` is calibrated with
:func:`ddapps.privacy.accounting.calibrate_noise` so the run spends at most ``(dp_epsilon,
dp_delta)``. The synthetic images are post-processing of the noisy means. The initial images
must not come from the data: the default init is ``noise`` and ``init='real'`` is refused unless
``dp_epsilon`` is infinite. A warm start (``distill(init=...)``) is treated as public. The class
sizes ``n_c`` (used as the expected batch ``q n_c``) are treated as public, as the dataset size is
in DP-SGD.

``dp_epsilon=inf`` (or ``'inf'``; ``None`` in a config instance) adds no noise but still clips (no guarantee: meta epsilon is
``None``). ``meta["privacy"]`` records epsilon, delta, noise multiplier, sample rate, steps,
clip norm and the accountant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ddapps.data import Benchmark
from ddapps.errors import ConfigError
from ddapps.methods.base import METHODS
from ddapps.methods.dm import DistributionMatching, DMConfig
from ddapps.nets import reinitialize_
from ddapps.synthetic import SyntheticSet


@dataclass(frozen=True)
class DPDMConfig(DMConfig):
    """DM's hyper-parameters plus the privacy budget; ``init`` defaults to ``noise``.

    ``batch_real`` sets the expected per-class batch (``q = batch_real / n_min``) unless
    ``sample_rate`` is given.
    """

    init: str = "noise"
    dp_epsilon: float | None = 10.0
    dp_delta: float = 1e-5
    clip_norm: float = 1.0
    sample_rate: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
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
        if self.init == "real" and self.private:
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


@METHODS.register("dp-dm")
class DPDistributionMatching(DistributionMatching):
    """Distribution matching with a differentially private real-data term (see the module doc)."""

    name = "dp-dm"
    config_class = DPDMConfig
    config: DPDMConfig
    smoke_config = {"iterations": 4, "batch_real": 6, "net_options": {"width": 16}, "dp_epsilon": 10.0}

    def setup(self, real: Benchmark, ipc: int, generator: torch.Generator) -> None:
        super().setup(real, ipc, generator)
        if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in self.net.modules()):
            raise ConfigError(f"dp-dm needs a net without batch norm (it mixes examples); got {self.config.net!r}")
        from ddapps.privacy.accounting import ACCOUNTANT, calibrate_noise, epsilon

        cfg = self.config
        counts = real.train.class_counts()
        self.class_sizes = counts.to(torch.float32)
        q = cfg.sample_rate if cfg.sample_rate is not None else min(1.0, cfg.batch_real / int(counts.min()))
        steps = int(cfg.iterations)
        sigma = calibrate_noise(cfg.dp_epsilon, cfg.dp_delta, q, steps) if cfg.private else 0.0
        spent = epsilon(sigma, q, steps, cfg.dp_delta) if cfg.private else None
        self.sample_rate, self.noise_multiplier = float(q), float(sigma)
        self.privacy = {
            "epsilon": spent,
            "target_epsilon": cfg.dp_epsilon if cfg.private else None,
            "delta": cfg.dp_delta,
            "noise_multiplier": self.noise_multiplier,
            "sample_rate": self.sample_rate,
            "steps": steps,
            "clip_norm": cfg.clip_norm,
            "sampling": "poisson",
            "adjacency": "add/remove one example",
            "accountant": ACCOUNTANT,
        }

    def loss(
        self, params: dict[str, Tensor], real: Benchmark, ipc: int, generator: torch.Generator, iteration: int
    ) -> Tensor:
        cfg = self.config
        reinitialize_(self.net, generator)
        syn = params["images"]
        real_batches, syn_batches, real_labels = [], [], []
        for c in range(real.num_classes):
            idx = real.train.class_indices(c)
            pick = idx[torch.rand(idx.numel(), generator=generator) < self.sample_rate]
            x_real = self.real_images[pick.to(self.device)]
            x_syn = syn[c * ipc : (c + 1) * ipc]
            if self.dsa is not None:
                aug = self.dsa.sample(max(x_real.shape[0], ipc), generator=generator, device=self.device)
                x_real, x_syn = self.dsa.apply(x_real, aug), self.dsa.apply(x_syn, aug)
            real_batches.append(x_real)
            syn_batches.append(x_syn)
            real_labels.append(torch.full((x_real.shape[0],), c, dtype=torch.long))
        labels = torch.cat(real_labels).to(self.device)
        with torch.no_grad():
            x = torch.cat(real_batches)
            feats = self.net.embed(x) if x.shape[0] else x.new_zeros(0, self.net.feature_dim)
            sums = private_class_sums(
                feats, labels, real.num_classes, cfg.clip_norm, self.noise_multiplier * cfg.clip_norm, generator
            )
            real_mean = sums / (self.sample_rate * self.class_sizes.to(sums.device)).unsqueeze(1)
        syn_feat = clip_rows(self.net.embed(torch.cat(syn_batches)), cfg.clip_norm)
        syn_mean = syn_feat.reshape(real.num_classes, ipc, -1).mean(dim=1)
        return ((real_mean - syn_mean) ** 2).sum()

    def finalize(self, params: dict[str, Tensor], real: Benchmark, ipc: int, **meta: Any) -> SyntheticSet:
        synset = super().finalize(params, real, ipc, privacy=dict(self.privacy), **meta)
        if self.config.dp_epsilon is not None and math.isinf(self.config.dp_epsilon):
            synset.meta["config"]["dp_epsilon"] = "inf"  # JSON has no infinity
        return synset
