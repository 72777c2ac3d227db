"""The data a proxy trains and validates on: distilled sets, random subsets, the validation split.

Validation images are carved out of the real *training* split (``load_dataset(...,
val_fraction=...)``) and never come from the test split; the proxy evaluator reads them from a
safetensors file, because NNI serializes an evaluator's arguments (a path travels, tensors do not).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import Tensor

from ddapps.data import Benchmark, Split
from ddapps.errors import ConfigError, DataError
from ddapps.synthetic import SyntheticSet
from ddapps.utils.atomic import atomic_path
from ddapps.utils.seeding import derive_seed, make_generator


@dataclass(frozen=True)
class ProxySpec:
    """``distilled:METHOD`` (distil now with a registered method) or ``synset:PATH`` (a saved set)."""

    kind: str
    value: str

    @classmethod
    def parse(cls, text: str) -> "ProxySpec":
        kind, sep, value = text.partition(":")
        if not sep or kind not in ("distilled", "synset") or not value:
            raise ConfigError(f"--proxy must be distilled:METHOD or synset:PATH, got {text!r}")
        return cls(kind, value)

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


def obtain_synset(
    spec: ProxySpec,
    benchmark: Benchmark,
    ipc: int,
    *,
    overrides: Mapping[str, Any] | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> tuple[SyntheticSet, float]:
    """The proxy's synthetic set and the seconds spent distilling it (0 for a saved set).

    Distillation sees ``benchmark.train`` only (the validation split is already carved out of it).
    """
    if spec.kind == "synset":
        synset = SyntheticSet.load(spec.value)
        return synset, 0.0
    from ddapps.methods import create_distiller

    distiller = create_distiller(spec.value, dict(overrides or {}), device=device, progress=progress)
    start = time.perf_counter()
    synset = distiller.distill(benchmark, ipc, generator=make_generator(derive_seed(seed, "nas", "distill")))
    seconds = time.perf_counter() - start
    synset.meta["seed"] = seed
    return synset.detach(), seconds


def random_subset(split: Split, ipc: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """``ipc`` random real images per class (class-sorted), the equal-size baseline proxy."""
    counts = split.class_counts()
    if ipc < 1 or int(counts.min()) < ipc:
        raise ConfigError(f"ipc {ipc} must be >= 1 and at most the smallest class ({int(counts.min())})")
    index = torch.cat(
        [
            split.class_indices(c)[torch.randperm(int(counts[c]), generator=generator)[:ipc]]
            for c in range(split.num_classes)
        ]
    )
    return split.images[index], split.labels[index]


def validation_subset(benchmark: Benchmark, size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """At most ``size`` images of the validation split (carved from train), drawn with ``generator``."""
    if benchmark.val is None or len(benchmark.val) == 0:
        raise ConfigError("the benchmark has no validation split; load it with val_fraction > 0")
    if size < 1:
        raise ConfigError(f"validation size must be >= 1, got {size}")
    pick = torch.randperm(len(benchmark.val), generator=generator)[:size]
    return benchmark.val.images[pick], benchmark.val.labels[pick]


def save_tensors(path: str | os.PathLike[str], images: Tensor, labels: Tensor) -> Path:
    """Write ``images`` and integer ``labels`` atomically as safetensors."""
    from safetensors.torch import save_file

    target = Path(path)
    with atomic_path(target) as tmp:
        save_file(
            {"images": images.detach().float().contiguous(), "labels": labels.to(torch.int64).contiguous()}, str(tmp)
        )
    return target


def load_tensors(path: str | os.PathLike[str]) -> tuple[Tensor, Tensor]:
    """Read a file written by :func:`save_tensors` (safetensors only: nothing is unpickled)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    source = Path(path)
    if not source.is_file():
        raise DataError(f"tensor file not found: {source}")
    try:
        tensors = load_file(str(source))
    except (SafetensorError, OSError, ValueError) as err:
        raise DataError(f"{source} is not a valid safetensors file ({err})") from None
    images, labels = tensors.get("images"), tensors.get("labels")
    if images is None or labels is None or images.dim() != 4 or labels.dim() != 1 or len(images) != len(labels):
        raise DataError(f"{source} must hold images [N, C, H, W] and labels [N]")
    if labels.is_floating_point() or not bool(torch.isfinite(images).all()):
        raise DataError(f"{source} holds non-integer labels or non-finite images")
    return images, labels
