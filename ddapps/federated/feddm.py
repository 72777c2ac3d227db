"""FedDM-style client distillation: distribution matching against the global model.

Xiong et al., "FedDM: Iterative Distribution Matching for Communication-Efficient Federated
Learning", CVPR 2023, match the client's synthetic data to its real data in the feature space of
models sampled around the current global model, so that the server, training on the union of the
synthetic sets, sees what the global model needs. What ddapps does (our reading, stated exactly):

* every DM iteration draws an embedding network ``psi = theta_g + rho * std(theta_g[l]) * eps``,
  ``eps ~ N(0, I)`` drawn per parameter tensor ``l`` from the iteration's generator
  (``rho = FederatedConfig.perturb``, 0.1 by default), instead of DM's fresh random network;
* the loss minimised over the synthetic images ``S`` is DM's, with DSA applied to both sides:
  ``L(S) = sum_c || mean_{x in T_c} psi(A(x)) - mean_{s in S_c} psi(A(s)) ||^2`` where ``psi`` is
  the perturbed global model's embedding (the features before its classifier);
* the client warm-starts from its own previous synthetic set (kept in its local state, never
  sent), so rounds refine rather than restart.

Other registered methods get only the warm start; their metadata says ``global_model: false``.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import Tensor

from ddapps.data import Benchmark
from ddapps.methods.dm import DistributionMatching, DMConfig
from ddapps.nets import create_net


class GlobalModelDM(DistributionMatching):
    """DM whose embedding network is the perturbed global model (see the module docstring)."""

    name = "dm"

    def __init__(
        self,
        config: DMConfig | Mapping[str, Any] | None,
        *,
        global_state: Mapping[str, Tensor],
        num_classes: int,
        perturb: float,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__(config, device=device)
        self.global_state = {k: v.detach().clone() for k, v in global_state.items()}
        self.global_classes = num_classes
        self.perturb = float(perturb)

    def setup(self, real: Benchmark, ipc: int, generator: torch.Generator) -> None:
        super().setup(real, ipc, generator)
        cfg = self.config
        self.net = create_net(cfg.net, real.channels, self.global_classes, real.image_size, **cfg.net_options)
        self.net.load_state_dict(self.global_state)
        self.net.to(self.device).train().requires_grad_(False)
        self.scales = {k: float(v.float().std()) if v.numel() > 1 else 0.0 for k, v in self.global_state.items()}

    @torch.no_grad()
    def _perturb_(self, generator: torch.Generator) -> None:
        params = dict(self.net.named_parameters())
        for key, base in self.global_state.items():
            target = params.get(key)
            if target is None:
                continue
            noise = torch.randn(base.shape, generator=generator)
            target.copy_((base + self.perturb * self.scales[key] * noise).to(target.device))

    def loss(
        self, params: dict[str, Tensor], real: Benchmark, ipc: int, generator: torch.Generator, iteration: int
    ) -> Tensor:
        self._perturb_(generator)
        syn = params["images"]
        per_class = [syn[c * ipc : (c + 1) * ipc] for c in range(real.num_classes)]
        return self.mean_embedding_gap(*self.class_batches(per_class, real, generator))[0]

    def finalize(self, params: dict[str, Tensor], real: Benchmark, ipc: int, **meta: Any) -> Any:
        return super().finalize(params, real, ipc, global_model=True, perturb=self.perturb, **meta)


GLOBAL_MODEL_VARIANTS: dict[str, type[GlobalModelDM]] = {"dm": GlobalModelDM}
"""Methods that have a global-model variant (FedDM), by registered name. A method not listed (a DP
method, whose clipping and noise the variant would drop, or IDM) gets only the warm start."""
