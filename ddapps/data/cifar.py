"""CIFAR-10 and CIFAR-100 (Krizhevsky, 2009): the binary version, or the python version.

Binary records are ``<label byte(s)><1024 R><1024 G><1024 B>``: one label byte for CIFAR-10, two
(coarse, fine) for CIFAR-100, of which the fine label is used. Files may be raw, .gz or .xz. When
CIFAR-10's ``test_batch.bin`` is absent, ``test_batch_first1000.bin`` (the first 1,000 official
test images) is used and the benchmark records a partial test set. Python-version pickles are read
with :mod:`ddapps.data.safe_pickle`, never with plain ``pickle.load``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ddapps.data.catalog import DATASETS, RawData
from ddapps.data.paths import candidate_dirs, find_file, missing_file_error, read_bytes
from ddapps.data.safe_pickle import safe_unpickle
from ddapps.errors import DataError

PIXELS = 3 * 32 * 32

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip

CIFAR100_CLASSES = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle",
    "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar",
    "cattle", "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile",
    "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster",
    "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster",
    "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom", "oak_tree", "orange",
    "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree", "plain", "plate", "poppy",
    "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket", "rose", "sea", "seal",
    "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider", "squirrel", "streetcar",
    "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger", "tractor",
    "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman",
    "worm",
)  # fmt: skip


def _corrupted(path: Path, why: str) -> DataError:
    return DataError(f"corrupted CIFAR file {path}: {why}; replace it with the official file")


def _parse_binary(path: Path, label_bytes: int, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    data = read_bytes(path, "CIFAR")
    record = label_bytes + PIXELS
    if len(data) == 0 or len(data) % record:
        raise _corrupted(path, f"{len(data)} bytes is not a whole number of {record}-byte records")
    rows = np.frombuffer(data, dtype=np.uint8).reshape(-1, record)
    labels = rows[:, label_bytes - 1].astype(np.int64)  # the last label byte: the (fine) class
    if int(labels.max()) >= num_classes:
        raise _corrupted(path, f"label {int(labels.max())} is not below {num_classes}")
    return rows[:, label_bytes:].reshape(-1, 3, 32, 32), labels


def _get(batch: dict[Any, Any], key: str) -> Any:
    for k in (key.encode(), key):
        if k in batch:
            return batch[k]
    raise KeyError(key)


def _parse_python(path: Path, label_key: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    batch = safe_unpickle(read_bytes(path, "CIFAR"), path)
    if not isinstance(batch, dict):
        raise _corrupted(path, f"holds a {type(batch).__name__}, expected a dict")
    try:
        data, labels = _get(batch, "data"), _get(batch, label_key)
    except KeyError as exc:
        raise _corrupted(path, f"has no {exc.args[0]!r} entry") from None
    data = np.asarray(data)
    labels = np.asarray(labels, dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != PIXELS:
        raise _corrupted(path, f"data is {data.dtype} {data.shape}, expected uint8 [N, {PIXELS}]")
    if labels.shape != (data.shape[0],):
        raise _corrupted(path, f"{labels.shape[0]} labels for {data.shape[0]} images")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise _corrupted(path, f"labels outside 0..{num_classes - 1}")
    return data.reshape(-1, 3, 32, 32), labels


def _concat(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _require(title: str, d: Path, name: str) -> Path:
    path = find_file([d], [name])
    if path is None:
        raise missing_file_error(title, name, [d])
    return path


@DATASETS.register("cifar10")
def load_cifar10(roots: Sequence[Path], *, seed: int = 0) -> RawData:
    """CIFAR-10: 50,000 train / 10,000 test RGB 32x32 images in 10 classes."""
    bin_dirs = candidate_dirs(roots, ("", "cifar10", "cifar-10-batches-bin", "cifar10/cifar-10-batches-bin"))
    py_dirs = candidate_dirs(roots, ("cifar-10-batches-py", "cifar10/cifar-10-batches-py", "cifar10"))
    first = find_file(bin_dirs, ["data_batch_1.bin"])
    if first is not None:
        d = first.parent
        train = _concat([_parse_binary(_require("CIFAR-10", d, f"data_batch_{i}.bin"), 1, 10) for i in range(1, 6)])
        test_path = find_file([d], ["test_batch.bin"])
        partial = test_path is None
        if test_path is None:
            test_path = find_file([d], ["test_batch_first1000.bin"])
        if test_path is None:
            raise missing_file_error("CIFAR-10", "test_batch.bin", [d])
        test = _parse_binary(test_path, 1, 10)
    else:
        first = find_file(py_dirs, ["data_batch_1"])
        if first is None:
            raise missing_file_error("CIFAR-10", "data_batch_1.bin", bin_dirs + py_dirs)
        d = first.parent
        train = _concat([_parse_python(_require("CIFAR-10", d, f"data_batch_{i}"), "labels", 10) for i in range(1, 6)])
        test = _parse_python(_require("CIFAR-10", d, "test_batch"), "labels", 10)
        partial = False
    return RawData(*train, *test, CIFAR10_CLASSES, test_partial=partial, source=str(d))


@DATASETS.register("cifar100")
def load_cifar100(roots: Sequence[Path], *, seed: int = 0) -> RawData:
    """CIFAR-100: 50,000 train / 10,000 test RGB 32x32 images in 100 (fine) classes."""
    bin_dirs = candidate_dirs(roots, ("", "cifar100", "cifar-100-binary", "cifar100/cifar-100-binary"))
    py_dirs = candidate_dirs(roots, ("cifar-100-python", "cifar100/cifar-100-python", "cifar100"))
    first = find_file(bin_dirs, ["train.bin"])
    if first is not None:
        d = first.parent
        train = _parse_binary(first, 2, 100)
        test = _parse_binary(_require("CIFAR-100", d, "test.bin"), 2, 100)
    else:
        first = find_file(py_dirs, ["train"])
        if first is None:
            raise missing_file_error("CIFAR-100", "train.bin", bin_dirs + py_dirs)
        d = first.parent
        train = _parse_python(first, "fine_labels", 100)
        test = _parse_python(_require("CIFAR-100", d, "test"), "fine_labels", 100)
    return RawData(*train, *test, CIFAR100_CLASSES, source=str(d))
