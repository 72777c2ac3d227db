"""One scorer for every proxy measurement: ``nas search``'s NNI trials and ``nas rank``'s studies.

An architecture's proxy score is its validation accuracy after a fixed number of SGD steps
(:func:`~ddapps.nas.training.train_steps`, the evaluation protocol's optimiser of Zhao et al.,
ICLR 2021) on one proxy's training data. Everything that decides the number is a function of the
pipeline ``seed``, the architecture (:func:`architecture_key`), the proxy's name and the replicate:

* initial weights: :func:`init_seed` (replicate 0; replicate 1 is the noise ceiling's second run,
  another initialisation);
* the data order: :func:`train_seed`;
* the data: :class:`DataProxy` (images, labels, the set's learned lr and evaluation loss), pooled to
  the study's ``resolution`` like the validation images (:func:`resize`).

Both :func:`ddapps.nas.evaluator.proxy_trial` (what NNI runs for a search trial or a study trial)
and the in-process study call :func:`score_architecture`, so a search and a study that share the
seed, the proxy and the budget give an architecture the same score (tested).
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Mapping

import torch
from torch import Tensor, nn

from ddapps.errors import DataError
from ddapps.evaluation.training import test_accuracy
from ddapps.nas.training import StepBudget, train_steps
from ddapps.utils.atomic import atomic_path
from ddapps.utils.seeding import derive_seed, make_generator

SEED_TAG = "nb201"
"""Namespace of the scorer's derived seeds (the name the first recorded studies used; kept so they reproduce)."""


@dataclass(frozen=True)
class DataProxy:
    """Training data of one proxy: images, labels, the set's lr and loss, and what it cost to make."""

    images: Tensor
    labels: Tensor
    lr: float | None = None
    loss: str = "cross_entropy"
    setup_seconds: float = 0.0


@dataclass
class ArchitectureScore:
    """Validation accuracy (percent) per proxy, the noise-ceiling replicate's, and training seconds."""

    accuracy: dict[str, float] = field(default_factory=dict)
    ceiling: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def architecture_key(model: nn.Module) -> str:
    """The architecture's identity: its NAS-Bench-201 string, or the module structure (``repr``)."""
    from ddapps.nas.nb201 import NB201Net, format_arch

    for sub in model.modules():
        if isinstance(sub, NB201Net):
            return format_arch(sub.arch)
    return repr(model)


def init_seed(seed: int, key: str, replicate: int = 0) -> int:
    """Seed of the initial weights of architecture ``key`` (replicate 1: the ceiling's second run)."""
    return derive_seed(seed, SEED_TAG, "init" if replicate == 0 else "ceiling-init", key)


def train_seed(seed: int, key: str, proxy: str, replicate: int = 0) -> int:
    """Seed of the data order when architecture ``key`` trains on ``proxy``."""
    return derive_seed(seed, SEED_TAG, "train" if replicate == 0 else "ceiling-train", key, proxy)


def resize(images: Tensor, resolution: int | None) -> Tensor:
    """``images`` average-pooled (area interpolation) to ``resolution`` x ``resolution``; as is when ``None``."""
    if resolution is None or tuple(images.shape[2:]) == (resolution, resolution):
        return images
    return torch.nn.functional.interpolate(images, size=(resolution, resolution), mode="area")


def resized(data: DataProxy, resolution: int | None) -> DataProxy:
    """``data`` with its images pooled to ``resolution``."""
    return replace(data, images=resize(data.images, resolution))


def initialize(
    model: nn.Module, seed: int, key: str, replicate: int = 0, device: torch.device | str = "cpu"
) -> nn.Module:
    """Give ``model`` storage (if on ``meta``) and its initial weights for ``(seed, key, replicate)``."""
    from ddapps.nets.init import reinitialize_

    if any(p.is_meta for p in model.parameters()) or any(b.is_meta for b in model.buffers()):
        model.to_empty(device=device)
    return reinitialize_(model, make_generator(init_seed(seed, key, replicate)))


def train_and_score(
    init: nn.Module,
    data: DataProxy,
    budget: StepBudget,
    *,
    seed: int,
    key: str,
    proxy: str,
    val: tuple[Tensor, Tensor],
    replicate: int = 0,
    device: torch.device | str = "cpu",
) -> tuple[float, float]:
    """Train a copy of ``init`` on ``data``; return (validation accuracy in percent, training seconds)."""
    net = copy.deepcopy(init)
    secs = train_steps(
        net, data.images, data.labels, budget, generator=make_generator(train_seed(seed, key, proxy, replicate)),
        lr=data.lr, loss=data.loss, device=device,
    )  # fmt: skip
    return test_accuracy(net, val[0], val[1], device=device), secs


def score_architecture(
    model: nn.Module,
    proxies: Mapping[str, DataProxy],
    budget: StepBudget,
    *,
    seed: int,
    val: tuple[Tensor, Tensor],
    ceiling: bool = False,
    device: torch.device | str = "cpu",
) -> ArchitectureScore:
    """Score ``model``'s architecture on every proxy (and, with ``ceiling``, a second initialisation).

    ``model`` is (re)initialized in place from :func:`init_seed`; data and ``val`` are used as given
    (pool them to the study's resolution first).
    """
    key = architecture_key(model)
    initialize(model, seed, key, 0, device)
    again = initialize(copy.deepcopy(model), seed, key, 1, device) if ceiling else None
    score = ArchitectureScore()
    for name, data in proxies.items():
        score.accuracy[name], score.seconds[name] = train_and_score(
            model, data, budget, seed=seed, key=key, proxy=name, val=val, device=device
        )
        if again is not None:
            score.ceiling[name], _ = train_and_score(
                again, data, budget, seed=seed, key=key, proxy=name, val=val, replicate=1, device=device
            )
    return score


def save_data_proxy(path: str | os.PathLike[str], data: DataProxy) -> Path:
    """Write ``data`` atomically as safetensors (lr, loss and setup seconds in the header)."""
    from safetensors.torch import save_file

    target = Path(path)
    meta = {"lr": data.lr, "loss": data.loss, "setup_seconds": data.setup_seconds}
    with atomic_path(target) as tmp:
        save_file(
            {"images": data.images.detach().float().contiguous(), "labels": data.labels.detach().contiguous()},
            str(tmp),
            metadata={"ddapps_proxy": json.dumps(meta)},
        )
    return target


def load_data_proxy(path: str | os.PathLike[str]) -> DataProxy:
    """A proxy file of :func:`save_data_proxy`, or a saved :class:`~ddapps.synthetic.SyntheticSet`.

    Nothing is unpickled; a file read before (same size and modification time) comes from a cache,
    so trials of the sequential engine do not reload the same data.
    """
    source = Path(path)
    if not source.is_file():
        raise DataError(f"proxy data file not found: {source}")
    stat = source.stat()
    return _load_cached(str(source.resolve()), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=8)
def _load_cached(path: str, size: int, mtime_ns: int) -> DataProxy:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(path, framework="pt") as handle:
            meta = handle.metadata() or {}
            if "ddapps_proxy" not in meta:
                return _from_synthetic_set(path)
            header = json.loads(meta["ddapps_proxy"])
            images, labels = handle.get_tensor("images"), handle.get_tensor("labels")
    except (SafetensorError, OSError, ValueError, KeyError) as err:
        raise DataError(f"{path} is not a valid proxy data file ({err})") from None
    if images.ndim != 4 or labels.shape[0] != images.shape[0] or not torch.isfinite(images).all():
        raise DataError(f"{path}: images must be finite [N, C, H, W] with one label row each")
    lr = header.get("lr")
    return DataProxy(images, labels, None if lr is None else float(lr), str(header.get("loss", "cross_entropy")),
                     float(header.get("setup_seconds", 0.0)))  # fmt: skip


def _from_synthetic_set(path: str) -> DataProxy:
    from ddapps.synthetic import SyntheticSet

    synset = SyntheticSet.load(path)
    images, labels = (t.detach() for t in synset.training_data())
    lr = float(synset.lr) if synset.lr is not None else None
    return DataProxy(images, labels, lr, synset.eval_protocol.loss)
