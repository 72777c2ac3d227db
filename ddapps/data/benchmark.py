"""A loaded benchmark: normalized splits plus the metadata needed to undo or reproduce them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ddapps.data.normalize import denormalize as _denormalize
from ddapps.data.split import Split
from ddapps.data.zca import ZCA


@dataclass(eq=False)
class Benchmark:
    """Train/test (and optional validation) splits of one dataset, normalized per channel.

    ``mean``/``std`` are the per-channel constants applied to images in [0, 1]; ``zca`` is the
    whitening fitted on ``train`` and already applied to every split, or None. ``test_partial`` is
    True when only part of the official test set was found (CIFAR-10's first 1,000 test images).
    ``stats_source`` says where ``mean``/``std`` came from: ``published`` (the papers' constants),
    ``public`` (fixed constants, :data:`~ddapps.data.normalize.PUBLIC_STATS`), ``data`` (fitted on the
    training split: private data under DP) or ``none`` (no normalisation).
    """

    name: str
    train: Split
    test: Split
    val: Split | None
    num_classes: int
    class_names: tuple[str, ...]
    channels: int
    image_size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    zca: ZCA | None = None
    test_partial: bool = False
    source: str = ""
    stats_source: str = "data"

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Undo the mean/std normalization of ``x`` [..., C, H, W] (not the ZCA whitening)."""
        return _denormalize(x, self.mean, self.std)

    def describe(self) -> dict[str, Any]:
        """JSON-able metadata (plain str/int/float/bool/list values)."""
        return {
            "name": self.name,
            "num_classes": self.num_classes,
            "class_names": list(self.class_names),
            "channels": self.channels,
            "image_size": list(self.image_size),
            "mean": list(self.mean),
            "std": list(self.std),
            "stats_source": self.stats_source,
            "n_train": len(self.train),
            "n_val": len(self.val) if self.val is not None else 0,
            "n_test": len(self.test),
            "test_partial": self.test_partial,
            "zca": self.zca is not None,
            "source": self.source,
        }

    def __repr__(self) -> str:
        val = f", val={len(self.val)}" if self.val is not None else ""
        return (
            f"Benchmark({self.name!r}, train={len(self.train)}{val}, test={len(self.test)}, "
            f"classes={self.num_classes}, shape={self.channels}x{self.image_size[0]}x{self.image_size[1]}, "
            f"zca={self.zca is not None})"
        )
