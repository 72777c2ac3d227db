"""One split of a benchmark (train, val or test) and its per-class index."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ddapps.errors import ConfigError


@dataclass(eq=False)
class Split:
    """Normalized images ``[N, C, H, W]`` (float32) with their labels ``[N]`` (int64).

    ``num_classes`` defaults to ``labels.max() + 1``; a :class:`Benchmark` always passes it, so a
    split that lacks a class still reports a zero count for it.
    """

    images: torch.Tensor
    labels: torch.Tensor
    num_classes: int = 0
    # INVARIANT: once built, _index[c] holds the positions of class c in ascending order.
    _index: list[torch.Tensor] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.images.dim() != 4:
            raise ConfigError(f"Split images must be [N, C, H, W], got shape {tuple(self.images.shape)}")
        if self.labels.dim() != 1 or self.labels.shape[0] != self.images.shape[0]:
            raise ConfigError(
                f"Split labels must be [N] with N={self.images.shape[0]}, got shape {tuple(self.labels.shape)}"
            )
        self.labels = self.labels.to(torch.int64)
        if self.num_classes <= 0:
            self.num_classes = int(self.labels.max()) + 1 if len(self.labels) else 0

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __repr__(self) -> str:
        return f"Split(n={len(self)}, shape={tuple(self.images.shape[1:])}, num_classes={self.num_classes})"

    def _class_index(self) -> list[torch.Tensor]:
        if self._index is None:
            order = torch.argsort(self.labels, stable=True)
            counts = torch.bincount(self.labels, minlength=self.num_classes)
            self._index = list(torch.split(order, counts.tolist()))
        return self._index

    def _check_class(self, c: int) -> int:
        if not 0 <= int(c) < self.num_classes:
            raise ConfigError(f"class {c} is out of range: this split has classes 0..{self.num_classes - 1}")
        return int(c)

    def class_indices(self, c: int) -> torch.Tensor:
        """Positions (LongTensor, ascending) of the images of class ``c``."""
        return self._class_index()[self._check_class(c)]

    def class_counts(self) -> torch.Tensor:
        """Number of images per class, LongTensor ``[num_classes]``."""
        return torch.tensor([len(ix) for ix in self._class_index()], dtype=torch.int64)

    def sample_class(self, c: int, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` distinct images of class ``c`` drawn with ``generator`` (the whole class if fewer).

        Uses ``torch.randperm(count, generator=generator)``, so the draw depends only on the
        generator's state, never on the global RNG.
        """
        ix = self.class_indices(c)
        if n < 0:
            raise ConfigError(f"cannot sample a negative number of images ({n})")
        perm = torch.randperm(len(ix), generator=generator)[:n]
        return self.images[ix[perm]]

    def first_of_class(self, c: int, n: int) -> torch.Tensor:
        """The first ``n`` images of class ``c`` in dataset order (deterministic initialization)."""
        return self.images[self.class_indices(c)[:n]]

    def subset(self, indices: torch.Tensor | list[int]) -> Split:
        """A new split holding the rows ``indices`` (copies; same ``num_classes``)."""
        ix = torch.as_tensor(indices, dtype=torch.int64)
        return Split(self.images[ix], self.labels[ix], self.num_classes)
