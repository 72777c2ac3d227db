"""``DistilledBuffer``: an Avalanche storage policy whose memory is a distilled synthetic set.

Dataset condensation as continual-learning memory: Zhao, Mopuri & Bilen, "Dataset Condensation
with Gradient Matching", ICLR 2021; Zhao & Bilen, "Dataset Condensation with Distribution
Matching", WACV 2023 (GDumb protocol); Rosasco et al., "Distilled Replay", 2021.

After each experience the buffer distils the experience's new classes with any registered ddapps
method (``create_distiller(method)``) into the images per class the memory allows, and shrinks
older classes when the per-class budget falls (``shrink="redistill"`` by default: the method runs
again on the class's stored images, warm-started from a random subset of them; ``"subselect"``
keeps that subset). It plugs into ``ReplayPlugin(mem_size, storage_policy=DistilledBuffer(...))``
and any Avalanche strategy; ``buffer`` is an AvalancheDataset yielding ``(x, y, task)``: each
class keeps the task label its stream data carried (task-incremental streams need it to pick the head).

Without ``overrides`` the method runs under a named budget (``budget="small"`` by default: the CPU
budget of :mod:`ddapps.continual.budget`, e.g. DM 2,000 iterations on random MLPs; ``"paper"``: the
method's paper config). Each update logs one line (``logging``, logger ``ddapps.continual``): the
classes distilled, the images per class and the seconds it took.

INVARIANT: ``stored_floats() <= max_size * C * H * W`` after every update (soft labels included).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Mapping

import torch
from avalanche.training.storage_policy import ExemplarsBuffer
from torch import Tensor
from torch.utils.data import DataLoader

from ddapps.continual.budget import buffer_overrides
from ddapps.continual.datasets import avalanche_dataset
from ddapps.continual.distilled_memory import (
    ClassMemory,
    check_modes,
    distill_classes,
    images_per_class,
    merge_classes,
    shrink,
)
from ddapps.errors import ConfigError
from ddapps.methods import METHODS
from ddapps.utils.seeding import derive_seed, make_generator

log = logging.getLogger("ddapps.continual")


class DistilledBuffer(ExemplarsBuffer):
    """Replay memory of ``max_size`` images' worth of floats, filled by dataset distillation.

    Args:
        max_size: memory size in images (the float budget is ``max_size * C * H * W``).
        method: a registered ddapps method (``"dm"``, ``"random"``, ``"herding"``, ...).
        overrides: that method's complete config overrides; ``None`` takes them from ``budget``.
        budget: ``"small"`` (CPU budget, the default), ``"paper"`` (the paper config) or ``"smoke"``;
            used only when ``overrides`` is ``None``.
        seed: base seed; experience ``i`` distils with ``make_generator(derive_seed(seed, i))``.
        dataset_name: name handed to the method (it picks the DSA strategy: no flips for digits).
        labels: ``"hard"`` or ``"soft"`` (soft labels over ``num_classes`` classes cost floats).
        num_classes: total number of classes of the stream (needed for soft labels).
        shrink: ``"redistill"`` or ``"subselect"`` for older classes when the budget falls.
        revisit: a class already in memory that arrives again: ``"warm-start"`` (distil the new data,
            starting from the stored units) or ``"merge"`` (distil the stored units together with the new
            data: online streams, :mod:`ddapps.continual.online`).
        device: where the method runs.
        cache: optional dict shared between buffers of the same seed: the memory after update
            ``i`` depends only on the data, the seed and ``i`` (never on the learner), so two
            protocols can reuse one distillation exactly.
    """

    def __init__(
        self,
        max_size: int,
        method: str = "dm",
        overrides: Mapping[str, Any] | None = None,
        *,
        budget: str = "small",
        seed: int = 0,
        dataset_name: str = "tensors",
        labels: str = "hard",
        num_classes: int | None = None,
        shrink: str = "redistill",
        revisit: str = "warm-start",
        device: str | torch.device = "cpu",
        cache: dict[Any, dict[int, ClassMemory]] | None = None,
    ) -> None:
        if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1:
            raise ConfigError(f"max_size must be a positive integer, got {max_size!r}")
        METHODS.get(method)
        check_modes(labels, shrink, revisit)
        if labels == "soft" and num_classes is None:
            raise ConfigError("labels='soft' needs num_classes")
        super().__init__(max_size)
        self.budget = budget if overrides is None else "custom"
        self.method = method
        self.overrides = buffer_overrides(method, budget) if overrides is None else dict(overrides)
        self.seed, self.dataset_name, self.device = int(seed), dataset_name, device
        self.label_mode, self.num_classes, self.shrink_mode = labels, num_classes, shrink
        self.revisit = revisit
        self.memory: dict[int, ClassMemory] = {}
        self.class_tasks: dict[int, int] = {}
        """The task label of each stored class (0 on class-incremental streams)."""
        self.image_floats: int | None = None
        self._updates = 0
        self.cache = cache

    # ------------------------------------------------------------------ Avalanche API
    def post_adapt(self, agent_state: Any, exp: Any) -> None:
        """Distil the experience's data into the memory (called after each training experience)."""
        self.update_from_dataset(exp.dataset)

    def update_from_dataset(self, new_data: Any) -> None:
        """Add the classes of ``new_data`` (any dataset yielding ``(x, y, ...)``); shrink the rest."""
        images, labels, tasks = _tensors(new_data)
        if images.shape[0] == 0:
            return
        self.class_tasks.update(_task_of_each_class(labels, tasks))
        start = time.perf_counter()
        self.image_floats = int(images[0].numel())
        gen = make_generator(derive_seed(self.seed, "experience", self._updates))
        classes = sorted(int(c) for c in labels.unique())
        key = (self.method, repr(sorted(self.overrides.items())), self.seed, self._updates, self.max_size,
               tuple(classes), int(images.shape[0]), self.label_mode, self.shrink_mode, self.revisit)  # fmt: skip
        self._updates += 1
        if self.cache is not None and key in self.cache:
            self.memory = dict(self.cache[key])
            self._rebuild()
            self._log_update(classes, start, cached=True)
            return
        seen = set(self.memory) | set(classes)
        per_class = self._per_class(len(seen))
        old = {c: m for c, m in self.memory.items() if c not in classes}
        warm = {c: m for c, m in self.memory.items() if c in classes}
        self.memory = shrink(
            old, per_class, mode=self.shrink_mode, method=self.method, overrides=self.overrides,
            generator=gen, dataset_name=self.dataset_name, device=self.device,
        )  # fmt: skip
        common = dict(
            method=self.method, overrides=self.overrides, generator=gen, dataset_name=self.dataset_name,
            label_mode=self.label_mode, num_classes=self.num_classes, device=self.device,
        )  # fmt: skip
        if self.revisit == "merge":
            self.memory.update(merge_classes(images, labels, classes, per_class, warm, **common))  # type: ignore[arg-type]
        else:
            self.memory.update(distill_classes(images, labels, classes, per_class, init=warm or None, **common))  # type: ignore[arg-type]
        if self.cache is not None:
            self.cache[key] = dict(self.memory)
        self._rebuild()
        self._log_update(classes, start, cached=False)

    def _log_update(self, classes: list[int], start: float, *, cached: bool) -> None:
        sizes = sorted({int(m.images.shape[0]) for m in self.memory.values()})
        log.info(
            "distilled buffer (%s, %s budget): update %d, classes %s, %s image(s) per class, %.1f s%s",
            self.method, self.budget, self._updates, classes, "/".join(map(str, sizes)),
            time.perf_counter() - start, " (cached)" if cached else "",
        )  # fmt: skip

    def resize(self, strategy: Any, new_size: int) -> None:
        """Change ``max_size``; classes above the new per-class budget are shrunk."""
        if isinstance(new_size, bool) or not isinstance(new_size, int) or new_size < 1:
            raise ConfigError(f"new_size must be a positive integer, got {new_size!r}")
        self.max_size = new_size
        if not self.memory:
            return
        gen = make_generator(derive_seed(self.seed, "resize", self._updates, new_size))
        self.memory = shrink(
            self.memory, self._per_class(len(self.memory)), mode=self.shrink_mode, method=self.method,
            overrides=self.overrides, generator=gen, dataset_name=self.dataset_name, device=self.device,
        )  # fmt: skip
        self._rebuild()

    # ------------------------------------------------------------------ accounting
    def stored_floats(self) -> int:
        """Every float the memory stores (images and soft labels)."""
        return sum(m.stored_floats() for m in self.memory.values())

    def max_floats(self) -> int:
        """The budget: ``max_size`` images' worth of floats (0 before the first experience)."""
        return self.max_size * (self.image_floats or 0)

    def _per_class(self, n_classes: int) -> int:
        assert self.image_floats is not None
        label_floats = self.num_classes if self.label_mode == "soft" and self.num_classes else 0
        return images_per_class(self.max_size, n_classes, self.image_floats, label_floats)

    def _rebuild(self) -> None:
        if self.stored_floats() > self.max_floats():  # a method returned more than asked: refuse
            raise ConfigError(
                f"{self.method} produced {self.stored_floats()} floats, over the budget of {self.max_floats()}"
            )
        order = sorted(self.memory)
        x = torch.cat([self.memory[c].images for c in order])
        y = torch.cat([self.memory[c].labels for c in order])
        targets = torch.cat([torch.full((len(self.memory[c]),), c, dtype=torch.int64) for c in order])
        tasks = [self.class_tasks.get(c, 0) for c in order for _ in range(len(self.memory[c]))]
        self.buffer = avalanche_dataset(x, y, targets, task=tasks)


def _tensors(data: Any, batch_size: int = 1024) -> tuple[Tensor, Tensor, Tensor]:
    """All ``(x, y, task)`` of an Avalanche (or any ``(x, y, ...)``) dataset as three tensors (task 0 if absent)."""
    xs, ys, ts = [], [], []
    for batch in DataLoader(data, batch_size=batch_size, shuffle=False, collate_fn=getattr(data, "collate_fn", None)):
        xs.append(batch[0].float())
        ys.append(torch.as_tensor(batch[1]).long())
        ts.append(torch.as_tensor(batch[2]).long() if len(batch) > 2 else torch.zeros_like(ys[-1]))
    if not xs:
        return torch.empty(0), torch.empty(0, dtype=torch.int64), torch.empty(0, dtype=torch.int64)
    return torch.cat(xs), torch.cat(ys), torch.cat(ts)


def _task_of_each_class(labels: Tensor, tasks: Tensor) -> dict[int, int]:
    """``class -> task label``; a class seen under two task labels is refused (heads own disjoint classes)."""
    out: dict[int, int] = {}
    for c in labels.unique().tolist():
        seen = tasks[labels == c].unique().tolist()
        if len(seen) != 1:
            raise ConfigError(f"class {c} arrives with task labels {seen}; a class belongs to one task")
        out[int(c)] = int(seen[0])
    return out
