"""The learning task shared by server and clients: data, partitions, the model, training, testing.

Clients and server compute the same seeded partition independently (nothing about it is sent).
The dataset is loaded once per process and cached, so simulation actors that serve many rounds
or many virtual clients read it only once.
"""

from __future__ import annotations

import dataclasses
import threading
from functools import lru_cache
from typing import Callable

import torch
from torch import Tensor, nn

from ddapps.data import Benchmark, Split, load_dataset
from ddapps.evaluation import TrainSettings, test_accuracy, train_classifier
from ddapps.federated.partition import make_partition
from ddapps.federated.settings import VALIDATION_FRACTION, FederatedConfig
from ddapps.nets import create_net
from ddapps.utils.seeding import derive_seed, make_generator

_LOCK = threading.Lock()


@lru_cache(maxsize=4)
def _cached_dataset(name: str, data_dir: str, evaluate: str = "test") -> Benchmark:
    # Public normalisation constants: statistics fitted on the union of the clients' data are
    # something no federated system could compute, and under client DP they would leak unaccounted.
    if evaluate == "test":
        return load_dataset(name, data_dir or None, public_stats=True)
    bench = load_dataset(name, data_dir or None, public_stats=True, val_fraction=VALIDATION_FRACTION,
                         seed=derive_seed(0, "federated-validation"))  # fmt: skip
    assert bench.val is not None
    return dataclasses.replace(bench, test=bench.val, val=None, test_partial=False)


def load_benchmark(config: FederatedConfig, data_dir: str | None = None) -> Benchmark:
    """The run's dataset (``data_dir`` overrides the config's, e.g. from a SuperNode's node config).

    With ``config.evaluate == "validation"`` its ``train`` split is the training data less the
    held-out validation part, and its ``test`` split is that part: clients never see it and the
    test set is not read into any result."""
    with _LOCK:
        root = data_dir if data_dir is not None else config.data_dir
        return _cached_dataset(config.dataset, root, config.evaluate)


@lru_cache(maxsize=16)
def _cached_parts(
    name: str, data_dir: str, evaluate: str, clients: int, kind: str, alpha: float, seed: int, max_per_client: int
) -> tuple[Tensor, ...]:
    labels = _cached_dataset(name, data_dir, evaluate).train.labels
    gen = make_generator(derive_seed(seed, "partition"))
    return tuple(make_partition(labels, clients, kind, alpha, gen, max_per_client=max_per_client))


def partitions(config: FederatedConfig, data_dir: str | None = None) -> tuple[Tensor, ...]:
    """Training-split indices of every client (seeded by ``config.seed``)."""
    load_benchmark(config, data_dir)
    root = data_dir if data_dir is not None else config.data_dir
    with _LOCK:
        return _cached_parts(
            config.dataset, root, config.evaluate, config.clients, config.partitioner, float(config.alpha), config.seed,
            config.max_per_client,
        )  # fmt: skip


def client_split(config: FederatedConfig, partition_id: int, data_dir: str | None = None) -> Split:
    """The local training data of client ``partition_id`` (all classes, global labels)."""
    bench = load_benchmark(config, data_dir)
    return bench.train.subset(partitions(config, data_dir)[partition_id])


def local_benchmark(bench: Benchmark, split: Split, min_per_class: int) -> tuple[Benchmark, list[int]]:
    """A Benchmark over the classes with at least ``min_per_class`` local images, relabelled 0..k-1.

    Distillers need every class of their benchmark to hold ``ipc`` images; a label-skewed client
    distils only the classes it holds enough of. Returns the benchmark and the global ids of its
    classes (its class ``j`` is global class ``classes[j]``).
    """
    counts = split.class_counts()
    classes = [c for c in range(bench.num_classes) if int(counts[c]) >= min_per_class]
    lookup = torch.full((bench.num_classes,), -1, dtype=torch.int64)
    lookup[torch.tensor(classes, dtype=torch.int64)] = torch.arange(len(classes))
    keep = (lookup[split.labels] >= 0).nonzero().flatten()
    k = max(1, len(classes))
    train = Split(split.images[keep], lookup[split.labels[keep]], k)
    empty = Split(split.images[:0], split.labels[:0], k)
    local = Benchmark(
        name=bench.name,
        train=train,
        test=empty,
        val=None,
        num_classes=k,
        class_names=tuple(bench.class_names[c] for c in classes) or (bench.class_names[0],),
        channels=bench.channels,
        image_size=bench.image_size,
        mean=bench.mean,
        std=bench.std,
        zca=bench.zca,
        source=bench.source,
        stats_source=bench.stats_source,
    )
    return local, classes


def make_model(config: FederatedConfig, bench: Benchmark, generator: torch.Generator) -> nn.Module:
    """The global model of the run, initialised from ``generator``."""
    return create_net(
        config.model, bench.channels, bench.num_classes, bench.image_size, generator=generator,
        **config.model_options,
    )  # fmt: skip


def initial_model(config: FederatedConfig, bench: Benchmark) -> nn.Module:
    """The round-0 global model (the same in every mode for one seed)."""
    return make_model(config, bench, make_generator(derive_seed(config.seed, "global-model")))


def server_settings(config: FederatedConfig, loss: str = "cross_entropy") -> TrainSettings:
    """How the server trains the global model on synthetic data."""
    return TrainSettings(epochs=config.server_epochs, lr=config.server_lr, batch_size=config.server_batch, loss=loss)


def local_settings(config: FederatedConfig) -> TrainSettings:
    """How a FedAvg client trains the global model on its partition."""
    return TrainSettings(epochs=config.local_epochs, lr=config.local_lr, batch_size=config.local_batch)


def augment_strategy(config: FederatedConfig, bench: Benchmark) -> str | None:
    """The DSA strategy of every model training of the run (``None`` when ``augment`` is ``none``).

    One policy for both sides: the server's training on the union of the uploads and the local
    training of FedAvg/FedProx clients (Zhao & Bilen, "Dataset Condensation with Differentiable
    Siamese Augmentation", ICML 2021: the dataset's default strategy).
    """
    if config.augment == "none":
        return None
    from ddapps.augment import default_strategy

    return default_strategy(bench.name)


def train(
    net: nn.Module,
    images: Tensor,
    labels: Tensor,
    settings: TrainSettings,
    generator: torch.Generator,
    augment_strategy: str | None = None,
    penalty: Callable[[], Tensor] | None = None,
) -> nn.Module:
    """Train ``net`` in place (optionally with DSA ``augment_strategy`` and a loss ``penalty``)."""
    from ddapps.augment import DSA

    augment = DSA(augment_strategy) if augment_strategy else None
    return train_classifier(net, images, labels, settings, generator=generator, augment=augment, penalty=penalty)


def evaluate(net: nn.Module, bench: Benchmark) -> float:
    """Test accuracy (percent) of ``net`` on the benchmark's test split."""
    return test_accuracy(net, bench.test.images, bench.test.labels)


def set_threads(config: FederatedConfig) -> None:
    """Apply ``config.threads`` (0 leaves torch's setting)."""
    if config.threads > 0 and torch.get_num_threads() != config.threads:
        torch.set_num_threads(config.threads)
