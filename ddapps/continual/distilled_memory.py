"""Pure functions behind the distilled replay memory (no Avalanche import).

The memory is a dict ``class id -> ClassMemory`` (stored images and their labels). These
functions compute the per-class budget from an honest float count, distil the classes of a new
experience with any registered ddapps method, and shrink older classes when the budget falls.

Memory accounting: a memory of ``mem_size`` holds at most ``mem_size * C * H * W`` floats,
i.e. ``mem_size`` images' worth. Soft labels cost ``num_classes`` floats per stored image and
are paid for out of the same budget (so fewer images fit); hard labels are integers and, as in
every replay buffer, are not counted as image floats.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import Tensor

from ddapps.data import Benchmark, Split
from ddapps.errors import ConfigError
from ddapps.methods import create_distiller
from ddapps.synthetic import SyntheticSet

LABEL_MODES = ("hard", "soft")
SHRINK_MODES = ("redistill", "subselect")
REVISIT_MODES = ("warm-start", "merge")
"""A class already in memory that arrives again: ``warm-start`` distils the new data only, starting
from the stored units; ``merge`` distils the stored units together with the new data (online streams,
where each mini-experience brings a few images of a class seen before)."""


@dataclass(frozen=True)
class ClassMemory:
    """What the memory stores for one class: ``images [n, C, H, W]`` and ``labels``.

    ``labels`` is ``int64 [n]`` (hard) or ``float32 [n, num_classes]`` (soft, over global class ids).
    """

    images: Tensor
    labels: Tensor

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def stored_floats(self) -> int:
        """Image floats plus soft-label floats (hard labels are integers)."""
        soft = self.labels.numel() if self.labels.is_floating_point() else 0
        return int(self.images.numel()) + int(soft)


def images_per_class(mem_size: int, n_classes: int, image_floats: int, label_floats: int = 0) -> int:
    """Largest equal number of units per class such that ``n_classes`` classes fit in the budget.

    Each unit costs ``image_floats + label_floats``; the budget is ``mem_size * image_floats``.
    """
    if n_classes < 1:
        raise ConfigError("the memory needs at least one class to size its budget")
    per_class = (mem_size * image_floats) // (n_classes * (image_floats + label_floats))
    if per_class < 1:
        raise ConfigError(
            f"mem_size {mem_size} cannot hold one image per class for {n_classes} classes; raise --mem-size"
        )
    return int(per_class)


def local_benchmark(images: Tensor, labels: Tensor, classes: list[int], *, name: str) -> Benchmark:
    """A ddapps :class:`Benchmark` over ``classes`` (relabelled ``0..k-1`` in that order).

    ``images`` are already normalised (they come from the continual stream), so the benchmark
    records identity normalisation; ``name`` chooses the DSA strategy (no flips for digits).
    """
    remap = torch.full((int(max(classes)) + 1,), -1, dtype=torch.int64)
    remap[torch.tensor(classes)] = torch.arange(len(classes))
    keep = torch.isin(labels, torch.tensor(classes))
    x, y = images[keep].float().contiguous(), remap[labels[keep]]
    k, channels = len(classes), int(x.shape[1])
    train = Split(x, y, k)
    return Benchmark(
        name=name,
        train=train,
        test=Split(x[:0], y[:0], k),
        val=None,
        num_classes=k,
        class_names=tuple(str(c) for c in classes),
        channels=channels,
        image_size=(int(x.shape[2]), int(x.shape[3])),
        mean=(0.0,) * channels,
        std=(1.0,) * channels,
        source="continual memory",
        stats_source="none",
    )


def distill_classes(
    images: Tensor,
    labels: Tensor,
    classes: list[int],
    ipc: int,
    *,
    method: str,
    overrides: Mapping[str, Any],
    generator: torch.Generator,
    dataset_name: str,
    label_mode: str,
    num_classes: int | None,
    init: Mapping[int, ClassMemory] | None = None,
    device: str | torch.device = "cpu",
) -> dict[int, ClassMemory]:
    """Distil ``classes`` of ``(images, labels)`` into at most ``ipc`` units per class.

    ``ipc`` is capped by the smallest class. ``init`` (per global class) warm-starts the method
    (``Distiller.distill(init=...)``). Returns one :class:`ClassMemory` per class, labels in
    ``label_mode``.
    """
    real = local_benchmark(images, labels, classes, name=dataset_name)
    ipc = min(ipc, int(real.train.class_counts().min()))
    warm = _init_synset(init, classes, real, ipc) if init else None
    distiller = create_distiller(method, dict(overrides), device=device)
    synset = distiller.distill(real, ipc, init=warm, generator=generator)
    return split_synset(synset, classes, label_mode=label_mode, num_classes=num_classes)


def merge_classes(
    images: Tensor,
    labels: Tensor,
    classes: list[int],
    ipc: int,
    memory: Mapping[int, ClassMemory],
    *,
    method: str,
    overrides: Mapping[str, Any],
    generator: torch.Generator,
    dataset_name: str,
    label_mode: str,
    num_classes: int | None,
    device: str | torch.device = "cpu",
) -> dict[int, ClassMemory]:
    """Distil each class of ``classes`` from its stored units plus its new images, one class at a time.

    A class gets ``min(ipc, stored + new)`` units (a class seen in few images keeps them all until the
    budget is full), warm-started from its stored units. One class per call, so a class with few
    images does not cap the others (``distill_classes`` caps ``ipc`` by the smallest class).
    """
    out: dict[int, ClassMemory] = {}
    for c in classes:
        new = images[labels == c]
        stored = memory.get(c)
        data = new if stored is None else torch.cat([stored.images.to(new.dtype), new])
        out.update(
            distill_classes(
                data, torch.full((int(data.shape[0]),), c, dtype=torch.int64), [c], ipc, method=method,
                overrides=overrides, generator=generator, dataset_name=dataset_name, label_mode=label_mode,
                num_classes=num_classes, init={c: stored} if stored is not None else None, device=device,
            )
        )  # fmt: skip
    return out


def split_synset(
    synset: SyntheticSet, classes: list[int], *, label_mode: str, num_classes: int | None
) -> dict[int, ClassMemory]:
    """Per-class memories from a set distilled over local classes ``0..k-1`` = ``classes``."""
    x, y = synset.training_data()
    hard = y.argmax(dim=1) if y.is_floating_point() else y
    out: dict[int, ClassMemory] = {}
    for local, c in enumerate(classes):
        mask = hard == local
        out[c] = ClassMemory(
            x[mask].detach().float().contiguous(), _labels(y[mask], classes, c, label_mode, num_classes)
        )
    return out


def _labels(y: Tensor, classes: list[int], c: int, mode: str, num_classes: int | None) -> Tensor:
    n = int(y.shape[0])
    if mode == "hard":
        return torch.full((n,), c, dtype=torch.int64)
    if num_classes is None:
        raise ConfigError("soft labels need num_classes (the width of the label vectors)")
    soft = torch.zeros(n, num_classes)
    if y.is_floating_point():  # the method's soft labels over local classes -> global columns
        soft[:, torch.tensor(classes)] = y.float()
    else:  # a hard-label method: one-hot soft labels (honestly counted)
        soft[:, c] = 1.0
    return soft


def _init_synset(init: Mapping[int, ClassMemory], classes: list[int], real: Benchmark, ipc: int) -> SyntheticSet:
    xs, ys = [], []
    for local, c in enumerate(classes):
        if c in init:
            mem = init[c]
            xs.append(mem.images[:ipc])
            ys.append(torch.full((min(ipc, len(mem)),), local, dtype=torch.int64))
    images = torch.cat(xs) if xs else torch.empty(0, real.channels, *real.image_size)
    labels = torch.cat(ys) if ys else torch.empty(0, dtype=torch.int64)
    return SyntheticSet(images=images, labels=labels, num_classes=real.num_classes, meta={"ipc": ipc})


def shrink(
    memory: Mapping[int, ClassMemory],
    ipc: int,
    *,
    mode: str,
    method: str,
    overrides: Mapping[str, Any],
    generator: torch.Generator,
    dataset_name: str,
    device: str | torch.device = "cpu",
) -> dict[int, ClassMemory]:
    """Bring every class above ``ipc`` units down to ``ipc``.

    ``subselect`` keeps a random subset drawn with ``generator``. ``redistill`` runs the same
    method again with the class's *stored* units as its data (the learner no longer has the old
    real images), warm-started from that random subset; labels of the subset are kept.
    """
    if mode not in SHRINK_MODES:
        raise ConfigError(f"unknown shrink mode {mode!r}; choose one of: {', '.join(SHRINK_MODES)}")
    out = dict(memory)
    over = [c for c, mem in memory.items() if len(mem) > ipc]
    if not over:
        return out
    subsets = {}
    for c in over:
        pick = torch.randperm(len(memory[c]), generator=generator)[:ipc].sort().values
        subsets[c] = ClassMemory(memory[c].images[pick], memory[c].labels[pick])
    if mode == "subselect":
        out.update(subsets)
        return out
    images = torch.cat([memory[c].images for c in over])
    labels = torch.cat([torch.full((len(memory[c]),), c, dtype=torch.int64) for c in over])
    real = local_benchmark(images, labels, over, name=dataset_name)
    distiller = create_distiller(method, dict(overrides), device=device)
    synset = distiller.distill(real, ipc, init=_init_synset(subsets, over, real, ipc), generator=generator)
    redone = split_synset(synset, over, label_mode="hard", num_classes=None)
    for c in over:
        out[c] = ClassMemory(redone[c].images, subsets[c].labels[: len(redone[c])])
    return out


def check_modes(label_mode: str, shrink_mode: str, revisit: str = "warm-start") -> None:
    """Validate the label, shrink and revisit modes (one-line :class:`ConfigError`)."""
    if revisit not in REVISIT_MODES:
        raise ConfigError(f"unknown revisit mode {revisit!r}; choose one of: {', '.join(REVISIT_MODES)}")
    if label_mode not in LABEL_MODES:
        raise ConfigError(f"unknown label mode {label_mode!r}; choose one of: {', '.join(LABEL_MODES)}")
    if shrink_mode not in SHRINK_MODES:
        raise ConfigError(f"unknown shrink mode {shrink_mode!r}; choose one of: {', '.join(SHRINK_MODES)}")
