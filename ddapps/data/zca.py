"""Regularized ZCA whitening, as used on CIFAR by KIP (Nguyen et al., 2021) and MTT (Cazenavette et al., 2022).

With centered, flattened training images ``X`` [N, D] and ``Sigma = X^T X / (N - 1) = U diag(S) U^T``:

    W = U diag(1 / sqrt(S + eps')) U^T,        zca(x) = (x - mu) W

as kornia's ``ZCAWhitening`` computes it. With ``relative=True`` (the default) the regularizer is
``eps' = eps * trace(Sigma) / D`` (KIP's form); on mean/std-normalized images ``trace(Sigma)/D`` is
close to 1, so ``eps=0.1`` then matches MTT's ``ZCAWhitening(eps=0.1)``. ``relative=False`` adds
``eps`` as it is. The fit uses the training split only; the same ``mu, W`` are applied to every split.
"""

from __future__ import annotations

import math

import torch

from ddapps.errors import DataError

_CHUNK = 8192  # rows per matmul block when accumulating X^T X


class ZCA:
    """A fitted whitening: ``mean`` [D] and symmetric ``matrix`` [D, D] (float32)."""

    def __init__(self, mean: torch.Tensor, matrix: torch.Tensor, eps: float = 0.1, relative: bool = True):
        if mean.dim() != 1 or matrix.shape != (mean.numel(), mean.numel()):
            raise DataError(
                f"ZCA state is inconsistent: mean {tuple(mean.shape)}, matrix {tuple(matrix.shape)}; "
                "refit it with ZCA.fit on the training images"
            )
        self.mean = mean.to(torch.float32)
        self.matrix = matrix.to(torch.float32)
        self.eps = float(eps)
        self.relative = bool(relative)
        self._inverse: torch.Tensor | None = None

    @classmethod
    def fit(cls, images: torch.Tensor, eps: float = 0.1, relative: bool = True) -> ZCA:
        """Fit on ``images`` [N, C, H, W] (the training split). Covariance and eigh in float64."""
        if images.shape[0] < 2:
            raise DataError("ZCA needs at least 2 training images to estimate a covariance")
        x = images.reshape(images.shape[0], -1)
        n, d = x.shape
        mean = x.to(torch.float64).mean(dim=0)
        cov = torch.zeros(d, d, dtype=torch.float64)
        for start in range(0, n, _CHUNK):
            block = x[start : start + _CHUNK].to(torch.float64) - mean
            cov.addmm_(block.T, block)
        cov /= n - 1
        reg = eps * float(torch.trace(cov)) / d if relative else eps
        evals, evecs = torch.linalg.eigh(cov)
        evals = evals.clamp_min(0.0)
        matrix = (evecs * torch.rsqrt(evals + reg)) @ evecs.T
        zca = cls(mean.to(torch.float32), matrix.to(torch.float32), eps=eps, relative=relative)
        zca._inverse = ((evecs * torch.sqrt(evals + reg)) @ evecs.T).to(torch.float32)
        return zca

    @property
    def dim(self) -> int:
        return int(self.mean.numel())

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() < 2 or math.prod(x.shape[1:]) != self.dim:
            raise DataError(f"ZCA was fitted on images of {self.dim} values, got a batch of shape {tuple(x.shape)}")

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """Whiten a batch ``x`` [N, ...] with ``prod(...) == D``; returns the same shape."""
        self._check(x)
        flat = x.reshape(x.shape[0], -1)
        m, w = self.mean.to(flat), self.matrix.to(flat)
        return ((flat - m) @ w).reshape(x.shape)

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        """Undo :meth:`apply`: ``x W^{-1} + mu``."""
        self._check(x)
        if self._inverse is None:
            self._inverse = torch.linalg.inv(self.matrix.to(torch.float64)).to(torch.float32)
        flat = x.reshape(x.shape[0], -1)
        return (flat @ self._inverse.to(flat) + self.mean.to(flat)).reshape(x.shape)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Plain tensors (safetensors-compatible) from which :meth:`from_state_dict` rebuilds it."""
        return {
            "mean": self.mean.contiguous(),
            "matrix": self.matrix.contiguous(),
            "eps": torch.tensor([self.eps], dtype=torch.float64),
            "relative": torch.tensor([int(self.relative)], dtype=torch.int64),
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor]) -> ZCA:
        """Rebuild from :meth:`state_dict` output; a missing key is a :class:`DataError`."""
        missing = [k for k in ("mean", "matrix") if k not in state]
        if missing:
            raise DataError(f"ZCA state lacks {', '.join(missing)}; save it with ZCA.state_dict()")
        eps = float(state["eps"].reshape(-1)[0]) if "eps" in state else 0.1
        relative = bool(int(state["relative"].reshape(-1)[0])) if "relative" in state else True
        return cls(state["mean"], state["matrix"], eps=eps, relative=relative)

    def __repr__(self) -> str:
        return f"ZCA(dim={self.dim}, eps={self.eps}, relative={self.relative})"
