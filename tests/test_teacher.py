"""Teachers: training with a validation split, the hash, safetensors round trip, class-map and hash checks."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from ddapps.cli import main
from ddapps.errors import ConfigError, DataError
from ddapps.synthetic import SyntheticSet
from ddapps.teacher import check_teacher, load_teacher, save_teacher, train_teacher
from ddapps.utils.seeding import make_generator
from tests.conftest import fake_benchmark


@pytest.fixture(scope="module")
def trained():
    real = fake_benchmark()
    val = real.train.subset(torch.arange(0, len(real.train), 3))
    real = dataclasses.replace(real, val=val)
    return real, *train_teacher(
        real, "mlp", {"width": 16}, epochs=20, batch_size=8, generator=make_generator(0), augment=False
    )


def test_train_reports_val_and_test_and_is_deterministic(trained):
    real, teacher, report = trained
    assert report["val_selected"] and 1 <= report["best_epoch"] <= 20
    assert 0 <= report["val_accuracy"] <= 100 and report["test_accuracy"] > 100 / 3  # learnable blobs
    kwargs = {"epochs": 20, "batch_size": 8, "augment": False}
    again, _ = train_teacher(real, "mlp", {"width": 16}, generator=make_generator(0), **kwargs)
    assert again.hash == teacher.hash
    other, _ = train_teacher(real, "mlp", {"width": 16}, generator=make_generator(1), **kwargs)
    assert other.hash != teacher.hash


def test_save_load_round_trip_keeps_hash_and_outputs(trained, tmp_path):
    real, teacher, _ = trained
    path = save_teacher(tmp_path / "t.safetensors", teacher)
    header = json.loads((tmp_path / "t.json").read_text())
    assert header["hash"] == teacher.hash and header["class_names"] == ["0", "1", "2"]
    loaded = load_teacher(path, expect_classes=["0", "1", "2"])
    assert loaded.hash == teacher.hash
    torch.testing.assert_close(loaded.logits(real.test.images), teacher.logits(real.test.images))


def test_class_map_mismatch_is_one_config_error(trained, tmp_path):
    _, teacher, _ = trained
    path = save_teacher(tmp_path / "t.safetensors", teacher)
    with pytest.raises(ConfigError, match="class map differs .* output 0"):
        load_teacher(path, expect_classes=["1", "0", "2"])
    with pytest.raises(ConfigError, match="has 3 classes, the data has 4"):
        load_teacher(path, expect_classes=["0", "1", "2", "3"])


def test_corrupted_or_edited_file_is_a_data_error(trained, tmp_path):
    _, teacher, _ = trained
    path = save_teacher(tmp_path / "t.safetensors", teacher)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF  # a weight byte
    (tmp_path / "w.safetensors").write_bytes(bytes(data))
    with pytest.raises(DataError, match="hash mismatch"):
        load_teacher(tmp_path / "w.safetensors")
    (tmp_path / "cut.safetensors").write_bytes(bytes(data[:50]))
    with pytest.raises(DataError, match="not a valid safetensors"):
        load_teacher(tmp_path / "cut.safetensors")
    renamed = dataclasses.replace(teacher, class_names=["a", "b", "c"])
    with pytest.raises(ConfigError, match="does not match its weights"):
        save_teacher(tmp_path / "r.safetensors", renamed)


def test_check_teacher_compares_the_recorded_hash(trained):
    real, teacher, _ = trained
    images = real.train.images[:3]
    meta = {"teacher_hash": teacher.hash, "dataset": real.describe()}
    synset = SyntheticSet(images=images, labels=torch.arange(3), num_classes=3, meta=meta)
    check_teacher(synset, teacher)
    with pytest.raises(ConfigError, match="made with teacher 0000"):
        check_teacher(dataclasses.replace(synset, meta=meta | {"teacher_hash": "0" * 64}), teacher)
    bare = dataclasses.replace(synset, meta={})
    with pytest.raises(ConfigError, match="records no teacher_hash"):
        check_teacher(bare, teacher)
    check_teacher(bare, teacher, required=False)


def test_cli_trains_then_verifies(tmp_path, capsys):
    out = tmp_path / "digits.safetensors"
    args = ["teacher", "--dataset", "digits", "--net", "mlp", "--epochs", "1", "--no-dsa", "--out", str(out), "--quiet"]
    assert main(args) == 0
    assert "hash" in capsys.readouterr().out and out.exists() and (tmp_path / "digits.train.json").exists()
    assert main(args) == 0
    assert "(verified)" in capsys.readouterr().out
    assert main(args[:-3] + ["--net-options", "[1]", "--out", str(tmp_path / "x.safetensors")]) == 2
    assert "--net-options must be a JSON object" in capsys.readouterr().err


def test_small_datasets_get_at_least_min_steps():
    from ddapps.teacher import epochs_for

    assert epochs_for(5, 500, n_train=1131) == 100  # 5 batches of 256 per epoch
    assert epochs_for(5, 500, n_train=54000) == 5  # 211 batches per epoch: the budget's epochs suffice
    assert epochs_for(5, 0, n_train=10) == 5
