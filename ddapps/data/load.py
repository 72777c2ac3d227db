"""``load_dataset`` and ``from_tensors``: raw arrays -> normalized :class:`Benchmark`.

The order of operations is fixed: scale pixels to [0, 1]; normalize per channel (paper constants,
or statistics of the training split); carve the validation split out of train (never out of test);
fit ZCA on what remains of train and apply it to every split.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ddapps.data.benchmark import Benchmark
from ddapps.data.catalog import DATASETS, RawData
from ddapps.data.download import download as _download
from ddapps.data.normalize import PAPER_STATS, PUBLIC_STATS, channel_stats, normalize_, to_unit_float
from ddapps.data.paths import search_roots
from ddapps.data.split import Split
from ddapps.data.stratify import stratified_holdout
from ddapps.data.zca import ZCA
from ddapps.errors import ConfigError, DataError

ZCA_EPS = 0.1  # MTT's ZCAWhitening(eps=0.1); relative to the mean eigenvalue (KIP)


def load_dataset(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool = False,
    zca: bool = False,
    val_fraction: float = 0.0,
    seed: int = 0,
    public_stats: bool = False,
    image_size: int | None = None,
    max_per_class: int | None = None,
) -> Benchmark:
    """Load the registered dataset ``name`` from ``data_dir`` (see :func:`resolve_data_dir`).

    ``download=True`` fetches missing files with torchvision first (mnist, fashion-mnist,
    cifar10, cifar100, svhn). ``val_fraction`` holds out a stratified part of train, drawn with
    ``seed``. ``zca=True`` whitens every split with a :class:`ZCA` fitted on train.
    ``public_stats=True`` never computes normalisation statistics from the images: datasets
    without published constants get :data:`~ddapps.data.normalize.PUBLIC_STATS` (what DP needs).
    ``image_size`` and ``max_per_class`` go to loaders that take them (``imagefolder``: resize to
    ``S x S``, read at most ``N`` training images per class); others refuse them.
    """
    loader = DATASETS.get(name)
    key = name.lower()
    if not 0.0 <= val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be in [0, 1), got {val_fraction}")
    options = _loader_options(loader, key, image_size=image_size, max_per_class=max_per_class)
    roots = search_roots(data_dir)
    try:
        raw = loader(roots, seed=seed, **options)
    except DataError:
        if not download or key == "digits":
            raise
        _download(key, roots[0])
        raw = loader(roots, seed=seed, **options)
    stats, source = (PAPER_STATS[key], "published") if key in PAPER_STATS else _own_stats(public_stats, raw)
    return _build(
        key, raw, normalize=True, stats=stats, stats_source=source, zca=zca,
        val_fraction=val_fraction, seed=seed,
    )  # fmt: skip


def _loader_options(loader: Any, key: str, **options: int | None) -> dict[str, int]:
    """The options that are set, after checking that ``loader`` takes each of them."""
    given = {k: v for k, v in options.items() if v is not None}
    accepted = inspect.signature(loader).parameters
    for option in given:
        if option not in accepted:
            flag = "--" + option.replace("_", "-")
            raise ConfigError(f"dataset {key} does not take {flag} (only image folders are resized or capped)")
    return given


def _own_stats(public: bool, raw: RawData) -> tuple[tuple[tuple[float, ...], tuple[float, ...]] | None, str]:
    """``(stats, stats_source)`` for a dataset without published constants: fixed public ones, or fitted."""
    if not public:
        return None, "data"
    channels = int(raw.train_images.shape[1])
    return ((PUBLIC_STATS[0],) * channels, (PUBLIC_STATS[1],) * channels), "public"


def from_tensors(
    train_images: torch.Tensor | np.ndarray,
    train_labels: torch.Tensor | np.ndarray,
    test_images: torch.Tensor | np.ndarray | None = None,
    test_labels: torch.Tensor | np.ndarray | None = None,
    *,
    name: str = "tensors",
    num_classes: int | None = None,
    normalize: bool = True,
    public_stats: bool = False,
) -> Benchmark:
    """A :class:`Benchmark` from in-memory images [N, C, H, W] and integer labels [N].

    uint8 images are scaled by 1/255, float images are taken as given (expected in [0, 1]).
    With ``normalize=True`` the per-channel mean/std of the training images are applied, or with
    ``public_stats=True`` the fixed :data:`~ddapps.data.normalize.PUBLIC_STATS` (nothing fitted).
    Without test tensors the test split is empty.
    """
    if (test_images is None) != (test_labels is None):
        raise DataError(f"{name}: give both test_images and test_labels, or neither")
    train_x = _check_images(train_images, f"{name} train_images")
    train_y = _check_labels(train_labels, len(train_x), f"{name} train_labels")
    if len(train_x) == 0:
        raise DataError(f"{name} train_images is empty; pass at least one training image")
    if test_images is not None and test_labels is not None:
        test_x = _check_images(test_images, f"{name} test_images")
        test_y = _check_labels(test_labels, len(test_x), f"{name} test_labels")
        if test_x.shape[1:] != train_x.shape[1:]:
            raise DataError(
                f"{name} test_images are {tuple(test_x.shape[1:])} per image but train_images are "
                f"{tuple(train_x.shape[1:])}; give both splits one shape"
            )
    else:
        test_x, test_y = train_x[:0], train_y[:0]
    all_y = torch.cat([train_y, test_y])
    low, high = int(all_y.min()), int(all_y.max())
    classes = high + 1 if num_classes is None else int(num_classes)
    if low < 0 or high >= classes:
        raise DataError(
            f"{name} labels must lie in [0, {classes}), got {low}..{high}; relabel them or pass num_classes"
        )
    raw = RawData(
        train_x, train_y.numpy(), test_x, test_y.numpy(),
        tuple(str(c) for c in range(classes)), scale=1.0, source="tensors",
    )  # fmt: skip
    stats, source = _own_stats(public_stats, raw) if normalize else (None, "none")
    return _build(
        name, raw, normalize=normalize, stats=stats, stats_source=source, zca=False, val_fraction=0.0, seed=0,
        num_classes=classes,
    )  # fmt: skip


def _check_images(x: torch.Tensor | np.ndarray, what: str) -> torch.Tensor:
    t = torch.as_tensor(x)
    if t.dim() != 4:
        raise DataError(f"{what} must be 4-D [N, C, H, W], got shape {tuple(t.shape)}")
    if t.dtype == torch.uint8:
        return t.to(torch.float32) / 255.0
    if not t.is_floating_point():
        raise DataError(f"{what} must be float in [0, 1] or uint8, got {t.dtype}")
    t = t.to(torch.float32)
    if not bool(torch.isfinite(t).all()):
        raise DataError(f"{what} contains NaN or Inf values; remove or repair those images")
    return t


def _check_labels(y: torch.Tensor | np.ndarray, n: int, what: str) -> torch.Tensor:
    t = torch.as_tensor(y)
    if t.dim() != 1 or t.shape[0] != n:
        raise DataError(f"{what} must be 1-D with {n} entries (one per image), got shape {tuple(t.shape)}")
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise DataError(f"{what} must be integer class ids, got {t.dtype}")
    return t.to(torch.int64)


def _build(
    name: str,
    raw: RawData,
    *,
    normalize: bool,
    stats: tuple[Sequence[float], Sequence[float]] | None,
    stats_source: str,
    zca: bool,
    val_fraction: float,
    seed: int,
    num_classes: int | None = None,
) -> Benchmark:
    train_x = to_unit_float(raw.train_images, raw.scale)
    test_x = to_unit_float(raw.test_images, raw.scale)
    channels, height, width = train_x.shape[1:]
    if stats is None:
        mean, std = channel_stats(train_x) if normalize else ((0.0,) * channels, (1.0,) * channels)
    else:
        mean, std = tuple(stats[0]), tuple(stats[1])
    normalize_(train_x, mean, std)
    normalize_(test_x, mean, std)
    classes = num_classes if num_classes is not None else len(raw.class_names)
    train = Split(train_x, torch.as_tensor(raw.train_labels, dtype=torch.int64), classes)
    test = Split(test_x, torch.as_tensor(raw.test_labels, dtype=torch.int64), classes)
    val = None
    if val_fraction > 0:
        keep, held = stratified_holdout(train.labels, val_fraction, seed)
        train, val = train.subset(keep), train.subset(held)
    whitening = None
    if zca:
        whitening = ZCA.fit(train.images, eps=ZCA_EPS, relative=True)
        for split in (train, val, test):
            if split is not None and len(split):
                split.images = whitening.apply(split.images)
    return Benchmark(
        name=name,
        train=train,
        test=test,
        val=val,
        num_classes=classes,
        class_names=raw.class_names,
        channels=int(channels),
        image_size=(int(height), int(width)),
        mean=tuple(float(m) for m in mean),
        std=tuple(float(s) for s in std),
        zca=whitening,
        test_partial=raw.test_partial,
        source=raw.source,
        stats_source=stats_source,
    )
