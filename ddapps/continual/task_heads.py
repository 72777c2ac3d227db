"""Task-incremental learning: one output head per task, chosen by the task label.

Task-incremental split benchmarks (van de Ven & Tolias, "Three scenarios for continual
learning", 2019; van de Ven, Tuytelaars & Tolias, Nature Machine Intelligence 2022) give the
learner the task label at training and test time, and the learner answers among that task's
classes only ("multi-headed output layer"). :class:`TaskHeadClassifier` is that learner as an
Avalanche ``MultiTaskModule``: a shared ddapps network whose output layer is partitioned by task
(each task's head is the rows of the classes it owns); a sample's logits outside its task's head
are masked away. This is exactly separate linear heads on a shared trunk: a class's output row
receives gradients only from samples of its own task, and a prediction is an argmax over its
task's classes. Unlike Avalanche's ``MultiHeadClassifier`` the heads are fixed at construction
(the split benchmark states every task's classes up front), so GDumb's in-place reset to the
first weights and an optimizer built once both stay valid.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from avalanche.models import MultiTaskModule
from torch import Tensor, nn

from ddapps.errors import ConfigError

MASKED_LOGIT = -1e9
"""The logit of a class outside the sample's task: ``exp`` of it is 0 in float32 and bfloat16."""


def task_classes(stream: Any) -> list[list[int]]:
    """The classes of each task of a task-incremental stream (task ``t`` = experience ``t``)."""
    out: dict[int, set[int]] = {}
    for experience in stream:
        labels = list(experience.task_labels)
        if len(labels) != 1:
            raise ConfigError(f"a task-incremental experience holds one task, got task labels {labels}")
        out.setdefault(int(labels[0]), set()).update(int(c) for c in experience.classes_in_this_experience)
    if sorted(out) != list(range(len(out))):
        raise ConfigError(f"task labels must be 0..T-1, got {sorted(out)}")
    return [sorted(out[t]) for t in range(len(out))]


class TaskHeadClassifier(MultiTaskModule):
    """A ddapps network with one head per task (task ``t`` answers among ``classes[t]``).

    Args:
        net: a ddapps :class:`~ddapps.nets.base.Net` (``features`` then ``classifier`` over all classes).
        classes: ``classes[t]`` is the list of class ids of task ``t`` (disjoint).
        num_classes: the width of ``net``'s output (all classes of the stream).
    """

    def __init__(self, net: nn.Module, classes: Sequence[Sequence[int]], num_classes: int) -> None:
        super().__init__(auto_adapt=False)  # the heads are fixed: nothing to grow
        flat = [int(c) for task in classes for c in task]
        if not flat or len(set(flat)) != len(flat):
            raise ConfigError("tasks must own disjoint, non-empty sets of classes")
        if min(flat) < 0 or max(flat) >= num_classes:
            raise ConfigError(f"class ids must lie in 0..{num_classes - 1}")
        mask = torch.zeros(len(classes), num_classes, dtype=torch.bool)
        for t, task in enumerate(classes):
            mask[t, list(task)] = True
        self.backbone = net
        self.feature_layer = "backbone.features"
        """The layer feature-based selection (herding) reads."""
        self.register_buffer("head_mask", mask, persistent=False)

    def adaptation(self, experience: Any) -> None:
        """Fixed heads: nothing to adapt (the split benchmark gave every task's classes)."""

    def forward(self, x: Tensor, task_labels: Tensor | int | None = None) -> Tensor:
        """Logits over all classes; with task labels, those outside each sample's task are masked."""
        logits: Tensor = self.backbone(x)
        if task_labels is None:
            return logits
        if isinstance(task_labels, int):
            rows = self.head_mask[task_labels].expand(logits.shape[0], -1)
        else:
            tasks = torch.as_tensor(task_labels, device=self.head_mask.device).long()
            if tasks.numel() and int(tasks.max()) >= self.head_mask.shape[0]:
                raise ConfigError(f"task label {int(tasks.max())} has no head ({self.head_mask.shape[0]} tasks)")
            rows = self.head_mask[tasks]
        return logits.masked_fill(~rows.to(logits.device), MASKED_LOGIT)

    def forward_single_task(self, x: Tensor, task_label: int) -> Tensor:
        """Avalanche's per-task entry point: the masked logits of one task."""
        return self.forward(x, int(task_label))
