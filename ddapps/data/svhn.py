"""SVHN (Netzer et al., 2011), cropped digits, from torchvision's ``train_32x32.mat``/``test_32x32.mat``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ddapps.data.catalog import DATASETS, RawData
from ddapps.data.paths import candidate_dirs, find_file, missing_file_error, read_bytes
from ddapps.errors import DataError

SVHN_CLASSES = tuple(str(d) for d in range(10))


def _read_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import io

    import scipy.io

    def corrupted(why: str) -> DataError:
        return DataError(f"corrupted SVHN file {path}: {why}; replace it with the official file")

    try:
        source = path if path.suffix == ".mat" else io.BytesIO(read_bytes(path, "SVHN"))
        mat = scipy.io.loadmat(source)
    except DataError:
        raise
    except Exception as exc:  # scipy raises several types for a malformed .mat
        raise corrupted(str(exc)) from None
    if "X" not in mat or "y" not in mat:
        raise corrupted("it lacks the 'X' or 'y' variable")
    x, y = np.asarray(mat["X"]), np.asarray(mat["y"]).reshape(-1).astype(np.int64)
    if x.ndim != 4 or x.shape[:3] != (32, 32, 3) or x.shape[3] != y.shape[0]:
        raise corrupted(f"X is {x.shape} and y has {y.shape[0]} labels; expected [32, 32, 3, N] and N")
    if y.size and (y.min() < 0 or y.max() > 10):
        raise corrupted("labels outside 0..10")
    y[y == 10] = 0  # SVHN stores the digit 0 as label 10
    return np.ascontiguousarray(x.transpose(3, 2, 0, 1)).astype(np.uint8, copy=False), y


@DATASETS.register("svhn")
def load_svhn(roots: Sequence[Path], *, seed: int = 0) -> RawData:
    """SVHN: 73,257 train / 26,032 test RGB 32x32 house-number digits."""
    dirs = candidate_dirs(roots, ("", "svhn", "SVHN"))
    parts = []
    for name in ("train_32x32.mat", "test_32x32.mat"):
        path = find_file(dirs, [name])
        if path is None:
            raise missing_file_error("SVHN", name, dirs)
        parts.append(_read_mat(path))
        folder = path.parent
    (train_x, train_y), (test_x, test_y) = parts
    return RawData(train_x, train_y, test_x, test_y, SVHN_CLASSES, source=str(folder))
