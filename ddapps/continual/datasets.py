"""Tensors -> Avalanche classification datasets that yield ``(x, y, task)`` with tensor ``y``.

Stream data and memory go through the same wrapper, so ``ReplayDataLoader`` can collate a batch
that mixes them. ``targets`` (the class ids Avalanche groups by) may differ from ``y`` (soft-label
rows in a memory).
"""

from __future__ import annotations

from typing import Any, Sequence

from torch import Tensor
from torch.utils.data import TensorDataset


class LabelledTensors(TensorDataset):
    """``TensorDataset(x, y)`` with the ``targets`` attribute (class ids) Avalanche reads."""

    def __init__(self, images: Tensor, labels: Tensor, targets: Tensor | None = None) -> None:
        super().__init__(images, labels)
        self.targets = (labels if targets is None else targets).tolist()


def avalanche_dataset(
    images: Tensor, labels: Tensor, targets: Tensor | None = None, task: int | Sequence[int] = 0
) -> Any:
    """A task-aware supervised Avalanche dataset over the tensors (task label ``task``: one, or one per sample)."""
    from avalanche.benchmarks.utils.classification_dataset import _make_taskaware_classification_dataset

    return _make_taskaware_classification_dataset(LabelledTensors(images, labels, targets), task_labels=task)
