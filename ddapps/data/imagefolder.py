"""Images in torchvision's ImageFolder layout: ``<root>/train/<class>/*.png`` and ``<root>/test/...``.

Without ``train``/``test`` folders, ``<root>/<class>/*`` is split 80/20, stratified, with the seed.
Class names are the sorted folder names. Images are not resized: all must share one size. They are
grayscale (1 channel) when every file is grayscale, else RGB (3 channels).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ddapps.data.catalog import DATASETS, RawData
from ddapps.data.stratify import stratified_holdout
from ddapps.errors import DataError

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
TEST_FRACTION = 0.2


def _scan(folder: Path) -> dict[str, list[Path]]:
    classes = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    found: dict[str, list[Path]] = {}
    for d in classes:
        files = sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in EXTENSIONS)
        if not files:
            raise DataError(
                f"image folder {d} holds no {'/'.join(EXTENSIONS)} files; remove it or add the class's images"
            )
        found[d.name] = files
    if not found:
        raise DataError(
            f"no class folders in {folder}; expected {folder}/<class>/*.png (or train/ and test/ "
            "folders of that shape); pass --data-dir DIR pointing at such a folder"
        )
    return found


def _read_images(files: list[Path]) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    pics = []
    for f in files:
        try:
            with Image.open(f) as im:
                im.load()
                pics.append(im.copy())
        except (OSError, UnidentifiedImageError) as exc:
            raise DataError(f"unreadable image {f}: {exc}; replace or remove it") from None
    gray = all(p.mode in ("1", "L", "I;16", "I", "F") for p in pics)
    size = pics[0].size
    arrays = []
    for f, p in zip(files, pics):
        if p.size != size:
            raise DataError(
                f"image {f} is {p.size[0]}x{p.size[1]} but {files[0]} is {size[0]}x{size[1]}; "
                "resize the images to one size first"
            )
        a = np.asarray(p.convert("L" if gray else "RGB"), dtype=np.uint8)
        arrays.append(a[None] if gray else a.transpose(2, 0, 1))
    return np.stack(arrays)


def _gather(groups: dict[str, list[Path]], classes: list[str]) -> tuple[list[Path], np.ndarray]:
    files: list[Path] = []
    labels: list[int] = []
    for name, paths in groups.items():
        files += paths
        labels += [classes.index(name)] * len(paths)
    return files, np.asarray(labels, dtype=np.int64)


@DATASETS.register("imagefolder")
def load_imagefolder(roots: Sequence[Path], *, seed: int = 0) -> RawData:
    """Images from ``roots[0]`` (the data dir), one folder per class."""
    root = roots[0]
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist; pass --data-dir DIR or set DDAPPS_DATA")
    train_dir, test_dir = root / "train", root / "test"
    if train_dir.is_dir():
        train_groups = _scan(train_dir)
        classes = list(train_groups)
        test_groups = _scan(test_dir) if test_dir.is_dir() else {}
        unknown = sorted(set(test_groups) - set(classes))
        if unknown:
            raise DataError(
                f"test classes {', '.join(unknown)} in {test_dir} have no folder in {train_dir}; "
                "give train/ a folder for every class"
            )
        train_files, train_y = _gather(train_groups, classes)
        test_files, test_y = _gather(test_groups, classes)
        images = _read_images(train_files + test_files)
        train_x, test_x = images[: len(train_files)], images[len(train_files) :]
    else:
        groups = _scan(root)
        classes = list(groups)
        files, labels = _gather(groups, classes)
        images = _read_images(files)
        keep, held = stratified_holdout(labels, TEST_FRACTION, seed)
        train_x, train_y = images[keep.numpy()], labels[keep.numpy()]
        test_x, test_y = images[held.numpy()], labels[held.numpy()]
    return RawData(train_x, train_y, test_x, test_y, tuple(classes), source=str(root))
