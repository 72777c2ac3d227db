"""scikit-learn's bundled digits (UCI optdigits): 1,797 real 8x8 images, no files needed.

Pixel values 0..16 are scaled by 1/16. The train/test split is fixed: ``train_test_split(
test_size=0.3, stratify=y, random_state=0)``, so every run and every machine sees the same split.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ddapps.data.catalog import DATASETS, RawData


@DATASETS.register("digits")
def load_digits(roots: Sequence[Path], *, seed: int = 0) -> RawData:
    """1,257 train / 540 test grayscale 8x8 digits (``seed`` is ignored: the split is fixed)."""
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    bunch = sk_load_digits()
    images = bunch.images.astype(np.float32)[:, None]  # [N, 1, 8, 8], values 0..16
    labels = bunch.target.astype(np.int64)
    train_x, test_x, train_y, test_y = train_test_split(images, labels, test_size=0.3, stratify=labels, random_state=0)
    classes = tuple(str(d) for d in range(10))
    return RawData(train_x, train_y, test_x, test_y, classes, scale=16.0, source="sklearn.datasets.load_digits")
