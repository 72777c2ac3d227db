"""Pure operations on clients' synthetic sets: class relabelling and the server's union.

A label-skewed client distils only the classes it holds (relabelled ``0..k-1``, see
:func:`ddapps.federated.task.local_benchmark`); :func:`to_global` maps its set back to the
dataset's ``K`` classes before it is sent, :func:`to_local` maps a warm start the other way, and
:func:`union` concatenates what the server received.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from ddapps.errors import ConfigError
from ddapps.synthetic import SyntheticSet


def to_global(synset: SyntheticSet, classes: Sequence[int], num_classes: int, **meta: Any) -> SyntheticSet:
    """Relabel local class ``j`` as global ``classes[j]``; metadata gains ``classes`` and ``meta``.

    Soft labels ``[N, k]`` become ``[N, K]``: the local columns go to their global positions and
    the classes the client does not hold get each row's minimum (the least likely value).
    """
    images, labels = synset.training_data()
    index = torch.as_tensor(list(classes), dtype=torch.int64)
    if labels.is_floating_point():
        wide = labels.min(dim=1, keepdim=True).values.expand(labels.shape[0], num_classes).clone()
        wide[:, index] = labels
        labels = wide
    else:
        labels = index[labels]
    info = dict(synset.meta) | {"classes": [int(c) for c in classes]} | meta
    return SyntheticSet(images=images.detach().clone(), labels=labels, num_classes=num_classes, lr=synset.lr, meta=info)


def to_local(synset: SyntheticSet, classes: Sequence[int]) -> SyntheticSet | None:
    """The images of ``classes`` relabelled ``0..k-1`` (a warm start), or None if unusable."""
    if synset.images is None or synset.soft_labels or not classes:
        return None
    lookup = torch.full((synset.num_classes,), -1, dtype=torch.int64)
    lookup[torch.as_tensor(list(classes), dtype=torch.int64)] = torch.arange(len(classes))
    local = lookup[synset.labels]
    keep = local >= 0
    if not bool(keep.any()):
        return None
    # provenance travels with it: a DP method accepts only a warm start that is a private release
    meta: dict[str, Any] = {k: synset.meta[k] for k in ("method", "ipc", "privacy") if k in synset.meta}
    return SyntheticSet(images=synset.images[keep].clone(), labels=local[keep], num_classes=len(classes), meta=meta)


def empty_set(channels: int, image_size: tuple[int, int], num_classes: int, **meta: Any) -> SyntheticSet:
    """A set with no images (a client that holds too few images of every class)."""
    return SyntheticSet(
        images=torch.zeros(0, channels, *image_size), labels=torch.zeros(0, dtype=torch.int64),
        num_classes=num_classes, meta=dict(meta),
    )  # fmt: skip


def union(synsets: Sequence[SyntheticSet]) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenated ``(images, labels)`` of the sets (all hard or all soft labels, one K)."""
    parts = [s.training_data() for s in synsets]
    parts = [(x, y) for x, y in parts if x.shape[0] > 0]
    if not parts:
        raise ConfigError("no client sent any synthetic images: nothing to train the global model on")
    if len({y.is_floating_point() for _, y in parts}) > 1 or len({s.num_classes for s in synsets}) > 1:
        raise ConfigError("clients sent synthetic sets of different label kinds or class counts")
    return torch.cat([x for x, _ in parts]), torch.cat([y for _, y in parts])
