"""What KIP, RFAD and FRePo share: the support set, optional learned labels, target batches, the
KRR loss and the metadata that makes evaluation train with MSE.

A subclass supplies ``kernels(x_s, x_t, generator, iteration) -> (K_ss, K_ts)``; this base turns
them into the loss of :mod:`ddapps.methods.kernel.krr`, minimised over the synthetic images (and
their labels when ``learn_labels``) with Adam.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor

from ddapps.data import Benchmark
from ddapps.evaluation.protocol import MSE_PROTOCOL_LR
from ddapps.methods.base import IterativeConfig
from ddapps.methods.iterative import IterativeDistiller
from ddapps.methods.kernel.krr import centered_one_hot, krr_loss
from ddapps.synthetic import EvalProtocol, SyntheticSet
from ddapps.validation import check_fields, check_number, check_positive


@dataclass(frozen=True)
class KernelConfig(IterativeConfig):
    """Options every kernel meta-learning method has; subclasses set their paper's defaults."""

    lr_img: float = 0.01
    lr_label: float = 0.01
    reg: float = 1e-6
    batch_real: int = 5000
    learn_labels: bool = False
    float64: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        check_fields(self, check_number, "lr_img", "lr_label")
        check_number("reg", self.reg, low_inclusive=True)
        check_positive("batch_real", self.batch_real)


class KernelDistiller(IterativeDistiller):
    """Base of the KRR meta-learning methods (not registered itself)."""

    config: KernelConfig
    eval_note = (
        "kernel ridge regression meta-learning: train with 0.5*MSE on centred one-hot targets "
        "(one_hot - 1/C), or on the stored soft labels as regression targets when they were learned"
    )

    @property
    def dtype(self) -> torch.dtype:
        """Precision of the kernel computations (float64 as KIP's ``x64`` when ``config.float64``)."""
        return torch.float64 if self.config.float64 else torch.float32

    def init_params(
        self, real: Benchmark, ipc: int, init: SyntheticSet | None, generator: torch.Generator
    ) -> dict[str, Tensor]:
        params = super().init_params(real, ipc, init, generator)
        labels = centered_one_hot(torch.arange(real.num_classes).repeat_interleave(ipc), real.num_classes)
        if self.config.learn_labels:
            params["labels"] = labels.to(self.device).requires_grad_(True)
        else:
            self.fixed_labels = labels.to(self.device)
        return params

    def make_optimizer(self, params: dict[str, Tensor]) -> torch.optim.Optimizer:
        groups: list[dict[str, Any]] = [{"params": [params["images"]], "lr": self.config.lr_img}]
        if "labels" in params:
            groups.append({"params": [params["labels"]], "lr": self.config.lr_label})
        return torch.optim.Adam(groups)

    def setup(self, real: Benchmark, ipc: int, generator: torch.Generator) -> None:
        self.real_images = real.train.images.to(self.device)
        self.real_targets = centered_one_hot(real.train.labels, real.num_classes).to(self.device)

    def support_labels(self, params: dict[str, Tensor]) -> Tensor:
        """The labels the regressor is fitted to: learned ones, or the fixed centred one-hot."""
        return params["labels"] if "labels" in params else self.fixed_labels

    def sample_targets(self, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """``batch_real`` real images drawn uniformly without replacement, with centred one-hot targets."""
        n = self.real_images.shape[0]
        pick = torch.randperm(n, generator=generator)[: self.config.batch_real].to(self.device)
        return self.real_images[pick], self.real_targets[pick]

    @abstractmethod
    def kernels(self, x_s: Tensor, x_t: Tensor, generator: torch.Generator, iteration: int) -> tuple[Tensor, Tensor]:
        """``(K_ss [n, n], K_ts [T, n])`` for support ``x_s`` (differentiable) and targets ``x_t``."""

    def loss(
        self, params: dict[str, Tensor], real: Benchmark, ipc: int, generator: torch.Generator, iteration: int
    ) -> Tensor:
        x_t, y_t = self.sample_targets(generator)
        k_ss, k_ts = self.kernels(params["images"], x_t, generator, iteration)
        return krr_loss(k_ts.to(self.dtype), k_ss.to(self.dtype), self.support_labels(params), y_t, self.config.reg)

    def finalize(self, params: dict[str, Tensor], real: Benchmark, ipc: int, **meta: Any) -> SyntheticSet:
        learned = "labels" in params
        protocol = EvalProtocol(
            loss="mse",
            lr=MSE_PROTOCOL_LR,
            labels="learned" if learned else "centered one-hot",
            note=self.eval_note,
        )
        synset = self.make_synset(real, ipc, params["images"], eval_protocol=protocol, **meta)
        if learned:
            synset = replace(synset, labels=params["labels"].detach().to("cpu", torch.float32).contiguous())
        return synset


def check_variances(weight_var: float, bias_var: float) -> None:
    """The NNGP/NTK initialisation variances: ``weight_var > 0``, ``bias_var >= 0``."""
    check_number("weight_var", weight_var)
    check_number("bias_var", bias_var, low_inclusive=True)
