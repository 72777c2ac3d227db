"""``ddapps nas rank`` / ``ddapps nas search`` from the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ddapps.cli import main


def test_nas_cli_imports_and_parses_without_nni() -> None:
    code = (
        "import sys\n"
        "for name in ('nni', 'pytorch_lightning'): sys.modules[name] = None\n"
        "from ddapps.cli import build_parser\n"
        "args = build_parser().parse_args(['nas', 'rank', '--dataset', 'mnist', '--out', 'x'])\n"
        "print(args.nas_command, args.sample, args.proxy)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["rank", "None", "distilled:dm"]  # --sample: 24 (convnet720) or 30 (nas-bench-201)


@pytest.mark.parametrize(
    "extra",
    [["--proxy", "dm"], ["--proxy", "distilled:nosuch"], ["--space", "nosuch"], ["--width-scale", "2"], ["--proxy-steps", "0"]],
)
def test_bad_arguments_are_one_line_errors(extra, tmp_path, capsys) -> None:
    code = main(["nas", "rank", "--dataset", "digits", "--out", str(tmp_path), *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("ddapps: error:")


@pytest.mark.slow
def test_rank_command_end_to_end_on_digits(tmp_path: Path) -> None:
    out = tmp_path / "rank"
    code = main([
        "nas", "rank", "--dataset", "digits", "--sample", "4", "--reference-steps", "6", "--proxy-steps", "2",
        "--n-boot", "20", "--width-scale", "0.125", "--distill-set", "iterations=2", "--val-size", "100",
        "--out", str(out), "--quiet", "--threads", "1",
    ])  # fmt: skip
    assert code == 0
    doc = json.loads((out / "results.json").read_text())
    assert [r["proxy"] for r in doc["rows"]] == ["distilled:dm", "random-subset", "early-stop", "reference-seed2"]
    assert all(r["n_archs"] == 4 and r["ipc"] == 10 and r["dataset"] == "digits" for r in doc["rows"])
    assert (out / "rank_scatter.png").stat().st_size > 0
    assert "## Architectures" in (out / "report.md").read_text()


@pytest.mark.slow
def test_search_command_regularized_evolution_exports_and_retrains(tmp_path: Path, nni_home) -> None:
    out = tmp_path / "search"
    code = main([
        "nas", "search", "--dataset", "digits", "--strategy", "regularized-evolution", "--trials", "4",
        "--population", "2", "--tournament", "2", "--mutation-prob", "0.5", "--proxy-steps", "2",
        "--retrain-steps", "3", "--width-scale", "0.125", "--distill-set", "iterations=2", "--val-size", "100",
        "--out", str(out), "--quiet", "--threads", "1",
    ])  # fmt: skip
    assert code == 0
    doc = json.loads((out / "results.json").read_text())
    best = doc["rows"][0]
    assert best["arch"] == doc["top"][0]["arch"] and best["trials"] == 4
    assert 0 <= best["val_acc"] <= 100 and 0 <= best["test_acc"] <= 100
    assert json.loads((out / "top_architectures.json").read_text())[0]["arch"] == best["arch"]
