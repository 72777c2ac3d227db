"""Differentially private gradient matching (``dp-dc``): Private Set Generation.

Chen, Kerkouche & Fritz, "Private Set Generation with Discriminative Information", NeurIPS 2022
(PSG). The algorithm is DC's (:mod:`ddapps.methods.gradient_matching`: re-initialise the network,
then ``outer_loop`` times match gradients and train the network ``inner_loop`` epochs on the
synthetic set), with the real-data gradient of each class replaced by a Gaussian-mechanism
estimate. At each matching step, for each class ``c``:

1. *Poisson sampling*: every real example of class ``c`` joins the batch ``B_c`` independently with
   probability ``q`` (``sample_rate``; by default ``batch_real / n_min``, ``n_min`` the smallest
   class), the sampling Opacus' RDP accountant assumes;
2. *per-example gradients* ``g_i = grad_theta CE(theta; x_i, c)`` (``torch.func.vmap`` over
   ``torch.func.grad``), each *clipped* to L2 norm ``C`` over all parameters together;
3. *noise*: ``G_c = (sum_{i in B_c} clip(g_i) + N(0, (sigma C)^2 I)) / (q n_c)``.

The loss minimised over the synthetic images ``S`` is DC's,

    L(S) = sum_c D( G_c, grad_theta CE(theta; S_c) ),

with ``D`` the gradient distance ``dis_metric`` (:mod:`ddapps.methods.matching_losses`).

Privacy argument (add/remove-one-example adjacency). An example enters only its own class's
batch and its gradient depends only on itself, its label and ``theta`` (batch norm would mix
examples and is refused; the default instance norm is per example). ``theta`` is drawn from the
generator and then trained on the synthetic images only, which are post-processing of earlier
noisy releases -- PSG's design, which costs no privacy. So the K noisy class sums of one matching
step are K disjoint blocks of one vector whose L2 sensitivity is ``C``, and iid noise
``N(0, (sigma C)^2)`` on every coordinate makes the step *one* Poisson-subsampled Gaussian
mechanism with rate ``q`` and noise multiplier ``sigma`` (parallel composition over classes).
A run has ``iterations * outer_loop`` such steps (each outer step reads the real data once,
including the last one, taken by the base loop); they compose adaptively, and ``sigma`` is
calibrated with :func:`ddapps.dp.accounting.calibrate_noise` for that many steps so the run
spends at most ``(dp_epsilon, dp_delta)``. The class sizes ``n_c`` are treated as public. The
sampling and noise come from the secret source of :mod:`ddapps.dp.noise`, not the seeded
generator. The initial images must not come from the data (``init='real'`` is refused for a
finite epsilon); a warm start must itself be a private DP release; normalisation constants must
be public and ZCA is refused. ``dp_epsilon=inf`` clips without noise (meta epsilon ``None``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.func import functional_call, vmap
from torch.func import grad as func_grad

from ddapps.dp.mechanism import DPOptions, PrivateRun, private_class_sums
from ddapps.dp.noise import NoiseSource
from ddapps.errors import ConfigError
from ddapps.methods.base import METHODS
from ddapps.methods.gradient_matching import DCConfig, GradientMatching
from ddapps.methods.private import PrivateMethod

CHUNK = 64
"""Examples per vmap call: bounds the memory of per-example gradients (clipping is per row, so
chunking does not change the estimate)."""


@dataclass(frozen=True)
class DPDCConfig(DPOptions, DCConfig):
    """DC's hyper-parameters (noise init, no augmentation) plus the privacy options.

    ``batch_real`` sets the expected per-class batch (``q = batch_real / n_min``) unless
    ``sample_rate`` is given.
    """


def clipped_gradient_sum(per_example: Tensor, clip_norm: float, noise_std: float, noise: NoiseSource) -> Tensor:
    """``sum_i clip(per_example[i]) + N(0, noise_std^2 I)`` for ``[B, P]`` flat gradients."""
    one_class = torch.zeros(per_example.shape[0], dtype=torch.long, device=per_example.device)
    return private_class_sums(per_example, one_class, 1, clip_norm, noise_std, noise)[0]


@METHODS.register("dp-dc")
class DPGradientMatching(PrivateMethod, GradientMatching):
    """Gradient matching with a differentially private real gradient (PSG; see the module doc)."""

    name = "dp-dc"
    config_class = DPDCConfig
    config: DPDCConfig
    smoke_config = {
        "iterations": 4,
        "batch_real": 6,
        "batch_train": 8,
        "outer_loop": 2,
        "inner_loop": 1,
        "net_options": {"width": 8},
        "dp_epsilon": 10.0,
    }

    def accountant_steps(self, ipc: int) -> int:
        """``iterations * outer_loop``: every matching step reads the real data once."""
        outer, _ = self.config.loops(ipc)
        return int(self.config.iterations) * outer

    def real_indices(self, c: int, generator: torch.Generator) -> Tensor:
        """Poisson sample of class ``c`` (rate ``q``; expected size ``q n_c``), from the secret source.

        ``generator`` (the matching step's public stream) is not used: the sample must stay secret.
        """
        run = self._run()
        return run.noise.poisson_sample(self.class_indices[c], run.sample_rate).to(self.device)

    def real_gradients(self, x: Tensor, label: int) -> list[Tensor]:
        """The privatised class gradient ``G_c`` (clipped per-example sum plus noise, over ``q n_c``)."""
        run, cfg = self._run(), self.config
        per_example = self.per_example_gradients(x, label)
        total = clipped_gradient_sum(per_example, cfg.clip_norm, run.noise_multiplier * cfg.clip_norm, run.noise)
        total = total / float(run.sample_rate * run.class_sizes[label])
        return [
            chunk.view_as(p) for chunk, p in zip(total.split([p.numel() for p in self.net_params]), self.net_params)
        ]

    def per_example_gradients(self, x: Tensor, label: int) -> Tensor:
        """``[B, P]``: each example's cross-entropy gradient, flattened over all parameters."""
        size = sum(p.numel() for p in self.net_params)
        rows = [x.new_zeros(0, size)]
        for start in range(0, x.shape[0], CHUNK):
            xs = x[start : start + CHUNK]
            target = torch.full((xs.shape[0],), label, dtype=torch.long, device=self.device)
            grads = vmap(func_grad(self._example_loss), in_dims=(None, 0, 0))(self.detached_params, xs, target)
            rows.append(torch.cat([grads[name].flatten(1) for name in self.detached_params], dim=1))
        return torch.cat(rows)

    def _run(self) -> PrivateRun:
        run = getattr(self, "private_run", None)
        if run is None:
            raise ConfigError("dp-dc: the mechanism is prepared by setup(); call distill()")
        return run

    def _example_loss(self, params: dict[str, Tensor], x: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(functional_call(self.net, params, (x.unsqueeze(0),)), target.unsqueeze(0))
