"""apps/imagenet/distill_imagefolder.py end to end on a tiny image folder (pipeline check only).

Also: the image-folder loader's ``--image-size`` resize and ``--max-per-class`` cap.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

from ddapps.data import load_dataset
from ddapps.errors import ConfigError
from ddapps.synthetic import SyntheticSet

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "apps" / "imagenet" / "distill_imagefolder.py"


def make_folder(root: Path, classes: int = 3, train: int = 6, test: int = 2) -> Path:
    """``root/train/<class>/*.png`` and ``root/test/...``: RGB images of mixed sizes, one colour a class."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, count in (("train", train), ("test", test)):
        for c in range(classes):
            folder = root / split / f"n0{c}"
            folder.mkdir(parents=True)
            for i in range(count):
                size = (72 + 8 * (i % 3), 64 + 4 * (i % 2))
                base = np.zeros((size[1], size[0], 3))
                base[..., c] = 200
                pixels = np.clip(base + rng.normal(0, 30, base.shape), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("distill_imagefolder", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_image_folder_is_resized_and_capped(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "folder")
    real = load_dataset("imagefolder", root, image_size=32, max_per_class=4)
    assert real.image_size == (32, 32) and real.channels == 3 and real.class_names == ("n00", "n01", "n02")
    assert real.train.class_counts().tolist() == [4, 4, 4] and len(real.test) == 6
    assert torch.equal(load_dataset("imagefolder", root, image_size=32, max_per_class=4).train.images, real.train.images)
    with pytest.raises(ConfigError, match="does not take --image-size"):
        load_dataset("digits", image_size=32)


def test_script_runs_teacher_distillation_and_evaluation(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "folder")
    out = tmp_path / "run"
    argv = [
        "--data-dir", str(root), "--image-size", "64", "--out", str(out), "--ipc", "1", "--teacher-epochs", "1",
        "--teacher-options", '{"width": 4}', "--n-eval", "1", "--eval-epochs", "1", "--threads", "1", "--quiet",
        "--set", "sre2l.iterations=2", "--set", "sre2l.relabel_batch=8", "--set", "rded.mipc=4", "--set", "rded.num_crop=2",
    ]  # fmt: skip
    assert load_script().main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    rows = {row["method"]: row for row in results["rows"]}
    assert set(rows) == {"sre2l", "rded"}
    for method, row in rows.items():
        assert row["distill_seconds"] > 0 and "peak_mem_mb" in row and row["regime"] == "kd"
        assert 0 <= row["acc_mean"] <= 100
        synset = SyntheticSet.load(out / f"{method}-ipc1" / "synset.safetensors")
        assert synset.images.shape == (3, 3, 64, 64) and synset.soft_labels
        assert row["stored_floats"] == synset.images.numel() + synset.labels.numel()
    assert (out / "teacher.safetensors").is_file() and (out / "report.md").is_file()
    # a second run reuses the saved teacher (verified by hash) and refuses a bad option in one line
    assert load_script().main([*argv[:4], "--out", str(out), "--methods", "nope"]) == 2


@pytest.mark.slow
def test_script_splits_the_units_over_two_ranks_with_the_single_process_result(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "folder")
    common = [
        "--data-dir", str(root), "--image-size", "32", "--ipc", "1", "--teacher-epochs", "1", "--teacher-options",
        '{"width": 4}', "--n-eval", "1", "--eval-epochs", "1", "--threads", "1", "--quiet", "--regime", "stored",
        "--set", "sre2l.iterations=2", "--set", "sre2l.batch_classes=1", "--set", "rded.mipc=4",
    ]  # fmt: skip
    assert load_script().main([*common, "--out", str(tmp_path / "one")]) == 0
    two = tmp_path / "two"
    two.mkdir()
    (two / "teacher.safetensors").write_bytes((tmp_path / "one" / "teacher.safetensors").read_bytes())
    assert load_script().main([*common, "--out", str(two), "--nproc", "2"]) == 0
    for method in ("sre2l", "rded"):
        single = SyntheticSet.load(tmp_path / "one" / f"{method}-ipc1" / "synset.safetensors")
        split = SyntheticSet.load(two / f"{method}-ipc1" / "synset.safetensors")
        assert split.meta["world_size"] == 2
        assert torch.equal(split.images, single.images) and torch.equal(split.labels, single.labels)
    rows = json.loads((two / "results.json").read_text())["rows"]
    assert all(row["world_size"] == 2 and "peak_mem_mb" in row for row in rows)
