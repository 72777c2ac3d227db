"""The command line as a user meets it: outputs, one-line errors with exit code 2, no partial files,
bitwise reproducibility, and kill -9 then --resume."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ddapps.cli import main
from ddapps.synthetic import SyntheticSet

DM_FAST = ["--method", "dm", "--set", "batch_real=16", "--set", 'net_options={"width": 16}']


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ddapps.cli", *args], capture_output=True, text=True, timeout=600)


def test_distill_writes_every_output(tmp_path: Path) -> None:
    out = tmp_path / "run"
    code = main(["distill", "--dataset", "digits", *DM_FAST, "--ipc", "1", "--iterations", "3",
                 "--n-eval", "1", "--eval-epochs", "5", "--out", str(out), "--quiet"])
    assert code == 0
    for name in ("synset.safetensors", "synset.json", "config.json", "results.json", "report.md", "grid.png"):
        assert (out / name).is_file(), name
    doc = json.loads((out / "results.json").read_text())
    assert set(doc) == {"ddapps_version", "command", "command_line", "config", "environment", "std", "rows"}
    assert doc["std"].startswith("sample standard deviation (ddof 1)")
    assert {"torch", "device", "threads"} <= set(doc["environment"])
    row = doc["rows"][0]
    for key in ("dataset", "method", "ipc", "acc_mean", "acc_std", "n_eval", "distill_seconds", "peak_mem_mb"):
        assert key in row
    assert 0.0 <= row["acc_mean"] <= 100.0 and row["method"] == "dm"
    assert SyntheticSet.load(out / "synset.safetensors").images.shape == (10, 1, 8, 8)
    assert (out / "grid.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_same_seed_bitwise_identical(tmp_path: Path) -> None:
    sets = []
    for name in ("a", "b"):
        assert main(["distill", "--dataset", "digits", *DM_FAST, "--ipc", "2", "--iterations", "4",
                     "--n-eval", "0", "--seed", "7", "--out", str(tmp_path / name), "--quiet"]) == 0
        sets.append(SyntheticSet.load(tmp_path / name / "synset.safetensors"))
    assert torch.equal(sets[0].images, sets[1].images)


def _assert_one_line_error(done: subprocess.CompletedProcess[str], needle: str) -> None:
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("ddapps: error:") and needle in lines[0], lines[0]


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--dataset", "nope", "--method", "dm", "--ipc", "1"], "unknown dataset"),
        (["--dataset", "digits", "--method", "nope", "--ipc", "1"], "unknown method"),
        (["--dataset", "digits", "--method", "random", "--ipc", "5000"], "smallest class"),
        (["--dataset", "mnist", "--method", "random", "--ipc", "1", "--data-dir", "/nonexistent"], "not found"),
        (["--dataset", "digits", "--method", "dm", "--ipc", "1", "--set", "bogus=1"], "unknown option"),
    ],
)
def test_bad_input_one_line_exit_2_no_output(tmp_path: Path, args: list[str], needle: str) -> None:
    out = tmp_path / "out"
    done = run_cli("distill", *args, "--out", str(out), "--quiet")
    _assert_one_line_error(done, needle)
    assert not out.exists() or not any(out.iterdir())


def test_corrupted_idx_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    with gzip.open(data / "train-images-idx3-ubyte.gz", "wb") as handle:
        handle.write(b"\x00\x00\x08\x03garbage")
    for name in ("train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        with gzip.open(data / name, "wb") as handle:
            handle.write(b"\x00")
    done = run_cli("distill", "--dataset", "mnist", "--data-dir", str(data), "--method", "random", "--ipc", "1",
                   "--out", str(tmp_path / "out"), "--quiet")
    _assert_one_line_error(done, "idx")
    assert not (tmp_path / "out").exists()


def test_truncated_synset_on_evaluate(tmp_path: Path) -> None:
    path = tmp_path / "s.safetensors"
    SyntheticSet(images=torch.zeros(10, 1, 8, 8), labels=torch.arange(10), num_classes=10).save(path)
    path.write_bytes(path.read_bytes()[:50])
    done = run_cli("evaluate", str(path), "--dataset", "digits", "--n-eval", "1", "--epochs", "1")
    _assert_one_line_error(done, "safetensors")


def test_nan_tensor_dataset_is_refused() -> None:
    from ddapps.data import from_tensors
    from ddapps.errors import DataError

    images = torch.zeros(4, 1, 8, 8)
    images[0, 0, 0, 0] = float("nan")
    with pytest.raises(DataError, match="NaN"):
        from_tensors(images, torch.tensor([0, 0, 1, 1]))


@pytest.mark.slow
def test_kill_9_then_resume_matches_uninterrupted(tmp_path: Path) -> None:
    common = ["distill", "--dataset", "digits", *DM_FAST, "--ipc", "2", "--iterations", "40",
              "--checkpoint-every", "5", "--n-eval", "0", "--seed", "11", "--quiet"]
    assert main(common + ["--out", str(tmp_path / "full")]) == 0
    victim = tmp_path / "victim"
    proc = subprocess.Popen([sys.executable, "-m", "ddapps.cli", *common, "--out", str(victim)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = victim / "checkpoint.safetensors"
    deadline = time.time() + 300
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert ckpt.exists(), "no checkpoint was written before the kill"
    assert not (victim / "synset.safetensors").exists()
    assert main(common + ["--out", str(victim), "--resume"]) == 0
    a = SyntheticSet.load(tmp_path / "full" / "synset.safetensors")
    b = SyntheticSet.load(victim / "synset.safetensors")
    assert torch.equal(a.images, b.images)


def test_same_command_and_seed_write_a_byte_identical_set(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import hashlib

    digests = []
    for name in ("a", "b"):
        args = ["distill", "--dataset", "digits", "--method", "dm", "--ipc", "2", "--iterations", "30", "--seed", "7",
                "--n-eval", "0", "--quiet", "--out", str(tmp_path / name)]  # fmt: skip
        assert main(args) == 0
        digests.append(hashlib.sha256((tmp_path / name / "synset.safetensors").read_bytes()).hexdigest())
    assert digests[0] == digests[1]


def test_distill_starts_from_a_budget_and_the_command_line_wins(tmp_path):
    import json

    from ddapps.budgets import get_budget

    out = tmp_path / "dm"
    assert main(["distill", "--dataset", "digits", "--method", "dm", "--ipc", "1", "--budget", "smoke",
                 "--iterations", "2", "--n-eval", "0", "--out", str(out), "--quiet"]) == 0  # fmt: skip
    config = json.loads((out / "results.json").read_text())["config"]
    smoke = get_budget("smoke").overrides("dm", 1)
    assert config["budget"] == "smoke" and config["method_config"]["iterations"] == 2
    assert all(config["method_config"][k] == v for k, v in smoke.items() if k != "iterations")
    assert main(["distill", "--dataset", "digits", "--method", "dm", "--ipc", "1", "--budget", "huge",
                 "--out", str(tmp_path / "x"), "--quiet"]) == 2  # fmt: skip
