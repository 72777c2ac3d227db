"""MNIST and Fashion-MNIST from the official idx files (raw, .gz or .xz).

Searched in ``<root>``, ``<root>/mnist`` (``fashion-mnist``) and torchvision's
``<root>/MNIST/raw`` (``FashionMNIST/raw``), for every search root.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ddapps.data.catalog import DATASETS, RawData
from ddapps.data.idx import IMAGES_MAGIC, LABELS_MAGIC, parse_idx
from ddapps.data.paths import candidate_dirs, find_file, missing_file_error, read_bytes
from ddapps.errors import DataError

MNIST_CLASSES = tuple(str(d) for d in range(10))
FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip


def _read(title: str, dirs: list[Path], stem: str, magic: int) -> np.ndarray:
    # The official files are "train-images-idx3-ubyte"; the name inside the .gz uses a dot.
    path = find_file(dirs, (stem, stem.replace("-idx", ".idx")))
    if path is None:
        raise missing_file_error(title, stem + ".gz", dirs)
    return parse_idx(read_bytes(path, f"{title} idx"), magic, path)


def _split(title: str, dirs: list[Path], prefix: str) -> tuple[np.ndarray, np.ndarray]:
    images = _read(title, dirs, f"{prefix}-images-idx3-ubyte", IMAGES_MAGIC)
    labels = _read(title, dirs, f"{prefix}-labels-idx1-ubyte", LABELS_MAGIC)
    if images.ndim != 3 or labels.ndim != 1:
        raise DataError(
            f"corrupted {title} {prefix} files in {dirs[0]}: images {images.shape}, labels "
            f"{labels.shape}; expected [N, H, W] and [N]; replace them with the official files"
        )
    if len(images) != len(labels):
        raise DataError(
            f"{title} {prefix} files disagree: {len(images)} images but {len(labels)} labels; "
            "replace them with the official files"
        )
    if labels.size and int(labels.max()) >= 10:
        raise DataError(f"{title} {prefix} labels hold {int(labels.max())}, expected 0..9")
    return images[:, None], labels.astype(np.int64)


def _load(title: str, subdirs: Sequence[str], classes: tuple[str, ...], roots: Sequence[Path]) -> RawData:
    dirs = candidate_dirs(roots, subdirs)
    # INVARIANT: all four files come from the folder holding the training images.
    found = find_file(dirs, ("train-images-idx3-ubyte", "train-images.idx3-ubyte"))
    if found is None:
        raise missing_file_error(title, "train-images-idx3-ubyte.gz", dirs)
    folder = [found.parent]
    train_x, train_y = _split(title, folder, "train")
    test_x, test_y = _split(title, folder, "t10k")
    return RawData(train_x, train_y, test_x, test_y, classes, scale=255.0, source=str(found.parent))


@DATASETS.register("mnist")
def load_mnist(roots: Sequence[Path], *, seed: int = 0) -> RawData:
    """MNIST: 60,000 train / 10,000 test grayscale 28x28 digits."""
    return _load("MNIST", ("", "mnist", "MNIST/raw"), MNIST_CLASSES, roots)


@DATASETS.register("fashion-mnist")
def load_fashion_mnist(roots: Sequence[Path], *, seed: int = 0) -> RawData:
    """Fashion-MNIST (Xiao et al., 2017): 60,000 / 10,000 grayscale 28x28 clothing images."""
    return _load("Fashion-MNIST", ("", "fashion-mnist", "FashionMNIST/raw"), FASHION_CLASSES, roots)
