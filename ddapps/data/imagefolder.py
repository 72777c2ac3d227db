"""Images in torchvision's ImageFolder layout: ``<root>/train/<class>/*.png`` and ``<root>/test/...``.

Without ``train``/``test`` folders, ``<root>/<class>/*`` is split 80/20, stratified, with the seed.
Class names are the sorted folder names. They are grayscale (1 channel) when every file is
grayscale, else RGB (3 channels).

Without ``image_size`` images are not resized: all must share one size. With ``image_size=S``
(``--image-size``; 64 for Tiny-ImageNet, 128 or 224 for Imagenette and ImageNet-1k, as the
SRe2L and RDED papers use) each image's shorter side is resized to ``S`` (bilinear, antialiased)
and the centre ``S x S`` is kept, torchvision's ``Resize(S)`` + ``CenterCrop(S)``.
``max_per_class=N`` (``--max-per-class``) reads at most ``N`` training images per class, drawn with
the seed: the whole set is held in memory as float32 (``S*S*3*4`` bytes an image: Tiny-ImageNet at
64 px is 4.9 GB, Imagenette at 224 px 5.7 GB, but ImageNet-1k at 224 px would be 770 GB).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ddapps.data.catalog import DATASETS, RawData
from ddapps.data.stratify import stratified_holdout
from ddapps.errors import ConfigError, DataError
from ddapps.utils.seeding import derive_seed, make_generator

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


def _resize_center(image: Any, size: int) -> Any:
    """Shorter side to ``size`` (bilinear, antialiased), then the centre ``size x size``."""
    from PIL import Image

    width, height = image.size
    scale = size / min(width, height)
    new = (max(size, round(width * scale)), max(size, round(height * scale)))
    gray = image.mode in ("1", "L", "I;16", "I", "F")
    image = image.convert("L" if gray else "RGB").resize(new, Image.Resampling.BILINEAR)
    left, top = (new[0] - size) // 2, (new[1] - size) // 2
    return image.crop((left, top, left + size, top + size))


def _read_images(files: list[Path], resize: int | None = None) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    pics = []
    for f in files:
        try:
            with Image.open(f) as im:
                im.load()
                pics.append(im.copy() if resize is None else _resize_center(im, resize))
        except (OSError, UnidentifiedImageError) as exc:
            raise DataError(f"unreadable image {f}: {exc}; replace or remove it") from None
    gray = all(p.mode in ("1", "L", "I;16", "I", "F") for p in pics)
    size = pics[0].size
    arrays = []
    for f, p in zip(files, pics):
        if p.size != size:
            raise DataError(
                f"image {f} is {p.size[0]}x{p.size[1]} but {files[0]} is {size[0]}x{size[1]}; "
                "resize the images to one size first, or pass --image-size S"
            )
        a = np.asarray(p.convert("L" if gray else "RGB"), dtype=np.uint8)
        arrays.append(a[None] if gray else a.transpose(2, 0, 1))
    # C order: stacking the transposed HWC views keeps their channels-last strides, and a
    # channels-last batch crashed a ResNet's backward pass on CPU (torch 2.14, width 4, 64 px)
    return np.ascontiguousarray(np.stack(arrays))


def _gather(groups: dict[str, list[Path]], classes: list[str]) -> tuple[list[Path], np.ndarray]:
    files: list[Path] = []
    labels: list[int] = []
    for name, paths in groups.items():
        files += paths
        labels += [classes.index(name)] * len(paths)
    return files, np.asarray(labels, dtype=np.int64)


def _cap(groups: dict[str, list[Path]], limit: int | None, seed: int) -> dict[str, list[Path]]:
    """At most ``limit`` files per class, drawn with ``seed`` (kept in sorted order)."""
    if limit is None:
        return groups
    capped = {}
    for name, files in groups.items():
        gen = make_generator(derive_seed(seed, "imagefolder", name))
        keep = sorted(torch.randperm(len(files), generator=gen)[:limit].tolist())
        capped[name] = [files[i] for i in keep]
    return capped


@DATASETS.register("imagefolder")
def load_imagefolder(
    roots: Sequence[Path], *, seed: int = 0, image_size: int | None = None, max_per_class: int | None = None
) -> RawData:
    """Images from ``roots[0]`` (the data dir), one folder per class (see the module docstring)."""
    root = roots[0]
    if image_size is not None and (isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1):
        raise ConfigError(f"image size must be a positive int, got {image_size!r}")
    if max_per_class is not None and (
        isinstance(max_per_class, bool) or not isinstance(max_per_class, int) or max_per_class < 1
    ):
        raise ConfigError(f"max per class must be a positive int, got {max_per_class!r}")
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist; pass --data-dir DIR or set DDAPPS_DATA")
    train_dir, test_dir = root / "train", root / "test"
    if train_dir.is_dir():
        train_groups = _cap(_scan(train_dir), max_per_class, seed)
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
        images = _read_images(train_files + test_files, image_size)
        train_x, test_x = images[: len(train_files)], images[len(train_files) :]
    else:
        groups = _cap(_scan(root), max_per_class, seed)
        classes = list(groups)
        files, labels = _gather(groups, classes)
        images = _read_images(files, image_size)
        keep, held = stratified_holdout(labels, TEST_FRACTION, seed)
        train_x, train_y = images[keep.numpy()], labels[keep.numpy()]
        test_x, test_y = images[held.numpy()], labels[held.numpy()]
    return RawData(train_x, train_y, test_x, test_y, tuple(classes), source=str(root))
