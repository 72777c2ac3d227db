"""SyntheticSet: validation, round trip, and refusal of corrupted or hostile files."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch

from ddapps.errors import SyntheticSetError
from ddapps.synthetic import SyntheticSet


def make_set(soft: bool = False) -> SyntheticSet:
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(6, 1, 8, 8, generator=gen)
    labels = torch.randn(6, 3, generator=gen) if soft else torch.tensor([0, 0, 1, 1, 2, 2])
    return SyntheticSet(images=images, labels=labels, num_classes=3, lr=torch.tensor(0.02), meta={"method": "t", "ipc": 2})


@pytest.mark.parametrize("soft", [False, True])
def test_round_trip_is_exact(tmp_path: Path, soft: bool) -> None:
    original = make_set(soft)
    path = original.save(tmp_path / "s.safetensors")
    loaded = SyntheticSet.load(path)
    assert torch.equal(loaded.images, original.images)
    assert torch.equal(loaded.labels, original.labels)
    assert float(loaded.lr) == pytest.approx(0.02)
    assert loaded.meta == original.meta and loaded.soft_labels == soft
    assert json.loads((tmp_path / "s.json").read_text())["meta"]["ipc"] == 2


def test_factorized_round_trip_and_honest_storage(tmp_path: Path) -> None:
    images = torch.randn(2, 1, 8, 8)
    synset = SyntheticSet(
        images=None, labels=torch.tensor([0, 1]), num_classes=2, factors={"images": images},
        factorization="multiformation", factorization_config={"factor": 2},
    )
    decoded, labels = synset.training_data()
    assert decoded.shape == (8, 1, 8, 8) and labels.tolist() == [0] * 4 + [1] * 4
    assert synset.stored_floats() == images.numel()  # 2 images stored, 8 trained on
    loaded = SyntheticSet.load(synset.save(tmp_path / "f"))
    assert torch.equal(loaded.training_data()[0], decoded)


def test_to_dataset_yields_pairs() -> None:
    ds = make_set().to_dataset()
    x, y = ds[3]
    assert x.shape == (1, 8, 8) and int(y) == 1 and len(ds) == 6


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"images": torch.full((2, 1, 4, 4), float("nan")), "labels": torch.tensor([0, 1])}, "NaN"),
        ({"images": torch.zeros(2, 4, 4), "labels": torch.tensor([0, 1])}, "images must be"),
        ({"images": torch.zeros(2, 1, 4, 4), "labels": torch.tensor([0, 5])}, "labels must lie"),
        ({"images": torch.zeros(2, 1, 4, 4), "labels": torch.tensor([0])}, "hard labels"),
    ],
)
def test_invalid_sets_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(SyntheticSetError, match=message):
        SyntheticSet(num_classes=2, **kwargs)


def test_truncated_file_gives_clear_error(tmp_path: Path) -> None:
    path = make_set().save(tmp_path / "s.safetensors")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(SyntheticSetError, match="not a valid safetensors"):
        SyntheticSet.load(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SyntheticSetError, match="not found"):
        SyntheticSet.load(tmp_path / "nope.safetensors")


def _write_raw_safetensors(path: Path, header: dict, payload: bytes = b"") -> None:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + payload)


def test_hostile_metadata_is_rejected_without_executing(tmp_path: Path) -> None:
    # a pickle-looking payload and an unknown decoder name: neither may be executed or looked up
    payload = torch.zeros(2, dtype=torch.int64).numpy().tobytes()
    header = {
        "labels": {"dtype": "I64", "shape": [2], "data_offsets": [0, len(payload)]},
        "__metadata__": {"ddapps": json.dumps({
            "schema_version": 1, "num_classes": 2, "factorization": "os.system", "meta": {},
        })},
    }
    path = tmp_path / "evil.safetensors"
    _write_raw_safetensors(path, header, payload)
    with pytest.raises(SyntheticSetError, match="factorization"):
        SyntheticSet.load(path)


def test_header_without_ddapps_metadata(tmp_path: Path) -> None:
    path = tmp_path / "plain.safetensors"
    _write_raw_safetensors(path, {"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0\0\0\0")
    with pytest.raises(SyntheticSetError, match="no ddapps metadata"):
        SyntheticSet.load(path)


def test_wrong_schema_version(tmp_path: Path) -> None:
    path = make_set().save(tmp_path / "s")
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(path))
    save_file(tensors, str(path), metadata={"ddapps": json.dumps({"schema_version": 99, "num_classes": 3})})
    with pytest.raises(SyntheticSetError, match="schema_version"):
        SyntheticSet.load(path)
