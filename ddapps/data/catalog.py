"""The dataset registry and the raw arrays a loader hands back.

A loader is registered as ``@DATASETS.register("name")`` and called as
``loader(roots, seed=seed) -> RawData``; it only finds and parses files. Scaling, normalization,
validation splits and ZCA are done once, for every dataset, by :func:`ddapps.data.load_dataset`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from ddapps.registry import Registry


@dataclass
class RawData:
    """Unnormalized arrays: images [N, C, H, W] (pixel value / ``scale`` lies in [0, 1]), labels [N].

    Loaders return numpy arrays (usually uint8 straight from the file); ``from_tensors`` passes
    float tensors with ``scale=1``.
    """

    train_images: np.ndarray | torch.Tensor
    train_labels: np.ndarray
    test_images: np.ndarray | torch.Tensor
    test_labels: np.ndarray
    class_names: tuple[str, ...]
    scale: float = 255.0
    test_partial: bool = False
    source: str = ""


class Loader(Protocol):
    def __call__(self, roots: Sequence[Path], *, seed: int) -> RawData: ...


DATASETS: Registry[Loader] = Registry("dataset")
