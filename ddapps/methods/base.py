"""The one interface every distillation method implements, and the registry that names them.

``Distiller.distill(real, ipc, *, init=None, generator=None, callbacks=(), checkpoint=None)``
returns a :class:`~ddapps.synthetic.SyntheticSet`. Each method has a frozen dataclass config whose
defaults are its paper's; :func:`create_distiller` builds one from a name and a dict of overrides.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Mapping, Sequence

import torch

import ddapps
from ddapps.data import Benchmark
from ddapps.errors import ConfigError
from ddapps.registry import Registry
from ddapps.synthetic import EvalProtocol, SyntheticSet, warm_start_record
from ddapps.utils.seeding import make_generator
from ddapps.validation import check_choice, check_count


@dataclass(frozen=True)
class DistillerConfig:
    """Base of every method's config. Subclasses add fields with their paper's defaults."""

    def __post_init__(self) -> None:
        """Validate the fields; subclasses extend it and call ``super().__post_init__()``."""


@dataclass(frozen=True)
class IterativeConfig(DistillerConfig):
    """Base of the configs of methods that optimise the set for ``iterations`` steps.

    ``init`` says where the optimisation starts (:data:`ddapps.methods.init.INIT_MODES`). Subclasses
    redeclare the defaults their papers use and validate only their own fields.
    """

    iterations: int = 1000
    init: str = "real"

    def __post_init__(self) -> None:
        from ddapps.methods.init import INIT_MODES

        super().__post_init__()
        check_count("iterations", self.iterations)
        check_choice("init", self.init, INIT_MODES)


@dataclass(frozen=True)
class IterationEvent:
    """What a callback sees after each optimisation step of an iterative method."""

    iteration: int
    total: int
    loss: float
    seconds: float


Callback = Callable[[IterationEvent], None]


@dataclass(frozen=True)
class CheckpointSpec:
    """Where and how often an iterative method checkpoints (``resume`` continues from ``path``)."""

    path: str
    every: int = 50
    resume: bool = False


@dataclass(frozen=True)
class DistillRequest:
    """One validated call of :meth:`Distiller.distill`, as a method's ``_distill`` receives it."""

    real: Benchmark
    ipc: int
    generator: torch.Generator
    init: SyntheticSet | None = None
    callbacks: Sequence[Callback] = ()
    checkpoint: CheckpointSpec | None = None


METHODS: Registry[type["Distiller"]] = Registry("method")


class Distiller(ABC):
    """Base class: turns a real :class:`Benchmark` into a :class:`SyntheticSet` of ``ipc`` per class."""

    name: ClassVar[str]
    config_class: ClassVar[type[DistillerConfig]] = DistillerConfig
    smoke_config: ClassVar[dict[str, Any]] = {}
    """Overrides for a seconds-long smoke run on tiny data (conformance tests, ``--budget smoke``);
    iterative methods must keep at least 4 iterations here."""
    differentially_private: ClassVar[bool] = False
    """True for methods with a privacy guarantee: ``bench core --methods all`` leaves them out
    (their trade-off is measured by ``ddapps privacy audit``)."""

    # ------------------------------------------------------------ capabilities
    @classmethod
    def options(cls) -> frozenset[str]:
        """Names of the options this method's config takes."""
        return frozenset(f.name for f in dataclasses.fields(cls.config_class))

    @classmethod
    def accepts(cls, option: str) -> bool:
        """True when this method's config has an option ``option`` (e.g. ``"net"``)."""
        return option in cls.options()

    @classmethod
    def ipc_defaults(cls, ipc: int) -> dict[str, Any]:
        """Config values the method's paper ties to the IPC (e.g. DC's loops); a matcher nested in
        another method (a factorized set) takes them for the *stored* IPC. None by default."""
        return {}

    def augmentation_strategy(self) -> str:
        """The differentiable augmentation (DSA) strategy this method trains with, or ``"none"``."""
        return "none"

    @classmethod
    def is_iterative(cls) -> bool:
        """True for methods that optimise for ``iterations`` steps (their config is an IterativeConfig)."""
        return issubclass(cls.config_class, IterativeConfig)

    def __init__(
        self,
        config: DistillerConfig | Mapping[str, Any] | None = None,
        *,
        device: str | torch.device = "cpu",
        progress: bool = False,
    ) -> None:
        self.config = make_config(self.config_class, config)
        self.device = torch.device(device)
        self.progress = progress

    def distill(
        self,
        real: Benchmark,
        ipc: int,
        *,
        init: SyntheticSet | None = None,
        generator: torch.Generator | None = None,
        callbacks: Sequence[Callback] = (),
        checkpoint: CheckpointSpec | None = None,
    ) -> SyntheticSet:
        """Distil ``real.train`` into ``ipc`` images per class.

        Args:
            real: the real benchmark (only its training split is used).
            ipc: images per class; must not exceed the smallest class.
            init: warm start (e.g. the previous set of a continual learner or the global set of a
                federated round); classes it covers start from its images. Recorded in
                ``meta["warm_start"]``; DP methods accept only a private DP release.
            generator: the only source of randomness; defaults to ``make_generator(0)``.
            callbacks: called after each iteration of iterative methods.
            checkpoint: periodic atomic checkpoints and resume (iterative methods).
        """
        check_ipc(real, ipc)
        if init is not None:
            check_init(init, real, ipc)
        gen = generator if generator is not None else make_generator(0)
        synset = self._distill(DistillRequest(real, ipc, gen, init, tuple(callbacks), checkpoint))
        if init is not None:
            synset.meta["warm_start"] = warm_start_record(init)
        # No timing in the set: the same inputs give the same file, and under DP a run's duration
        # (it depends on the Poisson batch sizes) would be a side channel. Callers time the call.
        return synset

    @abstractmethod
    def _distill(self, request: DistillRequest) -> SyntheticSet:
        """Method-specific work on an already validated request."""

    def make_synset(
        self,
        real: Benchmark,
        ipc: int,
        images: torch.Tensor,
        *,
        eval_protocol: EvalProtocol | None = None,
        **extra: Any,
    ) -> SyntheticSet:
        """Package class-sorted ``images`` (``ipc`` per class) with the standard metadata.

        ``eval_protocol`` defaults to hard labels under cross-entropy; ``extra`` goes into ``meta``.
        """
        labels = torch.arange(real.num_classes).repeat_interleave(ipc)
        meta: dict[str, Any] = {
            "method": self.name,
            "config": config_to_dict(self.config),
            "dataset": real.describe(),
            "ipc": ipc,
            "normalization": {"mean": list(real.mean), "std": list(real.std)},
            "ddapps_version": ddapps.__version__,
        }
        meta.update(extra)
        zca = None
        if real.zca is not None:
            state = real.zca.state_dict()
            zca = {"mean": state["mean"], "matrix": state["matrix"]}
        return SyntheticSet(
            images=images.detach().to("cpu", torch.float32).contiguous(),
            labels=labels,
            num_classes=real.num_classes,
            zca=zca,
            meta=meta,
            eval_protocol=eval_protocol or EvalProtocol(),
        )


def create_distiller(
    name: str,
    config: DistillerConfig | Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> Distiller:
    """Build the registered method ``name`` with ``config`` overrides (unknown keys are errors)."""
    return METHODS.get(name)(config, **kwargs)


def list_methods() -> list[str]:
    """Names of all registered methods."""
    return METHODS.names()


def benchmark_methods() -> list[str]:
    """What ``--methods all`` means for ``bench core``: every registered non-private method."""
    return [name for name in METHODS.names() if not METHODS.get(name).differentially_private]


def make_config(cls: type[DistillerConfig], config: DistillerConfig | Mapping[str, Any] | None) -> Any:
    """A ``cls`` instance from ``None`` (paper defaults), an instance, or a dict of overrides."""
    if config is None:
        return cls()
    if isinstance(config, cls):
        return config
    if isinstance(config, DistillerConfig):
        raise ConfigError(f"expected a {cls.__name__}, got a {type(config).__name__}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(config) - set(known))
    if unknown:
        raise ConfigError(
            f"unknown option(s) {', '.join(unknown)} for {cls.__name__}; known: {', '.join(sorted(known))}"
        )
    values = {k: v for k, v in config.items() if v is not None}
    try:
        return cls(**values)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"invalid {cls.__name__}: {err}") from None


def config_to_dict(config: DistillerConfig) -> dict[str, Any]:
    """The config as a JSON-able dict."""
    return dataclasses.asdict(config)


def check_ipc(real: Benchmark, ipc: int) -> None:
    """IPC must be a positive int no larger than the smallest class of the training split."""
    if isinstance(ipc, bool) or not isinstance(ipc, int) or ipc < 1:
        raise ConfigError(f"ipc must be a positive integer, got {ipc!r}")
    counts = real.train.class_counts()
    smallest = int(counts.min())
    if ipc > smallest:
        cls = int(counts.argmin())
        raise ConfigError(
            f"ipc {ipc} is larger than the smallest class of {real.name} (class {cls} has {smallest} images)"
        )


def check_init(init: SyntheticSet, real: Benchmark, ipc: int) -> None:
    """A warm start must be plain images of the benchmark's shape, at most ``ipc`` per class."""
    if init.images is None:
        raise ConfigError("init must hold plain images (decode a factorized set first)")
    shape = (real.channels, *real.image_size)
    if tuple(init.images.shape[1:]) != shape:
        raise ConfigError(f"init images have shape {list(init.images.shape[1:])}, expected {list(shape)}")
    if init.num_classes != real.num_classes:
        raise ConfigError(f"init has {init.num_classes} classes, the data has {real.num_classes}")
    counts = torch.bincount(init.hard_labels(), minlength=real.num_classes)
    if int(counts.max()) > ipc:
        raise ConfigError(f"init holds {int(counts.max())} images of one class, more than ipc={ipc}")
