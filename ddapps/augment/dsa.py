"""Differentiable Siamese Augmentation: strategies, sampling and applying.

Zhao & Bilen, "Dataset Condensation with Differentiable Siamese Augmentation", ICML 2021
(arXiv:2102.08259). The matching objective (their Eq. 5) is

    min_S  D( grad L(A_w(T); theta),  grad L(A_w(S); theta) )

with the *same* random transform ``A_w`` applied to the real batch ``T`` and the synthetic
batch ``S``. Here that is explicit: ``T_aug, S_aug = dsa.siamese(T, S, generator=g)``, i.e.
``p = dsa.sample(max(len(T), len(S)), generator=g, shared=True)`` applied to both. ``shared=True`` draws one value
per operation for the whole batch, as the reference code does in its siamese mode (it reseeds the
global RNG from the clock and copies the first image's transform to the batch); this module draws
only from the ``torch.Generator`` it is handed and never touches the global RNG. The matching
methods (DC/DSA, DM, IDM, DP-DM, FedDM) use the shared draw; training-time augmentation
(``dsa(x, generator=g)``: evaluation, the inner loops, MTT's student steps) draws per image.

Modes:
    ``'S'`` (the paper's default): each draw picks ONE operation of the strategy uniformly at
    random (``color`` counts as one operation: brightness, saturation and contrast together) and
    applies it.
    ``'M'``: every operation of the strategy, in the strategy's order.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from ddapps.augment.ops import OPS
from ddapps.augment.params import AugParams, DSAParams
from ddapps.errors import ConfigError

#: Strategy of the paper for CIFAR-10/100 and FashionMNIST.
FULL_STRATEGY = "color_crop_cutout_flip_scale_rotate"
#: Strategy of the paper for digits (MNIST, SVHN): no flip.
DIGITS_STRATEGY = "color_crop_cutout_scale_rotate"
MODES = ("S", "M")

_DIGITS = frozenset({"mnist", "svhn", "digits"})


def default_strategy(dataset_name: str) -> str:
    """The paper's strategy for a dataset: no ``flip`` for digits (mnist, svhn, digits)."""
    return DIGITS_STRATEGY if str(dataset_name).strip().lower() in _DIGITS else FULL_STRATEGY


def parse_strategy(strategy: str | Sequence[str]) -> tuple[str, ...]:
    """Operation names of an underscore-joined strategy, in order.

    ``'none'``, ``''`` (or an empty sequence) is the identity and gives ``()``. An unknown or
    repeated operation raises :class:`ConfigError`.
    """
    if isinstance(strategy, str):
        s = strategy.strip().lower()
        names: list[str] = [] if s in ("", "none") else s.split("_")
    else:
        names = [str(n).strip().lower() for n in strategy]
    for name in names:
        if name not in OPS:
            raise ConfigError(
                f"unknown DSA operation {name!r} in strategy {strategy!r}; "
                f"choose from: {', '.join(OPS.names())} (or 'none')"
            )
    if len(set(names)) != len(names):
        raise ConfigError(f"DSA strategy {strategy!r} names an operation twice")
    return tuple(names)


def _check_images(x: Tensor) -> None:
    if not isinstance(x, Tensor) or x.ndim != 4 or not x.is_floating_point():
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ConfigError(f"DSA expects a float tensor [N, C, H, W], got {shape}")


class DSA:
    """Differentiable Siamese Augmentation (Zhao & Bilen, ICML 2021).

    Args:
        strategy: underscore-joined operation names (see :func:`parse_strategy`), e.g.
            ``'color_crop_cutout_flip_scale_rotate'``; ``'none'`` is the identity.
        params: ranges of the random values (the paper's defaults).
        mode: ``'S'`` applies one uniformly chosen operation per draw, ``'M'`` all of them.

    Example (one transform shared by a real and a synthetic batch)::

        g = torch.Generator().manual_seed(0)
        dsa = DSA("color_crop_cutout_flip_scale_rotate")
        real_aug, syn_aug = dsa.siamese(real, syn, generator=g)
    """

    def __init__(
        self, strategy: str | Sequence[str] = FULL_STRATEGY, params: DSAParams | None = None, mode: str = "S"
    ) -> None:
        self.ops = parse_strategy(strategy)
        self.params = DSAParams() if params is None else params
        if not isinstance(self.params, DSAParams):
            raise ConfigError(f"params must be a DSAParams, got {type(self.params).__name__}")
        mode = str(mode).upper()
        if mode not in MODES:
            raise ConfigError(f"unknown DSA mode {mode!r}; choose from: {', '.join(MODES)}")
        self.mode = mode

    @property
    def strategy(self) -> str:
        """The canonical strategy string (``'none'`` for the identity)."""
        return "_".join(self.ops) or "none"

    def sample(
        self, n: int, *, generator: torch.Generator, device: torch.device | str | None = None, shared: bool = False
    ) -> AugParams:
        """Draw one transform for ``n`` images, using only ``generator``.

        ``shared=True`` is the paper's siamese draw (Eq. 5, and its code's ``Siamese`` flag): ONE
        random value per operation, the same for all ``n`` images, so a real class batch and the
        synthetic images it is matched with see exactly the same transform ``A_w``. With
        ``shared=False`` every image gets its own values (training-time augmentation).

        Values are drawn on ``generator.device`` (so the same generator state gives the same
        values) and moved to ``device`` when given; :meth:`apply` also moves them to the
        images' device, so a CPU generator serves images on any device.
        """
        if not isinstance(generator, torch.Generator):
            raise ConfigError("DSA needs an explicit torch.Generator (generator=...)")
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ConfigError(f"n must be an int >= 0, got {n!r}")
        if not self.ops:
            chosen: tuple[str, ...] = ()
        elif self.mode == "S":
            k = int(torch.randint(len(self.ops), (1,), generator=generator, device=generator.device).item())
            chosen = (self.ops[k],)
        else:
            chosen = self.ops
        draws = min(n, 1) if shared else n
        values = {op: OPS.get(op).sample(draws, self.params, generator) for op in chosen}
        if shared and n > 1:
            values = {op: {k: v.expand(n, *v.shape[1:]) for k, v in vals.items()} for op, vals in values.items()}
        p = AugParams(chosen, values, n, self.params)
        return p if device is None else p.to(device)

    def siamese(
        self, *batches: Tensor, generator: torch.Generator, device: torch.device | str | None = None
    ) -> tuple[Tensor, ...]:
        """The batches under ONE shared transform (``sample(..., shared=True)``, then :meth:`apply`
        to each): the siamese draw of the matching methods (real class batch, synthetic images)."""
        p = self.siamese_draw(*(b.shape[0] for b in batches), generator=generator, device=device)
        # an empty batch (a Poisson sample that drew nobody) passes through: there is nothing to transform
        return tuple(self.apply(b, p) if b.shape[0] else b for b in batches)

    def siamese_draw(
        self, *sizes: int, generator: torch.Generator, device: torch.device | str | None = None
    ) -> AugParams:
        """The shared transform :meth:`siamese` applies to batches of ``sizes`` rows, drawn without
        applying it (a rank that skips a class still consumes its draw, :mod:`ddapps.distributed`)."""
        return self.sample(max(sizes), generator=generator, device=device, shared=True)

    def apply(self, x: Tensor, p: AugParams) -> Tensor:
        """Apply the transform ``p`` to ``x`` ([N, C, H, W], float, N <= p.n); differentiable in x.

        Uses the first ``N`` rows of ``p``'s per-image values, so the same ``p`` gives the same
        transform of image ``i`` in any batch: the siamese property. Deterministic on CPU; on
        CUDA the backward of ``grid_sample`` (scale, rotate) accumulates atomically.
        """
        _check_images(x)
        if not isinstance(p, AugParams):
            raise ConfigError(f"p must be AugParams from DSA.sample, got {type(p).__name__}")
        n = x.shape[0]
        if n > p.n:
            raise ConfigError(f"AugParams were sampled for {p.n} images; got a batch of {n}")
        for op in p.ops:
            rows = {k: v[:n] for k, v in p.values[op].items()}
            x = OPS.get(op).apply(x, rows, p.params)
        return x

    def __call__(self, x: Tensor, *, generator: torch.Generator) -> Tensor:
        """``apply(x, sample(len(x), generator=generator))``."""
        _check_images(x)
        return self.apply(x, self.sample(x.shape[0], generator=generator))

    def __repr__(self) -> str:
        return f"DSA(strategy={self.strategy!r}, params={self.params!r}, mode={self.mode!r})"
