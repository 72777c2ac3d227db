"""``download=True``: fetch a dataset with torchvision into the data dir, in a layout we read.

torchvision writes MNIST to ``<dir>/MNIST/raw``, Fashion-MNIST to ``<dir>/FashionMNIST/raw``,
CIFAR to ``<dir>/cifar-10-batches-py`` / ``<dir>/cifar-100-python`` and SVHN to ``<dir>``; the
loaders search all of these. Never called by the tests.
"""

from __future__ import annotations

from pathlib import Path

from ddapps.errors import ConfigError, DataError

# dataset name -> (torchvision class name, one kwargs dict per split to fetch)
_TORCHVISION: dict[str, tuple[str, tuple[dict[str, object], ...]]] = {
    "mnist": ("MNIST", ({"train": True}, {"train": False})),
    "fashion-mnist": ("FashionMNIST", ({"train": True}, {"train": False})),
    "cifar10": ("CIFAR10", ({"train": True},)),
    "cifar100": ("CIFAR100", ({"train": True},)),
    "svhn": ("SVHN", ({"split": "train"}, {"split": "test"})),
}


def downloadable() -> list[str]:
    """Names that :func:`download` can fetch."""
    return sorted(_TORCHVISION)


def download(name: str, root: Path) -> None:
    """Fetch ``name`` into ``root`` with ``torchvision.datasets.<Class>(root, download=True)``."""
    if name not in _TORCHVISION:
        raise ConfigError(
            f"dataset {name!r} cannot be downloaded; choose one of: {', '.join(downloadable())}, "
            "or put its files in the data dir"
        )
    import torchvision.datasets

    cls_name, splits = _TORCHVISION[name]
    cls = getattr(torchvision.datasets, cls_name)
    root.mkdir(parents=True, exist_ok=True)
    for kwargs in splits:
        try:
            cls(str(root), download=True, **kwargs)
        except Exception as exc:  # network and checksum failures come in many types
            raise DataError(
                f"downloading {name} into {root} failed: {' '.join(str(exc).split())}; "
                "put the official files there by hand or check the network"
            ) from None
