"""Kernel Inducing Points (KIP).

Nguyen, Chen & Lee, "Dataset Meta-Learning from Kernel Ridge-Regression", ICLR 2021 (and Nguyen,
Novak, Xiao & Lee, "Dataset Distillation with Infinitely Wide Convolutional Networks", NeurIPS
2021). The synthetic set is the support set of a kernel ridge regressor whose kernel is the NTK
(or NNGP) of an infinitely wide network; each iteration draws a target batch of real images and
minimises, over the synthetic images ``X_s`` (and labels ``y_s`` with ``learn_labels``),

    L(X_s, y_s) = 0.5 * mean((y_t - K_ts (K_ss + lambda tr(K_ss)/n I)^-1 y_s)^2)

with centred one-hot targets. Defaults follow the ICLR paper: the kernel of a fully-connected ReLU
network with one hidden layer (its "FC1"), NTK, ``sigma_w^2 = 2``, ``sigma_b^2 = 0.01``, ridge
``1e-6``, Adam with lr 0.04, 5000 target images per iteration, 1000 iterations, real
initialisation, float64 (the paper runs JAX in x64). The paper reports KIP with and without label
learning; the default here keeps the labels fixed (``learn_labels=True`` learns them).

Scope: the kernel is computed in closed form in PyTorch (no JAX / neural_tangents); only the
fully-connected kernels are offered. The ConvNet NTK of the NeurIPS 2021 paper (thousands of GPU
hours there) is not implemented; RFAD (``rfad``) approximates a ConvNet NNGP with random features.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
from torch import Tensor

from ddapps.methods.base import METHODS
from ddapps.methods.kernel.common import KernelConfig, KernelDistiller, check_variances
from ddapps.methods.kernel.ntk import KERNELS, fc_relu_kernel
from ddapps.validation import check_choice, check_count


@dataclass(frozen=True)
class KIPConfig(KernelConfig):
    """KIP hyper-parameters; defaults are the ICLR 2021 paper's FC-kernel setting."""

    lr_img: float = 0.04
    lr_label: float = 0.04
    reg: float = 1e-6
    batch_real: int = 5000
    learn_labels: bool = False
    float64: bool = True
    kernel: str = "ntk"
    depth: int = 1
    weight_var: float = 2.0
    bias_var: float = 0.01

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("kernel", self.kernel, KERNELS)
        check_count("depth", self.depth)
        check_variances(self.weight_var, self.bias_var)


@METHODS.register("kip")
class KIP(KernelDistiller):
    """Kernel Inducing Points (Nguyen et al., ICLR 2021) with an analytic FC NNGP/NTK."""

    name = "kip"
    config_class = KIPConfig
    config: KIPConfig
    smoke_config = {"iterations": 4, "batch_real": 16}

    def kernels(self, x_s: Tensor, x_t: Tensor, generator: torch.Generator, iteration: int) -> tuple[Tensor, Tensor]:
        cfg = self.config
        x_s, x_t = x_s.to(self.dtype), x_t.to(self.dtype)
        kernel = partial(
            fc_relu_kernel, kind=cfg.kernel, depth=cfg.depth, weight_var=cfg.weight_var, bias_var=cfg.bias_var
        )
        return kernel(x_s, x_s), kernel(x_t, x_s)
