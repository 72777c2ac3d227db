"""Factorized distillation: learn a decoder's stored factors through an existing matching loss.

A factorized method stores parameters (``factors``) that a registered decoder of
:mod:`ddapps.factorization` turns into training images. Learning keeps the *matching* method's
objective and changes only what is learned: with ``D`` the decoder and ``L_m`` the loss of the
matcher ``m`` (DM, DC, DSA or MTT) on a class-sorted image set, the factors ``Z`` minimise

    L(Z) = L_m( D(Z) ).

The matcher is an ordinary registered method (``create_distiller(matcher, options)``) driven
through its :class:`~ddapps.methods.iterative.IterativeDistiller` hooks: its ``setup`` and
``loss`` see the decoded images, per class, through :class:`DecodedParams`, a read-only view of
the learnable tensors whose ``"images"`` entry is decoded from the current factors on every read
(gradient matching reads it once per outer step, after each factor update). Extra learnables of
the matcher (MTT's learned learning rate) are learned beside the factors.

Storage honesty: at IPC ``k`` a set may store at most ``k * C * H * W`` floats per class, i.e.
``K * k * C * H * W`` in all, shared weights included. Each method's :meth:`layout` picks the
number of stored units per class (and its own sizes) from the IPC to fit that budget;
:meth:`FactorizedDistiller.init_params` refuses a layout that does not fit, and the result's
``meta`` reports ``stored_floats`` and ``budget_floats``.
"""

from __future__ import annotations

import dataclasses
import math
from abc import abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Iterator, Mapping, cast

import torch
from torch import Tensor

import ddapps.methods.dm
import ddapps.methods.trajectory.mtt  # noqa: F401
from ddapps.data import Benchmark
from ddapps.errors import ConfigError
from ddapps.factorization import DECODERS, stored_floats
from ddapps.methods.base import METHODS, IterativeConfig, create_distiller, make_config
from ddapps.methods.init import _warm_images
from ddapps.methods.iterative import IterativeDistiller
from ddapps.synthetic import SyntheticSet
from ddapps.utils.seeding import draw_seed, make_generator
from ddapps.validation import check_choice, check_number


@dataclass(frozen=True)
class Layout:
    """How a factorized set spends its budget: ``units`` stored per class, each decoding to
    ``per_unit`` training images; ``config`` is the decoder's (saved as ``factorization_config``)."""

    units: int
    per_unit: int
    config: dict[str, Any]


@dataclass(frozen=True)
class FactorizedConfig(IterativeConfig):
    """Options shared by factorized methods.

    ``lr_factors`` ``None`` uses the matcher's ``lr_img``; ``net``/``net_options`` are passed to
    the matcher unless ``matcher_options`` sets them; ``matcher_options`` are the matcher's own
    config overrides (its ``iterations`` is ignored: this config's counts).
    """

    MATCHERS: ClassVar[tuple[str, ...]] = ("dm", "dc", "dsa", "mtt")

    matcher: str = "dm"
    matcher_options: dict[str, Any] = field(default_factory=dict)
    lr_factors: float | None = None
    momentum: float = 0.5
    net: str = "convnet"
    net_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.lr_factors is not None:
            check_number("lr_factors", self.lr_factors)
        check_number("momentum", self.momentum, low_inclusive=True)
        check_choice("matcher", self.matcher, self.MATCHERS)
        if not isinstance(self.matcher_options, dict):
            raise ConfigError("matcher_options must be a JSON object")
        make_config(METHODS.get(self.matcher).config_class, self.matcher_overrides())

    def matcher_overrides(self) -> dict[str, Any]:
        """The matcher's config overrides: ``net``/``net_options`` from here, then ``matcher_options``."""
        return {"net": self.net, "net_options": self.net_options} | dict(self.matcher_options)


class DecodedParams(Mapping[str, Tensor]):
    """Read-only view of the learnable tensors in which ``"images"`` are the decoded factors.

    Decoding happens on every ``view["images"]``, so a matcher that updates the factors between
    two reads sees the new images. The other keys are the matcher's own learnables.
    """

    def __init__(self, params: Mapping[str, Tensor], extras: tuple[str, ...], decode: Callable[[], Tensor]):
        self._params, self._extras, self._decode = params, extras, decode

    def __getitem__(self, key: str) -> Tensor:
        if key == "images":
            return self._decode()
        if key in self._extras:
            return self._params[key]
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(("images", *self._extras))

    def __len__(self) -> int:
        return 1 + len(self._extras)


class FactorizedDistiller(IterativeDistiller):
    """Base of factorized methods: stored factors, a decoder, and a matcher's loss on the decoding."""

    factorization: ClassVar[str]
    config: FactorizedConfig

    # ---------------------------------------------------------------- what a method defines
    @abstractmethod
    def layout(self, real: Benchmark, ipc: int) -> Layout:
        """Units per class and decoder config that fit ``ipc * C * H * W`` floats per class."""

    @abstractmethod
    def encode(self, images: Tensor, layout: Layout) -> dict[str, Tensor]:
        """Per-unit factors that represent full-size ``images [n, C, H, W]`` (initialisation)."""

    def shared_factors(self, layout: Layout, rows: int, generator: torch.Generator) -> dict[str, Tensor]:
        """Factors shared by all units (packed ``[rows, cols]``); none by default."""
        return {}

    def initial_units(self, real: Benchmark, c: int, n: int, generator: torch.Generator) -> Tensor:
        """``n`` full-size images of class ``c`` to :meth:`encode` (``init``: real or noise)."""
        if self.config.init == "noise":
            return torch.randn((n, real.channels, *real.image_size), generator=generator)
        return sample_real(real, c, n, generator)

    def factor_lr(self, key: str) -> float:
        """Learning rate of factor ``key``: ``lr_factors``, else the matcher's ``lr_img``."""
        if self.config.lr_factors is not None:
            return self.config.lr_factors
        return float(self.matcher.config.lr_img)

    def make_matcher(self, real: Benchmark, ipc: int) -> IterativeDistiller:
        """The matcher whose loss is applied to the decoded images."""
        # the paper's IPC-tied values (DC's loops) for the *stored* IPC
        options = METHODS.get(self.config.matcher).ipc_defaults(ipc) | self.config.matcher_overrides()
        matcher = create_distiller(self.config.matcher, options, device=self.device)
        assert isinstance(matcher, IterativeDistiller)
        return matcher

    # ---------------------------------------------------------------- IterativeDistiller hooks
    def init_params(
        self, real: Benchmark, ipc: int, init: SyntheticSet | None, generator: torch.Generator
    ) -> dict[str, Tensor]:
        layout = self.layout(real, ipc)
        if layout.units < 1:
            raise ConfigError(f"{self.name}: no stored unit fits the budget of ipc={ipc}")
        self.unit_layout = layout
        self.unit_labels = torch.arange(real.num_classes).repeat_interleave(layout.units)
        blocks = []
        for c in range(real.num_classes):
            warm = _warm_images(init, c)[: layout.units]
            fresh = self.initial_units(real, c, layout.units - warm.shape[0], generator)
            units = torch.cat([warm.to(fresh.dtype), fresh]) if warm.numel() else fresh
            blocks.append(self.encode(units.float(), layout))
        factors = {key: torch.cat([b[key] for b in blocks]) for key in blocks[0]}
        factors |= self.shared_factors(layout, self.unit_labels.numel(), generator)
        used, budget = stored_floats(None, factors, self.unit_labels), budget_floats(real, ipc)
        if used > budget:
            raise ConfigError(f"{self.name}: layout stores {used} floats, over the budget of {budget} at ipc={ipc}")
        self.factor_keys = tuple(factors)
        self.matcher = self.make_matcher(real, ipc)
        extras = self.matcher.init_params(real, 1, None, make_generator(draw_seed(generator)))
        extras.pop("images")
        self.extra_keys = tuple(extras)
        params = {k: v.to(self.device).requires_grad_(True) for k, v in factors.items()}
        return params | {k: v.detach().to(self.device).requires_grad_(True) for k, v in extras.items()}

    def make_optimizer(self, params: dict[str, Tensor]) -> torch.optim.Optimizer:
        groups: list[dict[str, Any]] = [{"params": [params[k]], "lr": self.factor_lr(k)} for k in self.factor_keys]
        groups += [{"params": [params[k]], "lr": float(self.matcher.config.lr_lr)} for k in self.extra_keys]
        optimizer = torch.optim.SGD(groups, lr=self.factor_lr(self.factor_keys[0]), momentum=self.config.momentum)
        self.matcher.adopt_optimizer(optimizer)  # DC's outer-loop steps update the factors
        return optimizer

    def setup(self, real: Benchmark, ipc: int, generator: torch.Generator) -> None:
        self.matcher.setup(real, self.images_per_class(), generator)

    def loss(
        self, params: dict[str, Tensor], real: Benchmark, ipc: int, generator: torch.Generator, iteration: int
    ) -> Tensor:
        view = cast(dict[str, Tensor], self.view(params))  # a read-only Mapping; matchers only read it
        return self.matcher.loss(view, real, self.images_per_class(), generator, iteration)

    def after_step(self, params: dict[str, Tensor]) -> None:
        self.matcher.after_step(self.view(params))  # type: ignore[arg-type]

    def extra_state(self) -> dict[str, Tensor]:
        return self.matcher.extra_state()

    def load_extra_state(self, state: dict[str, Tensor]) -> None:
        self.matcher.load_extra_state(state)

    def finalize(self, params: dict[str, Tensor], real: Benchmark, ipc: int, **meta: Any) -> SyntheticSet:
        factors = {k: params[k].detach().to("cpu", torch.float32).contiguous() for k in self.factor_keys}
        used = stored_floats(None, factors, self.unit_labels)
        placeholder = torch.zeros(real.num_classes * ipc, real.channels, *real.image_size)
        synset = self.make_synset(
            real,
            ipc,
            placeholder,
            matcher=self.config.matcher,
            units_per_class=self.unit_layout.units,
            images_per_class=self.images_per_class(),
            stored_floats=used,
            budget_floats=budget_floats(real, ipc),
            dsa_strategy=self.matcher.augmentation_strategy(),
            **meta,
        )
        lr = params["lr"].detach().to("cpu", torch.float32).reshape(()) if "lr" in params else None
        return dataclasses.replace(
            synset,
            images=None,
            labels=self.unit_labels.clone(),
            factors=factors,
            factorization=self.factorization,
            factorization_config=dict(self.unit_layout.config),
            lr=lr,
        )

    # ---------------------------------------------------------------- helpers
    def images_per_class(self) -> int:
        """Decoded training images per class."""
        return self.unit_layout.units * self.unit_layout.per_unit

    def decode(self, params: Mapping[str, Tensor]) -> Tensor:
        """Class-sorted training images decoded from the factors in ``params``."""
        decoder = DECODERS.get(self.factorization)
        factors = {k: params[k] for k in self.factor_keys}
        return decoder(factors, self.unit_labels.to(self.device), self.unit_layout.config)[0]

    def view(self, params: Mapping[str, Tensor]) -> DecodedParams:
        """The matcher's view of ``params`` (see :class:`DecodedParams`)."""
        return DecodedParams(params, self.extra_keys, lambda: self.decode(params))


def budget_floats(real: Benchmark, ipc: int) -> int:
    """Floats a set of ``ipc`` images per class may store: ``K * ipc * C * H * W``."""
    return real.num_classes * ipc * real.channels * math.prod(real.image_size)


def sample_real(real: Benchmark, c: int, n: int, generator: torch.Generator) -> Tensor:
    """``n`` real images of class ``c``: distinct while the class lasts, then further passes."""
    count = real.train.class_indices(c).numel()
    draws = [real.train.sample_class(c, min(count, n - k), generator) for k in range(0, n, count)]
    return torch.cat(draws) if draws else torch.empty(0, real.channels, *real.image_size)
