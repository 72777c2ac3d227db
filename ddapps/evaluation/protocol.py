"""The standard evaluation protocol of dataset distillation, and its real-data counterparts.

Train ``n_eval`` freshly initialised networks on the set, test each on the benchmark's test split
and report mean ± std accuracy (Zhao et al., ICLR 2021; Zhao & Bilen, ICML 2021 / WACV 2023):
SGD lr 0.01 (or the set's learned lr), momentum 0.9, weight decay 5e-4, batch 256, lr x0.1 after
half the epochs; 300 epochs, or 1000 with DSA augmentation. Nothing is selected on the test set:
every run trains for the fixed budget and is tested once at its end. A
:class:`~ddapps.evaluation.regimes.LabelRegime` trains the same images under hard labels, fixed
soft labels or knowledge distillation from a teacher.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import torch
from torch import Tensor

from ddapps.augment import DSA, default_strategy
from ddapps.data import Benchmark
from ddapps.errors import ConfigError
from ddapps.evaluation.batched import accuracies_batched, can_batch, train_classifiers_batched
from ddapps.evaluation.regimes import LabelRegime
from ddapps.evaluation.training import TrainSettings, test_accuracy, train_classifier
from ddapps.nets import create_net
from ddapps.synthetic import SyntheticSet
from ddapps.utils.seeding import derive_seed, make_generator


@dataclass(frozen=True)
class EvalConfig:
    """Settings of the protocol. ``epochs=None`` means 1000 with DSA and 300 without."""

    net: str = "convnet"
    net_options: dict[str, Any] = field(default_factory=dict)
    n_eval: int = 5
    epochs: int | None = None
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 256
    dsa: bool = True
    dsa_strategy: str | None = None
    batched: bool | None = None
    """Train the ``n_eval`` networks together as one batched model (:mod:`ddapps.evaluation.batched`),
    or (``False``) one after another; ``None``: batched on an accelerator, one after another on a CPU,
    where a single network's convolutions already run near the cores' arithmetic peak and the batched
    model measured slower (``docs/performance.md``). Same seeds either way; values agree to float
    rounding."""

    def batches_on(self, device: torch.device | str) -> bool:
        """Whether networks train together on ``device`` (see ``batched``)."""
        return torch.device(device).type != "cpu" if self.batched is None else self.batched

    def __post_init__(self) -> None:
        if self.n_eval < 1:
            raise ConfigError(f"n_eval must be >= 1, got {self.n_eval}")

    def resolved_epochs(self) -> int:
        """Epochs actually trained."""
        if self.epochs is not None:
            return self.epochs
        return 1000 if self.dsa else 300


@dataclass
class EvalResult:
    """Accuracies (percent) of ``n_eval`` networks trained on one set and tested once."""

    net: str
    accuracies: list[float]
    seconds: float
    protocol: dict[str, Any]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.accuracies)

    @property
    def std(self) -> float:
        return statistics.stdev(self.accuracies) if len(self.accuracies) > 1 else 0.0  # sample std (ddof 1)

    def as_dict(self) -> dict[str, Any]:
        return {
            "net": self.net,
            "acc_mean": self.mean,
            "acc_std": self.std,
            "n_eval": len(self.accuracies),
            "accuracies": self.accuracies,
            "eval_seconds": self.seconds,
            "protocol": self.protocol,
        }


def evaluate_tensors(
    images: Tensor,
    labels: Tensor,
    benchmark: Benchmark,
    config: EvalConfig = EvalConfig(),
    *,
    seed: int = 0,
    lr: float | None = None,
    loss: str = "cross_entropy",
    device: torch.device | str = "cpu",
    progress: bool = False,
    regime: LabelRegime | None = None,
) -> EvalResult:
    """Train ``config.n_eval`` fresh nets on ``(images, labels)`` and test them on ``benchmark.test``.

    ``regime`` (default: the labels as given) may replace the labels by hard ones, a teacher's fixed
    soft labels, or the teacher run online on every augmented batch.
    """
    regime = regime or LabelRegime()
    labels, loss, temperature, relabel = regime.targets(images, labels, loss, list(benchmark.class_names), device)
    settings = TrainSettings(
        epochs=config.resolved_epochs(),
        lr=lr if lr is not None else config.lr,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
        batch_size=config.batch_size,
        loss=loss,
        temperature=temperature,
    )
    strategy = config.dsa_strategy or default_strategy(benchmark.name)
    augment = DSA(strategy) if config.dsa else None
    start = time.perf_counter()
    generators = [make_generator(derive_seed(seed, "eval", config.net, run)) for run in range(config.n_eval)]
    nets = [
        create_net(
            config.net, benchmark.channels, benchmark.num_classes, benchmark.image_size, generator=gen,
            **config.net_options,
        )
        for gen in generators
    ]  # fmt: skip
    test = benchmark.test
    batched = config.batches_on(device) and can_batch(nets)
    if batched:
        train_classifiers_batched(
            nets, images, labels, settings, generators=generators, augment=augment, device=device,
            progress=progress, relabel=relabel,
        )  # fmt: skip
        accuracies = accuracies_batched(nets, test.images, test.labels, device=device)
    else:
        accuracies = []
        for net, gen in zip(nets, generators):
            train_classifier(
                net, images, labels, settings, generator=gen, augment=augment, device=device, progress=progress,
                relabel=relabel,
            )  # fmt: skip
            accuracies.append(test_accuracy(net, test.images, test.labels, device=device))
    protocol = asdict(settings) | {"dsa_strategy": strategy if config.dsa else "none", "seed": seed}
    protocol["batched"] = batched
    protocol |= regime.describe()
    return EvalResult(net=config.net, accuracies=accuracies, seconds=time.perf_counter() - start, protocol=protocol)


MSE_PROTOCOL_LR = 0.1
"""SGD lr of the MSE protocol (KIP/FRePo sets). Its loss, 0.5 * mean over the ``C`` outputs, has
``1/C`` of the gradient of the per-example squared error 0.5 * ||f(x) - y||^2, so the CE protocol's
lr 0.01 becomes 0.1 (MNIST, random IPC 10, ConvNet-3 width 32, 3 nets x 300 epochs with DSA:
87.66 ± 1.01 at lr 0.01, 93.53 ± 0.22 at lr 0.1; the same set under CE: 93.83 ± 0.39)."""


def evaluate_synset(
    synset: SyntheticSet,
    benchmark: Benchmark,
    config: EvalConfig = EvalConfig(),
    *,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: bool = False,
    regime: LabelRegime | None = None,
) -> EvalResult:
    """The protocol on a synthetic set: uses its learned lr and its evaluation loss when present.

    Under a teacher regime the set must not record another teacher (``meta["teacher_hash"]``).
    """
    if regime is not None and regime.teacher is not None:
        from ddapps.teacher import check_teacher

        check_teacher(synset, regime.teacher, required=False)
    check_compatible(synset, benchmark)
    images, labels = synset.training_data()
    if regime is not None and regime.name in ("hard", "kd") and synset.factorization is None:
        labels = synset.hard_labels()  # the class each image was made for (a teacher's argmax may differ)
    loss = synset.eval_protocol.loss
    lr = synset.training_lr
    if lr is None and loss == "mse":
        lr = MSE_PROTOCOL_LR
    return evaluate_tensors(
        images.detach(),
        labels.detach(),
        benchmark,
        config,
        seed=seed,
        lr=lr,
        loss=loss,
        device=device,
        progress=progress,
        regime=regime,
    )


def evaluate_cross_architecture(
    synset: SyntheticSet,
    benchmark: Benchmark,
    nets: Sequence[str],
    config: EvalConfig = EvalConfig(),
    *,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> list[EvalResult]:
    """The protocol repeated for every architecture in ``nets`` (same seeds for each)."""
    from dataclasses import replace

    return [evaluate_synset(synset, benchmark, replace(config, net=n), seed=seed, device=device) for n in nets]


def evaluate_real(
    benchmark: Benchmark,
    indices: Tensor | None = None,
    config: EvalConfig = EvalConfig(),
    *,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> EvalResult:
    """The same protocol on the whole real training split (``indices=None``) or a subset of it."""
    train = benchmark.train if indices is None else benchmark.train.subset(indices)
    return evaluate_tensors(train.images, train.labels, benchmark, config, seed=seed, device=device, progress=progress)


def check_compatible(synset: SyntheticSet, benchmark: Benchmark) -> None:
    """The set must match the benchmark's classes and image shape (and ZCA use)."""
    images, _ = synset.training_data()
    expected = (benchmark.channels, *benchmark.image_size)
    if tuple(images.shape[1:]) != expected:
        raise ConfigError(
            f"synthetic images have shape {list(images.shape[1:])} but {benchmark.name} images are {list(expected)}"
        )
    if synset.num_classes != benchmark.num_classes:
        raise ConfigError(
            f"synthetic set has {synset.num_classes} classes, {benchmark.name} has {benchmark.num_classes}"
        )
    if (synset.zca is not None) != (benchmark.zca is not None):
        raise ConfigError("the synthetic set and the benchmark disagree on ZCA whitening (pass --zca to match)")
