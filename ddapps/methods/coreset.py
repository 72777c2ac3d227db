"""Coreset baselines: select real images instead of synthesising them.

* ``random`` -- uniform selection per class (the baseline every DD paper reports).
* ``herding`` -- Welling, "Herding Dynamical Weights to Learn", ICML 2009 (as used for selection
  by Rebuffi et al., iCaRL, CVPR 2017): greedily add the sample that keeps the running mean of the
  selected embeddings closest to the class mean, ``argmin_i || mu_c - (sum_S f + f_i)/(|S|+1) ||``.
* ``kcenter`` -- greedy k-center (Sener & Savarese, ICLR 2018): repeatedly add the sample farthest
  from the selected ones, starting from the sample nearest the class mean.

Herding and k-center work on embeddings of a ConvNet trained on the real data (as in the DC
paper's baselines); ``features="random"`` uses an untrained net, ``"pixels"`` raw pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ddapps.data import Benchmark
from ddapps.evaluation.training import TrainSettings, embed_all, train_classifier
from ddapps.methods.base import METHODS, Distiller, DistillerConfig, DistillRequest
from ddapps.nets import create_net
from ddapps.synthetic import SyntheticSet
from ddapps.utils.seeding import draw_seed, make_generator
from ddapps.validation import check_choice

FEATURES = ("trained", "random", "pixels")


@dataclass(frozen=True)
class CoresetConfig(DistillerConfig):
    """Feature extractor of herding/k-center (ignored by ``random``).

    ``feature_samples`` caps how many real images train the feature net (``None``: all);
    ``feature_epochs`` is its training length.
    """

    features: str = "trained"
    net: str = "convnet"
    net_options: dict[str, Any] = field(default_factory=dict)
    feature_epochs: int = 10
    feature_samples: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("features", self.features, FEATURES)


class CoresetSelector(Distiller):
    """Base of selection methods: pick ``ipc`` real indices per class."""

    config_class = CoresetConfig
    config: CoresetConfig
    smoke_config = {"feature_epochs": 1, "net": "mlp"}

    def _distill(self, request: DistillRequest) -> SyntheticSet:
        real, ipc, generator = request.real, request.ipc, request.generator
        seed = draw_seed(generator)
        features = self.features(real, make_generator(seed))
        chosen = []
        for c in range(real.num_classes):
            idx = real.train.class_indices(c)
            local = self.select(features[idx] if features is not None else None, idx.numel(), ipc, generator)
            chosen.append(idx[local])
        indices = torch.cat(chosen)
        return self.make_synset(real, ipc, real.train.images[indices], base_seed=seed, indices=indices.tolist())

    def features(self, real: Benchmark, generator: torch.Generator) -> Tensor | None:
        """Per-image features used for selection (``None`` when the method needs none)."""
        cfg = self.config
        if cfg.features == "pixels":
            return real.train.images.flatten(1)
        net = create_net(
            cfg.net, real.channels, real.num_classes, real.image_size, generator=generator, **cfg.net_options
        )
        if cfg.features == "trained":
            train = real.train
            if cfg.feature_samples is not None and cfg.feature_samples < len(train):
                train = train.subset(torch.randperm(len(train), generator=generator)[: cfg.feature_samples])
            settings = TrainSettings(epochs=cfg.feature_epochs)
            train_classifier(net, train.images, train.labels, settings, generator=generator, device=self.device)
        return embed_all(net, real.train.images, device=self.device)

    def select(self, features: Tensor | None, n: int, k: int, generator: torch.Generator) -> Tensor:
        """Local indices (into the class) of the ``k`` chosen samples."""
        raise NotImplementedError


@METHODS.register("random")
class RandomSelection(CoresetSelector):
    """Uniform random real images per class."""

    name = "random"

    def features(self, real: Benchmark, generator: torch.Generator) -> Tensor | None:
        return None

    def select(self, features: Tensor | None, n: int, k: int, generator: torch.Generator) -> Tensor:
        return torch.randperm(n, generator=generator)[:k]


@METHODS.register("herding")
class Herding(CoresetSelector):
    """Herding selection (Welling, ICML 2009) on network embeddings."""

    name = "herding"

    def select(self, features: Tensor | None, n: int, k: int, generator: torch.Generator) -> Tensor:
        assert features is not None
        feats = features.double()
        mu = feats.mean(dim=0)
        total = torch.zeros_like(mu)
        available = torch.ones(n, dtype=torch.bool)
        picked = []
        for step in range(k):
            candidate_means = (total + feats) / (step + 1)
            dist = (candidate_means - mu).norm(dim=1)
            dist[~available] = float("inf")
            i = int(dist.argmin())
            picked.append(i)
            available[i] = False
            total += feats[i]
        return torch.tensor(picked, dtype=torch.long)


@METHODS.register("kcenter")
class KCenter(CoresetSelector):
    """Greedy k-center selection (Sener & Savarese, ICLR 2018) on network embeddings."""

    name = "kcenter"

    def select(self, features: Tensor | None, n: int, k: int, generator: torch.Generator) -> Tensor:
        assert features is not None
        feats = features.double()
        first = int((feats - feats.mean(dim=0)).norm(dim=1).argmin())
        picked = [first]
        min_dist = (feats - feats[first]).norm(dim=1)
        for _ in range(k - 1):
            i = int(min_dist.argmax())
            picked.append(i)
            min_dist = torch.minimum(min_dist, (feats - feats[i]).norm(dim=1))
        return torch.tensor(picked, dtype=torch.long)
