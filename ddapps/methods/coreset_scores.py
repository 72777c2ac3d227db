"""Score-based coresets: keep the real images a training run finds hardest (or easiest).

* ``forgetting`` -- Toneva et al., "An Empirical Study of Example Forgetting during Deep Neural
  Network Learning", ICLR 2019: a forgetting event is an example going from correctly to wrongly
  classified; examples are ranked by their number of events, and examples never learned count as
  forgotten most. Here correctness is checked after every epoch (in eval mode) rather than at each
  minibatch presentation -- one pass over the pool per epoch instead of per-batch bookkeeping.
* ``el2n`` -- Paul et al., "Deep Learning on a Data Diet", NeurIPS 2021: the EL2N score
  ``E_theta || softmax(f_theta(x)) - onehot(y) ||_2`` early in training (their CIFAR-10 setting: after
  20 epochs, mean over 10 networks).

Both keep the ``ipc`` highest-scoring images per class (``keep="hardest"``, the papers' pruning
rule). At a handful of images per class Sorscher et al. (NeurIPS 2022, "Beyond neural scaling
laws") find keeping the easiest examples better; ``keep="easiest"`` does that. Scores come from
nets trained ``feature_epochs`` on a random pool of ``feature_samples`` training images (all when
``None``), without augmentation; images outside the pool are used only to fill a class whose pool
is smaller than ``ipc``. Ties are broken at random (the method's generator).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ddapps.data import Benchmark
from ddapps.errors import ConfigError
from ddapps.evaluation.training import TrainSettings, train_classifier
from ddapps.methods.base import METHODS
from ddapps.methods.coreset import CoresetConfig, CoresetSelector
from ddapps.nets import create_net
from ddapps.utils.seeding import draw_seed, make_generator
from ddapps.validation import check_choice

KEEP = ("hardest", "easiest")


@dataclass(frozen=True)
class ScoreConfig(CoresetConfig):
    """Scoring nets: ``score_nets`` nets of ``net`` trained ``feature_epochs`` (``features`` must be ``trained``)."""

    score_nets: int = 1
    keep: str = "hardest"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("keep", self.keep, KEEP)
        if self.features != "trained":
            raise ConfigError("score-based coresets score with trained nets: features must be 'trained'")
        if self.score_nets < 1 or self.feature_epochs < 0:
            raise ConfigError("score_nets must be >= 1 and feature_epochs >= 0")


@dataclass(frozen=True)
class ForgettingConfig(ScoreConfig):
    """Toneva et al. train the scoring net to the end (200 epochs for CIFAR-10, n/v)."""

    feature_epochs: int = 200


@dataclass(frozen=True)
class EL2NConfig(ScoreConfig):
    """Paul et al.: EL2N after 20 epochs, averaged over 10 networks (CIFAR-10)."""

    feature_epochs: int = 20
    score_nets: int = 10


class ScoreSelector(CoresetSelector):
    """Base of score-based selection: ``features`` are one score per image (NaN outside the pool)."""

    config_class = ScoreConfig
    config: ScoreConfig
    smoke_config = {"feature_epochs": 2, "net": "mlp", "score_nets": 1}

    def features(self, real: Benchmark, generator: torch.Generator) -> Tensor | None:
        cfg = self.config
        train = real.train
        pool = torch.arange(len(train))
        if cfg.feature_samples is not None and cfg.feature_samples < len(train):
            pool = torch.randperm(len(train), generator=generator)[: cfg.feature_samples]
        images, labels = train.images[pool], train.labels[pool]
        total = torch.zeros(len(pool), dtype=torch.float64)
        for _ in range(cfg.score_nets):
            gen = make_generator(draw_seed(generator))
            net = create_net(
                cfg.net, real.channels, real.num_classes, real.image_size, generator=gen, **cfg.net_options
            )
            total += self.score(net, images, labels, gen)
        scores = torch.full((len(train),), float("nan"), dtype=torch.float64)
        scores[pool] = total / cfg.score_nets
        return scores[:, None]

    def score(self, net: torch.nn.Module, images: Tensor, labels: Tensor, generator: torch.Generator) -> Tensor:
        """One net's score of every pool image (higher: harder)."""
        raise NotImplementedError

    def select(self, features: Tensor | None, n: int, k: int, generator: torch.Generator) -> Tensor:
        assert features is not None
        scores = features[:, 0]
        key = -scores if self.config.keep == "hardest" else scores
        key = torch.where(torch.isnan(scores), torch.inf, key)  # outside the pool: last, in random order
        order = torch.randperm(n, generator=generator)
        ranked = order[torch.sort(key[order], stable=True).indices]
        return ranked[:k]


@METHODS.register("forgetting")
class Forgetting(ScoreSelector):
    """Forgetting scores (Toneva et al., ICLR 2019), correctness checked once per epoch."""

    name = "forgetting"
    config_class = ForgettingConfig

    def score(self, net: torch.nn.Module, images: Tensor, labels: Tensor, generator: torch.Generator) -> Tensor:
        epochs = self.config.feature_epochs
        events = torch.zeros(len(labels), dtype=torch.float64)
        learned = torch.zeros(len(labels), dtype=torch.bool)
        previous = torch.zeros(len(labels), dtype=torch.bool)

        def check(epoch: int) -> None:
            nonlocal previous
            correct = _correct(net, images, labels, self.device)
            events.add_((previous & ~correct).double())
            learned.logical_or_(correct)
            previous = correct

        train_classifier(
            net, images, labels, TrainSettings(epochs=epochs), generator=generator, device=self.device, on_epoch=check
        )
        # never learned: forgotten more than any learned example can be (at most epochs / 2 events)
        return torch.where(learned, events, float(epochs + 1))


@METHODS.register("el2n")
class EL2N(ScoreSelector):
    """EL2N scores (Paul et al., NeurIPS 2021): error L2 norm early in training."""

    name = "el2n"
    config_class = EL2NConfig

    def score(self, net: torch.nn.Module, images: Tensor, labels: Tensor, generator: torch.Generator) -> Tensor:
        settings = TrainSettings(epochs=self.config.feature_epochs)
        train_classifier(net, images, labels, settings, generator=generator, device=self.device)
        probs = _outputs(net, images, self.device).softmax(dim=1)
        return (probs - F.one_hot(labels, probs.shape[1]).double()).norm(dim=1)


@torch.inference_mode()
def _outputs(net: torch.nn.Module, images: Tensor, device: torch.device | str, batch_size: int = 1024) -> Tensor:
    net.to(device).eval()
    out = [net(images[s : s + batch_size].to(device)).double().cpu() for s in range(0, len(images), batch_size)]
    return torch.cat(out)


def _correct(net: torch.nn.Module, images: Tensor, labels: Tensor, device: torch.device | str) -> Tensor:
    return _outputs(net, images, device).argmax(dim=1) == labels
