"""Random Feature Approximation Distillation (RFAD).

Loo, Hasani, Amini & Rus, "Efficient Dataset Distillation using Random Feature Approximation",
NeurIPS 2022. KIP's exact ConvNet kernel costs thousands of GPU hours; RFAD replaces it with a
random-feature estimate of the ConvNet NNGP. Each iteration draws ``n_models`` freshly initialised,
untrained ConvNets (no normalisation; weights ``N(0, sigma_w^2 / fan_in)``, biases
``N(0, sigma_b^2)``, the NNGP's standard parameterisation) and uses their penultimate features
``phi_m(x)`` (dimension ``D``):

    K(x, x') = sigma_w^2 * (1/M) sum_m <phi_m(x), phi_m(x')> / D + sigma_b^2

i.e. the NNGP of the linear readout, with features normalised by ``sqrt(D)``. The loss minimised
over the synthetic images (and labels with ``learn_labels``) is KIP's KRR loss

    L = 0.5 * mean((y_t - K_ts (K_ss + lambda tr(K_ss)/n I)^-1 y_s)^2)

on a batch of real targets with centred one-hot labels. The readout's bias variance (0.01) is the
constant added to every kernel entry and, with the relative ridge ``lambda tr(K_ss)/n`` (1e-6),
plays the role of the paper's jitter on the rank-deficient random-feature kernel.

Defaults: 8 models, ConvNet-3 with 256 channels and average pooling, ``sigma_w^2 = 2``,
``sigma_b^2 = 0.01``, 5000 target images, lr 1e-3. Substitutions, stated: Adam replaces the
paper's AdaBelief optimiser, and only the MSE loss is offered (the paper's Platt-scaling
cross-entropy option is not implemented).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from ddapps.data import Benchmark
from ddapps.methods.base import METHODS
from ddapps.methods.kernel.common import KernelConfig, KernelDistiller, check_variances
from ddapps.nets import create_net, reset_norm
from ddapps.validation import check_positive

_NORM_TYPES = (nn.GroupNorm, nn.LayerNorm, nn.modules.batchnorm._NormBase)


@torch.no_grad()
def nngp_init_(net: nn.Module, generator: torch.Generator, weight_var: float, bias_var: float) -> nn.Module:
    """Draw Gaussian weights ``N(0, weight_var / fan_in)`` and biases ``N(0, bias_var)`` in place.

    Convolutions and linear layers are re-drawn from ``generator`` (on CPU, float32, in
    ``net.modules()`` order, so the same generator state gives the same network); normalisation
    layers are reset to scale 1 and shift 0. Any other module with parameters raises ``TypeError``.
    """
    for module in net.modules():
        if isinstance(module, (nn.modules.conv._ConvNd, nn.Linear)):
            weight = module.weight
            fan_in = weight[0].numel()
            values = torch.randn(weight.shape, generator=generator) * (weight_var / fan_in) ** 0.5
            weight.copy_(values)
            if module.bias is not None:
                module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * bias_var**0.5)
        elif isinstance(module, _NORM_TYPES):
            reset_norm(module)
        elif any(True for _ in module.parameters(recurse=False)):
            raise TypeError(f"nngp_init_ does not know how to initialise {type(module).__name__}")
    return net


@dataclass(frozen=True)
class RFADConfig(KernelConfig):
    """RFAD hyper-parameters; defaults are the paper's (Adam in place of AdaBelief)."""

    lr_img: float = 1e-3
    lr_label: float = 1e-3
    reg: float = 1e-6
    batch_real: int = 5000
    learn_labels: bool = False
    float64: bool = False
    n_models: int = 8
    net: str = "convnet"
    width: int = 256
    net_options: dict[str, Any] = field(default_factory=lambda: {"norm": "none"})
    weight_var: float = 2.0
    bias_var: float = 0.01

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive("n_models", self.n_models)
        check_positive("width", self.width)
        check_variances(self.weight_var, self.bias_var)


@METHODS.register("rfad")
class RFAD(KernelDistiller):
    """RFAD (Loo et al., NeurIPS 2022): KIP with a random-feature ConvNet NNGP."""

    name = "rfad"
    config_class = RFADConfig
    config: RFADConfig
    smoke_config = {"iterations": 4, "batch_real": 16, "n_models": 2, "width": 8}

    def setup(self, real: Benchmark, ipc: int, generator: torch.Generator) -> None:
        super().setup(real, ipc, generator)
        cfg = self.config
        options = {"width": cfg.width, **cfg.net_options}
        # Built on the meta device via ``generator`` (no global RNG); weights are re-drawn each iteration.
        self.nets = [
            create_net(cfg.net, real.channels, real.num_classes, real.image_size, generator=generator, **options)
            .to(self.device)
            .eval()
            .requires_grad_(False)
            for _ in range(cfg.n_models)
        ]

    def kernels(self, x_s: Tensor, x_t: Tensor, generator: torch.Generator, iteration: int) -> tuple[Tensor, Tensor]:
        cfg = self.config
        k_ss = k_ts = None
        for net in self.nets:
            nngp_init_(net, generator, cfg.weight_var, cfg.bias_var)
            with torch.no_grad():
                f_t = net.embed(x_t).to(self.dtype)
            f_s = net.embed(x_s).to(self.dtype)
            scale = cfg.weight_var / (f_s.shape[1] * cfg.n_models)
            ss, ts = scale * (f_s @ f_s.T), scale * (f_t @ f_s.T)
            k_ss = ss if k_ss is None else k_ss + ss
            k_ts = ts if k_ts is None else k_ts + ts
        assert k_ss is not None and k_ts is not None
        return k_ss + cfg.bias_var, k_ts + cfg.bias_var
