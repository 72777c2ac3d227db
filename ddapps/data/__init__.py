"""Datasets for distillation: loaders, normalized splits with a class index, and ZCA whitening.

``load_dataset("cifar10", zca=True)`` returns a :class:`Benchmark` whose splits are normalized
(and whitened) tensors; ``from_tensors(...)`` wraps in-memory data the same way. Loaders are
registered in :data:`DATASETS` and find their files under :func:`resolve_data_dir`.
"""

from __future__ import annotations

# Importing the loader modules registers them in DATASETS.
from ddapps.data import cifar, digits, imagefolder, mnist, svhn  # noqa: F401
from ddapps.data.benchmark import Benchmark
from ddapps.data.catalog import DATASETS, RawData
from ddapps.data.load import from_tensors, load_dataset
from ddapps.data.paths import resolve_data_dir
from ddapps.data.split import Split
from ddapps.data.zca import ZCA

__all__ = [
    "DATASETS",
    "Benchmark",
    "RawData",
    "Split",
    "ZCA",
    "from_tensors",
    "load_dataset",
    "resolve_data_dir",
]
