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
:func:`ddapps.dp.accounting.calibrate_noise` so the run spends at most ``(dp_epsilon,
dp_delta)``. The synthetic images are post-processing of the noisy means. The sampling and the
noise come from the operating system's secret source (:mod:`ddapps.dp.noise`), never from the
seeded generator: knowing the seed does not reveal them. The initial images must not come from the
data: the default init is ``noise`` and ``init='real'`` is refused unless ``dp_epsilon`` is
infinite; a warm start (``distill(init=...)``) must itself be a private DP release
(post-processing; its budget composes with this run's). The normalisation constants must be
public and ZCA is refused (:func:`ddapps.dp.mechanism.check_public_inputs`). The class sizes
``n_c`` (used as the expected batch ``q n_c``) are treated as public, as the dataset size is in
DP-SGD.

``dp_epsilon=inf`` (or ``'inf'``; ``None`` in a config instance) adds no noise but still clips (no guarantee: meta epsilon is
``None``). ``meta["privacy"]`` records epsilon, delta, noise multiplier, sample rate, steps,
clip norm and the accountant.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ddapps.data import Benchmark
from ddapps.dp.mechanism import DPOptions, clip_rows
from ddapps.methods.base import METHODS
from ddapps.methods.dm import DistributionMatching, DMConfig
from ddapps.methods.private import PrivateMethod
from ddapps.nets import reinitialize_


@dataclass(frozen=True)
class DPDMConfig(DPOptions, DMConfig):
    """DM's hyper-parameters plus the privacy options (:class:`DPOptions`); ``init`` defaults to ``noise``.

    ``batch_real`` sets the expected per-class batch (``q = batch_real / n_min``) unless
    ``sample_rate`` is given.
    """

    init: str = "noise"


@METHODS.register("dp-dm")
class DPDistributionMatching(PrivateMethod, DistributionMatching):
    """Distribution matching with a differentially private real-data term (see the module doc)."""

    name = "dp-dm"
    config_class = DPDMConfig
    config: DPDMConfig
    smoke_config = {"iterations": 4, "batch_real": 6, "net_options": {"width": 16}, "dp_epsilon": 10.0}

    def loss(
        self, params: dict[str, Tensor], real: Benchmark, ipc: int, generator: torch.Generator, iteration: int
    ) -> Tensor:
        cfg = self.config
        reinitialize_(self.net, generator)
        syn = params["images"]
        real_batches, syn_batches, real_labels = [], [], []
        for c in range(real.num_classes):
            idx = real.train.class_indices(c)
            pick = self.private_run.noise.poisson_sample(idx, self.private_run.sample_rate)
            x_real = self.real_images[pick.to(self.device)]
            x_syn = syn[c * ipc : (c + 1) * ipc]
            if self.dsa is not None:
                x_real, x_syn = self.dsa.siamese(x_real, x_syn, generator=generator, device=self.device)
            real_batches.append(x_real)
            syn_batches.append(x_syn)
            real_labels.append(torch.full((x_real.shape[0],), c, dtype=torch.long))
        labels = torch.cat(real_labels).to(self.device)
        with torch.no_grad():
            x = torch.cat(real_batches)
            feats = self.net.embed(x) if x.shape[0] else x.new_zeros(0, self.net.feature_dim)
            real_mean = self.private_run.noisy_class_mean(feats, labels, real.num_classes, cfg.clip_norm)
        syn_feat = clip_rows(self.net.embed(torch.cat(syn_batches)), cfg.clip_norm)
        syn_mean = syn_feat.reshape(real.num_classes, ipc, -1).mean(dim=1)
        return ((real_mean - syn_mean) ** 2).sum()
