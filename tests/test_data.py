"""Tests of ddapps.data, torchvision DatasetTestCase style: tiny fake files in tmp_path, no downloads.

Each fake writer produces the official on-disk format with a known content, so a test can check that
parsing returns exactly those images and labels. Bodies are marked Prepare / Execute / Assert.
"""

from __future__ import annotations

import gzip
import json
import lzma
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from ddapps.data import (
    DATASETS,
    ZCA,
    Benchmark,
    Split,
    from_tensors,
    load_dataset,
    resolve_data_dir,
)
from ddapps.errors import ConfigError, DataError

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


# ----------------------------------------------------------------------------- fake file writers


def _compress(data: bytes, suffix: str) -> bytes:
    if suffix == ".gz":
        return gzip.compress(data)
    if suffix == ".xz":
        return lzma.compress(data)
    return data


def _write(path: Path, data: bytes, suffix: str = "") -> Path:
    path = path.with_name(path.name + suffix)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_compress(data, suffix))
    return path


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    dims = np.asarray(array.shape, dtype=">u4").tobytes()
    return magic.to_bytes(4, "big") + dims + array.astype(np.uint8).tobytes()


def fake_images(n: int, shape: tuple[int, ...], offset: int = 0) -> np.ndarray:
    """uint8 images whose first two pixels encode their id (offset + index), so rows are unique."""
    rng = np.random.default_rng(offset + n)
    x = rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
    flat = x.reshape(n, -1)
    ids = np.arange(offset, offset + n)
    flat[:, 0], flat[:, 1] = ids % 256, ids // 256
    return x


def image_ids(benchmark: Benchmark, split: Split) -> set[int]:
    """Recover the ids written by :func:`fake_images` from normalized images."""
    pix = (benchmark.denormalize(split.images) * 255).round().to(torch.int64).reshape(len(split), -1)
    return set((pix[:, 0] + 256 * pix[:, 1]).tolist())


def balanced_labels(n: int, num_classes: int = 10) -> np.ndarray:
    return (np.arange(n) % num_classes).astype(np.uint8)


def write_mnist(folder: Path, n_train: int = 30, n_test: int = 20, suffix: str = ".gz") -> dict[str, np.ndarray]:
    data = {
        "train_x": fake_images(n_train, (28, 28)),
        "train_y": balanced_labels(n_train),
        "test_x": fake_images(n_test, (28, 28), offset=1000),
        "test_y": balanced_labels(n_test)[::-1].copy(),
    }
    for prefix, x, y in (("train", data["train_x"], data["train_y"]), ("t10k", data["test_x"], data["test_y"])):
        _write(folder / f"{prefix}-images-idx3-ubyte", idx_bytes(x, 2051), suffix)
        _write(folder / f"{prefix}-labels-idx1-ubyte", idx_bytes(y, 2049), suffix)
    return data


def cifar_records(x: np.ndarray, labels: list[np.ndarray]) -> bytes:
    heads = np.stack(labels, axis=1).astype(np.uint8)
    return np.concatenate([heads, x.reshape(len(x), -1)], axis=1).tobytes()


def write_cifar10_bin(
    folder: Path, per_batch: int = 10, suffix: str = "", test_name: str = "test_batch.bin"
) -> dict[str, np.ndarray]:
    xs, ys = [], []
    for i in range(1, 6):
        x, y = fake_images(per_batch, (3, 32, 32), offset=i * 100), balanced_labels(per_batch)
        _write(folder / f"data_batch_{i}.bin", cifar_records(x, [y]), suffix)
        xs.append(x)
        ys.append(y)
    test_x, test_y = fake_images(10, (3, 32, 32), offset=5000), balanced_labels(10)
    _write(folder / test_name, cifar_records(test_x, [test_y]), suffix)
    return {"train_x": np.concatenate(xs), "train_y": np.concatenate(ys), "test_x": test_x, "test_y": test_y}


def write_pickle(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Protocol 4: Python 3's protocol 2 would wrap bytes in _codecs.encode, which the official
    # Python 2 pickles never contain (and the restricted unpickler rightly refuses).
    path.write_bytes(pickle.dumps(obj, protocol=4))


def py2_pickle(data: np.ndarray, labels: list[int]) -> bytes:
    """``{'data': uint8 [N, D], 'labels': [...]}`` as Python 2's cPickle (protocol 2) writes it.

    This is the byte layout of the official CIFAR python-version files: ``str`` keys and the array
    buffer are BINSTRINGs, and the array comes from ``numpy.core.multiarray._reconstruct``.
    """

    def small_int(v: int) -> bytes:
        return b"K" + bytes([v]) if v < 256 else b"M" + struct.pack("<H", v)

    raw = data.astype(np.uint8).tobytes()
    array = (
        b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85U\x01b\x87R"
        b"(K\x01" + small_int(data.shape[0]) + small_int(data.shape[1]) + b"\x86"
        b"cnumpy\ndtype\nU\x02u1K\x00K\x01\x87R"
        b"(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
        b"\x89T" + struct.pack("<I", len(raw)) + raw + b"tb"
    )
    label_list = b"](" + b"".join(small_int(v) for v in labels) + b"e"
    return b"\x80\x02}(U\x04data" + array + b"U\x06labels" + label_list + b"u."


def write_cifar10_py(folder: Path, per_batch: int = 6) -> dict[str, np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    xs, ys = [], []
    for i in range(1, 6):
        x, y = fake_images(per_batch, (3, 32, 32), offset=i * 100), balanced_labels(per_batch)
        (folder / f"data_batch_{i}").write_bytes(py2_pickle(x.reshape(per_batch, -1), y.tolist()))
        xs.append(x)
        ys.append(y)
    test_x, test_y = fake_images(4, (3, 32, 32), offset=5000), balanced_labels(4)
    (folder / "test_batch").write_bytes(py2_pickle(test_x.reshape(4, -1), test_y.tolist()))
    return {"train_x": np.concatenate(xs), "train_y": np.concatenate(ys), "test_x": test_x, "test_y": test_y}


class Hostile:
    """Unpickling this calls os.system: a file that must be refused without running anything."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


# ----------------------------------------------------------------------------- registry and paths


def test_registry_lists_every_dataset() -> None:
    # Execute / Assert
    assert set(DATASETS.names()) == {"cifar10", "cifar100", "digits", "fashion-mnist", "imagefolder", "mnist", "svhn"}
    with pytest.raises(ConfigError, match="choose one of"):
        load_dataset("imagenet-21k")


def test_resolve_data_dir_prefers_argument_then_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare
    monkeypatch.setenv("DDAPPS_DATA", str(tmp_path / "env"))
    # Execute / Assert
    assert resolve_data_dir(None) == (tmp_path / "env").resolve()
    assert resolve_data_dir(tmp_path / "arg") == (tmp_path / "arg").resolve()
    monkeypatch.delenv("DDAPPS_DATA")
    monkeypatch.chdir(tmp_path)
    assert resolve_data_dir(None) == (tmp_path / "data").resolve()


def test_load_uses_ddapps_data_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare
    write_mnist(tmp_path / "mnist")
    monkeypatch.setenv("DDAPPS_DATA", str(tmp_path))
    # Execute
    bench = load_dataset("mnist")
    # Assert
    assert len(bench.train) == 30 and bench.source == str(tmp_path / "mnist")


# ----------------------------------------------------------------------------- digits


def test_digits_shapes_counts_and_stratification() -> None:
    # Execute
    bench = load_dataset("digits")
    # Assert
    assert bench.train.images.shape == (1257, 1, 8, 8) and bench.test.images.shape == (540, 1, 8, 8)
    assert bench.train.images.dtype == torch.float32 and bench.train.labels.dtype == torch.int64
    total = bench.train.class_counts() + bench.test.class_counts()
    assert int(total.sum()) == 1797
    # stratified: each class's test share is 30% up to rounding
    assert torch.all((bench.test.class_counts() - 0.3 * total).abs() <= 1.0)
    assert abs(float(bench.train.images.mean())) < 1e-4 and abs(float(bench.train.images.std()) - 1) < 1e-3
    raw = bench.denormalize(bench.train.images) * 16
    assert torch.allclose(raw, raw.round(), atol=1e-3) and raw.min() >= -1e-3 and raw.max() <= 16 + 1e-3


def test_digits_is_deterministic() -> None:
    # Execute
    a, b = load_dataset("digits"), load_dataset("digits", seed=123)
    # Assert (the split is fixed by random_state=0, whatever the seed)
    assert torch.equal(a.train.images, b.train.images) and torch.equal(a.test.labels, b.test.labels)


def test_describe_is_json_able() -> None:
    # Execute
    info = load_dataset("digits", val_fraction=0.2).describe()
    # Assert
    assert json.loads(json.dumps(info)) == info
    assert {k: info[k] for k in ("name", "num_classes", "channels", "image_size", "n_test", "zca")} == {
        "name": "digits", "num_classes": 10, "channels": 1, "image_size": [8, 8], "n_test": 540, "zca": False,
    }  # fmt: skip
    assert info["n_train"] + info["n_val"] == 1257


# ----------------------------------------------------------------------------- MNIST idx


@pytest.mark.parametrize("suffix", ["", ".gz", ".xz"])
@pytest.mark.parametrize("subdir", ["", "mnist", "MNIST/raw"])
def test_mnist_idx_layouts(tmp_path: Path, subdir: str, suffix: str) -> None:
    # Prepare
    data = write_mnist(tmp_path / subdir, suffix=suffix)
    # Execute
    bench = load_dataset("mnist", tmp_path)
    # Assert
    assert bench.train.images.shape == (30, 1, 28, 28) and bench.test.images.shape == (20, 1, 28, 28)
    assert bench.mean == (0.1307,) and bench.std == (0.3081,)
    assert bench.train.labels.tolist() == data["train_y"].tolist()
    assert bench.test.labels.tolist() == data["test_y"].tolist()
    pixels = (bench.denormalize(bench.test.images) * 255).round().to(torch.uint8)
    assert torch.equal(pixels[:, 0], torch.from_numpy(data["test_x"]))


def test_fashion_mnist_torchvision_layout(tmp_path: Path) -> None:
    # Prepare
    write_mnist(tmp_path / "FashionMNIST" / "raw")
    # Execute
    bench = load_dataset("fashion-mnist", tmp_path)
    # Assert
    assert len(bench.train) == 30 and bench.class_names[0] == "T-shirt/top" and bench.mean == (0.2861,)


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    # Execute
    with pytest.raises(DataError) as info:
        load_dataset("mnist", tmp_path)
    # Assert
    msg = str(info.value)
    assert "train-images-idx3-ubyte.gz" in msg and str(tmp_path) in msg and "DDAPPS_DATA" in msg
    assert "\n" not in msg


def test_missing_label_file_names_it(tmp_path: Path) -> None:
    # Prepare
    write_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    # Execute / Assert
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte"):
        load_dataset("mnist", tmp_path)


def test_idx_bad_magic(tmp_path: Path) -> None:
    # Prepare
    write_mnist(tmp_path, suffix="")
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(idx_bytes(np.zeros((30, 28, 28), np.uint8), 2049))  # a labels magic on images
    # Execute / Assert
    with pytest.raises(DataError, match=r"corrupted idx file .*train-images-idx3-ubyte: magic number 2049"):
        load_dataset("mnist", tmp_path)


def test_idx_truncated(tmp_path: Path) -> None:
    # Prepare
    write_mnist(tmp_path, suffix=".gz")
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-100]))
    # Execute
    with pytest.raises(DataError) as info:
        load_dataset("mnist", tmp_path)
    # Assert
    assert "corrupted idx file" in str(info.value) and "truncated" in str(info.value)
    assert "\n" not in str(info.value)


def test_broken_gzip_stream(tmp_path: Path) -> None:
    # Prepare
    write_mnist(tmp_path, suffix=".gz")
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b not really gzip")
    # Execute / Assert
    with pytest.raises(DataError, match="corrupted .*train-labels-idx1-ubyte.gz"):
        load_dataset("mnist", tmp_path)


def test_image_and_label_counts_must_agree(tmp_path: Path) -> None:
    # Prepare
    write_mnist(tmp_path, suffix="")
    _write(tmp_path / "train-labels-idx1-ubyte", idx_bytes(balanced_labels(29), 2049))
    # Execute / Assert
    with pytest.raises(DataError, match="30 images but 29 labels"):
        load_dataset("mnist", tmp_path)


# ----------------------------------------------------------------------------- CIFAR


@pytest.mark.parametrize("suffix", ["", ".gz", ".xz"])
@pytest.mark.parametrize("subdir", ["", "cifar10", "cifar-10-batches-bin"])
def test_cifar10_binary(tmp_path: Path, subdir: str, suffix: str) -> None:
    # Prepare
    data = write_cifar10_bin(tmp_path / subdir, suffix=suffix)
    # Execute
    bench = load_dataset("cifar10", tmp_path)
    # Assert
    assert bench.train.images.shape == (50, 3, 32, 32) and bench.test.images.shape == (10, 3, 32, 32)
    assert bench.train.labels.tolist() == data["train_y"].tolist()
    assert bench.class_names[0] == "airplane" and bench.std == (0.2023, 0.1994, 0.2010)
    pixels = (bench.denormalize(bench.train.images) * 255).round().to(torch.uint8)
    assert torch.equal(pixels, torch.from_numpy(data["train_x"]))
    assert bench.describe()["test_partial"] is False


def test_cifar10_partial_test_batch(tmp_path: Path) -> None:
    # Prepare: the layout of shared/data/cifar10
    write_cifar10_bin(tmp_path / "cifar10", suffix=".xz", test_name="test_batch_first1000.bin")
    # Execute
    bench = load_dataset("cifar10", tmp_path)
    # Assert
    assert len(bench.test) == 10 and bench.test_partial and bench.describe()["test_partial"] is True


def test_cifar10_truncated_record(tmp_path: Path) -> None:
    # Prepare
    write_cifar10_bin(tmp_path)
    path = tmp_path / "data_batch_3.bin"
    path.write_bytes(path.read_bytes()[:-5])
    # Execute / Assert
    with pytest.raises(DataError, match=r"corrupted CIFAR file .*data_batch_3.bin"):
        load_dataset("cifar10", tmp_path)


def test_cifar10_python_version(tmp_path: Path) -> None:
    # Prepare
    data = write_cifar10_py(tmp_path / "cifar-10-batches-py")
    # Execute
    bench = load_dataset("cifar10", tmp_path)
    # Assert
    assert bench.train.images.shape == (30, 3, 32, 32) and len(bench.test) == 4
    assert bench.train.labels.tolist() == data["train_y"].tolist()
    pixels = (bench.denormalize(bench.test.images) * 255).round().to(torch.uint8)
    assert torch.equal(pixels, torch.from_numpy(data["test_x"]))


def test_hostile_cifar_pickle_is_refused_and_not_run(tmp_path: Path) -> None:
    # Prepare
    write_cifar10_py(tmp_path / "cifar-10-batches-py")
    marker = tmp_path / "pwned"
    write_pickle(tmp_path / "cifar-10-batches-py" / "data_batch_2", {b"data": Hostile(marker), b"labels": []})
    # Execute
    with pytest.raises(DataError) as info:
        load_dataset("cifar10", tmp_path)
    # Assert
    assert not marker.exists()
    assert "unsafe or corrupted pickle" in str(info.value) and "data_batch_2" in str(info.value)
    assert "system" in str(info.value)
    # ... and the payload is real: plain pickle would have run it
    pickle.loads((tmp_path / "cifar-10-batches-py" / "data_batch_2").read_bytes())
    assert marker.exists()


def test_pickle_with_other_numpy_global_is_refused(tmp_path: Path) -> None:
    # Prepare: a global from numpy outside the four allowed names
    write_cifar10_py(tmp_path / "cifar-10-batches-py")
    write_pickle(tmp_path / "cifar-10-batches-py" / "test_batch", {b"data": np.load, b"labels": []})
    # Execute / Assert
    with pytest.raises(DataError, match="refused to load global"):
        load_dataset("cifar10", tmp_path)


def test_cifar100_binary_uses_fine_labels(tmp_path: Path) -> None:
    # Prepare
    x = fake_images(20, (3, 32, 32))
    fine, coarse = (np.arange(20) * 5 % 100).astype(np.uint8), (np.arange(20) % 20).astype(np.uint8)
    _write(tmp_path / "cifar-100-binary" / "train.bin", cifar_records(x, [coarse, fine]), ".gz")
    _write(tmp_path / "cifar-100-binary" / "test.bin", cifar_records(x[:5], [coarse[:5], fine[:5]]))
    # Execute
    bench = load_dataset("cifar100", tmp_path)
    # Assert
    assert bench.num_classes == 100 and bench.train.labels.tolist() == fine.tolist()
    assert len(bench.test) == 5 and bench.class_names[99] == "worm"
    assert bench.train.class_counts().shape == (100,)


def test_cifar100_python_version(tmp_path: Path) -> None:
    # Prepare: re-pickled by Python 3 (protocol 4), as some mirrors ship it
    x, fine = fake_images(8, (3, 32, 32)), [3, 99, 0, 7, 3, 99, 0, 7]
    for name in ("train", "test"):
        write_pickle(
            tmp_path / "cifar-100-python" / name,
            {b"data": x.reshape(8, -1), b"fine_labels": fine, b"coarse_labels": [1] * 8},
        )
    # Execute
    bench = load_dataset("cifar100", tmp_path)
    # Assert
    assert bench.train.labels.tolist() == fine and bench.test.images.shape == (8, 3, 32, 32)


def test_cifar100_missing(tmp_path: Path) -> None:
    # Execute / Assert
    with pytest.raises(DataError, match="CIFAR-100 file train.bin not found"):
        load_dataset("cifar100", tmp_path)


# ----------------------------------------------------------------------------- SVHN


def test_svhn_mat_files(tmp_path: Path) -> None:
    # Prepare
    import scipy.io

    for name, n in (("train_32x32.mat", 12), ("test_32x32.mat", 5)):
        x = fake_images(n, (3, 32, 32)).transpose(2, 3, 1, 0)  # SVHN stores [H, W, C, N]
        y = (np.arange(n) % 10 + 1).reshape(-1, 1)  # digits 1..10, 10 meaning 0
        (tmp_path / "svhn").mkdir(exist_ok=True)
        scipy.io.savemat(tmp_path / "svhn" / name, {"X": x, "y": y})
    # Execute
    bench = load_dataset("svhn", tmp_path)
    # Assert
    assert bench.train.images.shape == (12, 3, 32, 32) and len(bench.test) == 5
    assert bench.train.labels.tolist() == [1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2]
    pixels = (bench.denormalize(bench.train.images) * 255).round().to(torch.uint8)
    assert torch.equal(pixels, torch.from_numpy(fake_images(12, (3, 32, 32))))


# ----------------------------------------------------------------------------- image folders


def _write_pngs(folder: Path, per_class: dict[str, int], size: tuple[int, int] = (6, 5), mode: str = "RGB") -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls, n in per_class.items():
        (folder / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(folder / cls / f"{i}.png")


def test_imagefolder_train_test(tmp_path: Path) -> None:
    # Prepare
    _write_pngs(tmp_path / "train", {"cat": 3, "dog": 4})
    _write_pngs(tmp_path / "test", {"cat": 1, "dog": 2})
    # Execute
    bench = load_dataset("imagefolder", tmp_path)
    # Assert
    assert bench.class_names == ("cat", "dog") and bench.channels == 3 and bench.image_size == (5, 6)
    assert bench.train.class_counts().tolist() == [3, 4] and bench.test.labels.tolist() == [0, 1, 1]
    assert abs(float(bench.train.images.mean())) < 1e-4  # statistics of the training split


def test_imagefolder_flat_is_split_stratified(tmp_path: Path) -> None:
    # Prepare
    _write_pngs(tmp_path, {"a": 10, "b": 5, "c": 20}, mode="L")
    # Execute
    first, again = load_dataset("imagefolder", tmp_path, seed=1), load_dataset("imagefolder", tmp_path, seed=1)
    # Assert
    assert first.channels == 1 and first.test.class_counts().tolist() == [2, 1, 4]
    assert first.train.class_counts().tolist() == [8, 4, 16]
    assert torch.equal(first.test.images, again.test.images)


def test_imagefolder_mixed_sizes(tmp_path: Path) -> None:
    # Prepare
    _write_pngs(tmp_path, {"a": 2})
    _write_pngs(tmp_path, {"b": 2}, size=(7, 7))
    # Execute / Assert
    with pytest.raises(DataError, match="7x7 .* resize"):
        load_dataset("imagefolder", tmp_path)


# ----------------------------------------------------------------------------- from_tensors


def test_from_tensors_normalizes_with_train_stats() -> None:
    # Prepare
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(40, 3, 4, 4, generator=gen), torch.arange(40) % 4
    # Execute
    bench = from_tensors(x, y, x[:8], y[:8], num_classes=5)
    # Assert
    per_channel = bench.train.images.transpose(0, 1).reshape(3, -1)
    assert torch.allclose(per_channel.mean(1), torch.zeros(3), atol=1e-5)
    assert torch.allclose(per_channel.std(1, unbiased=False), torch.ones(3), atol=1e-4)
    assert torch.allclose(bench.denormalize(bench.train.images), x, atol=1e-5)
    assert bench.num_classes == 5 and bench.train.class_counts().tolist() == [10, 10, 10, 10, 0]
    assert torch.equal(x, torch.rand(40, 3, 4, 4, generator=torch.Generator().manual_seed(0)))  # input untouched


def test_from_tensors_without_test_and_uint8() -> None:
    # Execute
    bench = from_tensors(torch.full((4, 1, 2, 2), 255, dtype=torch.uint8), torch.tensor([0, 1, 0, 1]), normalize=False)
    # Assert
    assert len(bench.test) == 0 and bench.num_classes == 2 and torch.all(bench.train.images == 1.0)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_from_tensors_rejects_nan_and_inf(bad: float) -> None:
    # Prepare
    x = torch.rand(4, 1, 3, 3)
    x[2, 0, 1, 1] = bad
    # Execute / Assert
    with pytest.raises(DataError, match="contains NaN"):
        from_tensors(x, torch.tensor([0, 1, 0, 1]))


@pytest.mark.parametrize(
    ("images", "labels", "kwargs", "match"),
    [
        (torch.rand(4, 3, 3), torch.zeros(4, dtype=torch.long), {}, "4-D"),
        (torch.rand(4, 1, 3, 3), torch.zeros(3, dtype=torch.long), {}, "1-D with 4 entries"),
        (torch.rand(4, 1, 3, 3), torch.zeros(4), {}, "integer class ids"),
        (torch.rand(4, 1, 3, 3), torch.tensor([0, 1, 2, 3]), {"num_classes": 3}, r"\[0, 3\)"),
        (torch.rand(4, 1, 3, 3), torch.tensor([0, -1, 2, 3]), {}, "labels must lie"),
    ],
)
def test_from_tensors_validates(images: torch.Tensor, labels: torch.Tensor, kwargs: dict, match: str) -> None:
    # Execute / Assert
    with pytest.raises(DataError, match=match):
        from_tensors(images, labels, **kwargs)


def test_from_tensors_test_shape_must_match() -> None:
    # Execute / Assert
    with pytest.raises(DataError, match="one shape"):
        from_tensors(
            torch.rand(4, 1, 3, 3), torch.zeros(4, dtype=torch.long),
            torch.rand(2, 1, 4, 4), torch.zeros(2, dtype=torch.long),
        )  # fmt: skip


# ----------------------------------------------------------------------------- Split and class index


@pytest.fixture
def split() -> Split:
    labels = torch.tensor([2, 0, 1, 2, 2, 0, 1, 2, 0, 2])
    images = torch.arange(10, dtype=torch.float32).view(10, 1, 1, 1).expand(10, 1, 2, 2).clone()
    return Split(images, labels, num_classes=4)


def test_class_index(split: Split) -> None:
    # Execute / Assert
    assert split.class_indices(2).tolist() == [0, 3, 4, 7, 9]
    assert split.class_indices(3).tolist() == []
    assert split.class_counts().tolist() == [3, 2, 5, 0] and len(split) == 10
    assert split.class_indices(2) is split.class_indices(2)  # computed once, cached
    assert split.first_of_class(0, 2)[:, 0, 0, 0].tolist() == [1.0, 5.0]
    with pytest.raises(ConfigError, match="out of range"):
        split.class_indices(4)


def test_sample_class_is_deterministic_with_a_generator(split: Split) -> None:
    # Execute
    a = split.sample_class(2, 3, torch.Generator().manual_seed(7))
    b = split.sample_class(2, 3, torch.Generator().manual_seed(7))
    torch.manual_seed(123)  # the global RNG must not matter
    c = split.sample_class(2, 3, torch.Generator().manual_seed(7))
    # Assert
    ids = a[:, 0, 0, 0].tolist()
    assert torch.equal(a, b) and torch.equal(a, c)
    assert len(set(ids)) == 3 and set(ids) <= {0.0, 3.0, 4.0, 7.0, 9.0}
    draws = {tuple(split.sample_class(2, 3, torch.Generator().manual_seed(s))[:, 0, 0, 0].tolist()) for s in range(10)}
    assert len(draws) > 1


def test_sample_class_more_than_available_returns_whole_class(split: Split) -> None:
    # Execute
    out = split.sample_class(1, 50, torch.Generator().manual_seed(0))
    # Assert
    assert sorted(out[:, 0, 0, 0].tolist()) == [2.0, 6.0]


def test_subset_keeps_num_classes(split: Split) -> None:
    # Execute
    sub = split.subset(torch.tensor([1, 2]))
    # Assert
    assert sub.labels.tolist() == [0, 1] and sub.class_counts().tolist() == [1, 1, 0, 0]


# ----------------------------------------------------------------------------- validation split


def test_val_split_is_disjoint_and_stratified(tmp_path: Path) -> None:
    # Prepare
    data = write_mnist(tmp_path, n_train=200, n_test=20)
    # Execute
    bench = load_dataset("mnist", tmp_path, val_fraction=0.25, seed=3)
    again = load_dataset("mnist", tmp_path, val_fraction=0.25, seed=3)
    other = load_dataset("mnist", tmp_path, val_fraction=0.25, seed=4)
    # Assert
    assert bench.val is not None and again.val is not None and other.val is not None
    train_ids, val_ids = image_ids(bench, bench.train), image_ids(bench, bench.val)
    assert train_ids.isdisjoint(val_ids) and train_ids | val_ids == set(range(200))
    assert bench.val.class_counts().tolist() == [5] * 10 and bench.train.class_counts().tolist() == [15] * 10
    assert len(bench.test) == 20 and image_ids(bench, bench.test) == set(range(1000, 1020))  # test untouched
    assert torch.equal(bench.val.images, again.val.images)
    assert image_ids(other, other.val) != val_ids
    assert len(data["train_y"]) == 200


def test_bad_val_fraction() -> None:
    # Execute / Assert
    with pytest.raises(ConfigError, match="val_fraction"):
        load_dataset("digits", val_fraction=1.0)


# ----------------------------------------------------------------------------- ZCA


def _correlated(n: int = 2000, d: int = 12, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    mixing = torch.randn(d, d, generator=gen)
    return (torch.randn(n, d, generator=gen) @ mixing + 3.0).view(n, 3, 2, 2)


def test_zca_whitens_train_covariance() -> None:
    # Prepare
    x = _correlated()
    # Execute
    zca = ZCA.fit(x, eps=1e-6)
    white = zca.apply(x).reshape(len(x), -1).double()
    # Assert
    cov = torch.cov(white.T)
    assert torch.allclose(cov, torch.eye(12, dtype=torch.float64), atol=1e-3)
    assert torch.allclose(white.mean(0), torch.zeros(12, dtype=torch.float64), atol=1e-4)
    assert torch.allclose(zca.matrix, zca.matrix.T, atol=1e-5)  # ZCA, not PCA: W is symmetric


def test_zca_regularization_shrinks_small_directions() -> None:
    # Prepare
    x = _correlated()
    # Execute
    cov = torch.cov(ZCA.fit(x, eps=0.1).apply(x).reshape(len(x), -1).double().T)
    # Assert: eigenvalues S/(S+eps') stay below 1
    evals = torch.linalg.eigvalsh(cov)
    assert float(evals.max()) < 1.0 and float(evals.min()) > 0.0


def test_zca_inverse_roundtrip_and_state_dict(tmp_path: Path) -> None:
    # Prepare
    from safetensors.torch import load_file, save_file

    x = _correlated()
    zca = ZCA.fit(x, eps=0.1)
    # Execute
    save_file(zca.state_dict(), tmp_path / "zca.safetensors")
    restored = ZCA.from_state_dict(load_file(tmp_path / "zca.safetensors"))
    # Assert
    assert torch.allclose(zca.inverse(zca.apply(x)), x, atol=1e-3)
    assert torch.allclose(restored.inverse(restored.apply(x[:5])), x[:5], atol=1e-3)
    assert torch.equal(restored.apply(x[:5]), zca.apply(x[:5])) and restored.eps == 0.1
    with pytest.raises(DataError, match="fitted on images of 12 values"):
        zca.apply(torch.rand(2, 1, 3, 3))
    with pytest.raises(DataError, match="lacks matrix"):
        ZCA.from_state_dict({"mean": zca.mean})


def test_load_dataset_zca_fits_on_train_and_applies_to_all_splits() -> None:
    # Prepare
    plain = load_dataset("digits", val_fraction=0.1, seed=0)
    # Execute
    bench = load_dataset("digits", zca=True, val_fraction=0.1, seed=0)
    # Assert
    assert bench.zca is not None and bench.describe()["zca"] is True
    expected = ZCA.fit(plain.train.images, eps=0.1)
    assert torch.allclose(bench.zca.matrix, expected.matrix, atol=1e-4)
    assert plain.val is not None and bench.val is not None
    for raw, white in ((plain.train, bench.train), (plain.val, bench.val), (plain.test, bench.test)):
        assert torch.allclose(white.images, bench.zca.apply(raw.images), atol=1e-5)


# ----------------------------------------------------------------------------- real data (slow)


@pytest.mark.slow
def test_real_mnist_from_shared_data() -> None:
    # Prepare
    folder = SHARED_DATA / "mnist"
    assert (folder / "train-images-idx3-ubyte.gz").is_file(), (
        f"real MNIST is expected in {folder} (../shared/data/mnist next to the repo); "
        "restore the four official .gz files there"
    )
    # Execute
    bench = load_dataset("mnist", SHARED_DATA)
    # Assert
    assert len(bench.train) == 60000 and len(bench.test) == 10000
    counts = bench.train.class_counts()
    assert counts.shape == (10,) and int(counts.sum()) == 60000 and int(bench.test.class_counts().sum()) == 10000
    assert counts.tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert abs(float(bench.train.images.mean())) < 0.01 and abs(float(bench.train.images.std()) - 1) < 0.01
