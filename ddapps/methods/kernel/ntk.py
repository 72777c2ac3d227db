"""Analytic NNGP and NTK kernels of infinitely wide fully-connected ReLU networks, in PyTorch.

The network is ``depth`` hidden layers ``h_l = relu(z_l)``, ``z_{l+1} = sigma_w / sqrt(width) *
W_l h_l + sigma_b * b_l`` (NTK parameterisation, ``W, b ~ N(0, 1)``), then a linear readout; the
input layer sees ``x / sqrt(d)``. As the width goes to infinity the readout is a Gaussian process
(NNGP, Neal 1996; Lee et al., ICLR 2018) and gradient-descent training follows the neural tangent
kernel (NTK, Jacot et al., NeurIPS 2018). For ReLU both are the arc-cosine recursion of Cho & Saul
(NeurIPS 2009):

    K_0(x, x')  = sigma_w^2 <x, x'> / d + sigma_b^2,          Theta_0 = K_0
    c           = K_{l-1}(x, x') / sqrt(K_{l-1}(x, x) K_{l-1}(x', x'))
    E[relu relu]   = sqrt(K(x,x) K(x',x')) * (sqrt(1 - c^2) + (pi - arccos c) c) / (2 pi)
    E[relu' relu'] = (pi - arccos c) / (2 pi)
    K_l         = sigma_w^2 E[relu relu] + sigma_b^2
    Theta_l     = K_l + sigma_w^2 E[relu' relu'] Theta_{l-1}

The output kernels are ``K_depth`` (NNGP) and ``Theta_depth`` (NTK). This is the FC kernel of KIP
(Nguyen, Chen & Lee, ICLR 2021), computed here without JAX/neural_tangents. The diagonal terms
follow the exact identity ``K_l(x, x) = sigma_w^2 K_{l-1}(x, x) / 2 + sigma_b^2``; the cosine is
clamped just inside [-1, 1] so that identical inputs (c = 1, where arccos has an infinite
derivative) get a finite, zero gradient through ``c``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ddapps.errors import ConfigError

KERNELS = ("nngp", "ntk")


def _clamp_eps(dtype: torch.dtype) -> float:
    return 1e-12 if dtype == torch.float64 else 1e-6


def fc_relu_kernel(
    x1: Tensor,
    x2: Tensor,
    *,
    kind: str = "ntk",
    depth: int = 1,
    weight_var: float = 2.0,
    bias_var: float = 0.01,
) -> Tensor:
    """``[N1, N2]`` NNGP or NTK (``kind``) between the rows of ``x1`` and ``x2`` (flattened).

    Args:
        kind: ``"nngp"`` or ``"ntk"``.
        depth: number of hidden ReLU layers (KIP's "FC1" is ``depth=1``); 0 gives the linear kernel.
        weight_var: ``sigma_w^2`` of every layer (2 is He's ReLU-preserving variance).
        bias_var: ``sigma_b^2`` of every layer.
    """
    if kind not in KERNELS:
        raise ConfigError(f"unknown kernel {kind!r}; choose one of: {', '.join(KERNELS)}")
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
        raise ConfigError(f"depth must be a non-negative int, got {depth!r}")
    a, b = x1.flatten(1), x2.flatten(1)
    if a.shape[1] != b.shape[1]:
        raise ConfigError(f"inputs have {a.shape[1]} and {b.shape[1]} features")
    dim = a.shape[1]
    eps = _clamp_eps(a.dtype)
    k12 = weight_var * (a @ b.T) / dim + bias_var
    k11 = weight_var * (a * a).sum(dim=1) / dim + bias_var
    k22 = weight_var * (b * b).sum(dim=1) / dim + bias_var
    ntk = k12
    for _ in range(depth):
        norms = torch.sqrt(k11[:, None] * k22[None, :])
        cos = (k12 / norms).clamp(-1.0 + eps, 1.0 - eps)
        angle_term = math.pi - torch.arccos(cos)  # pi - theta
        e_relu = norms * (torch.sqrt(1.0 - cos * cos) + angle_term * cos) / (2 * math.pi)
        e_drelu = angle_term / (2 * math.pi)
        k12 = weight_var * e_relu + bias_var
        if kind == "ntk":
            ntk = k12 + weight_var * e_drelu * ntk
        k11 = weight_var * k11 / 2 + bias_var
        k22 = weight_var * k22 / 2 + bias_var
    return ntk if kind == "ntk" else k12
