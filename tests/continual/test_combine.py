"""``python -m ddapps.continual.combine``: rows of separate runs in one table, paired by seed."""

from __future__ import annotations

import json
import statistics

import pytest

from ddapps.continual.combine import load_rows, main


def _row(buffer: str, finals: list[float], **extra) -> dict:
    return {
        "benchmark": "split-digits", "buffer": buffer, "protocol": "gdumb", "mem_size": 20,
        "seed_count": len(finals), "final_acc_mean": statistics.fmean(finals), "final_acc_std": statistics.stdev(finals),
        "forgetting_mean": 1.0, "seconds": 2.0, "acc_per_experience": [10.0, statistics.fmean(finals)],
        "final_acc_per_seed": finals, **extra,
    }  # fmt: skip


def _run(folder, rows, logs=None):
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps({"rows": rows}))
    for name, curve in (logs or {}).items():
        (folder / "logs" / name).mkdir(parents=True)
        lines = [f"\tTop1_Acc_Stream/eval_phase/test_stream = {v / 100:.4f}" for v in curve]
        (folder / "logs" / name / "log.txt").write_text("\n".join(lines))
    return folder / "results.json"


def test_rows_of_two_runs_are_labelled_paired_and_get_their_bands_from_the_logs(tmp_path, capsys):
    # Prepare: an old run without std (its curves are in Avalanche's text logs) and a newer one.
    old = _run(tmp_path / "old", [_row("herding", [30.0, 34.0])],
               logs={"herding_gdumb_seed0": [10.0, 30.0], "herding_gdumb_seed1": [14.0, 34.0]})  # fmt: skip
    new = _run(tmp_path / "new", [_row("distilled:dm", [33.0, 36.0], acc_per_experience_std=[0.0, 2.1])])
    # Execute
    rows = load_rows(f"{old}") + load_rows(f"{new}=conv")
    code = main(["--run", str(old), "--run", f"{new}=conv", "--title", "t", "--out", str(tmp_path / "out")])
    # Assert
    expected = [statistics.stdev([10.0, 14.0]), statistics.stdev([30.0, 34.0])]
    assert rows[0]["acc_per_experience_std"] == pytest.approx(expected, rel=1e-6)
    assert rows[1]["buffer"] == "distilled:dm [conv]" and rows[1]["acc_per_experience_std"] == [0.0, 2.1]
    assert code == 0 and (tmp_path / "out" / "accuracy_per_experience.png").is_file()
    text = (tmp_path / "out" / "combined.md").read_text()
    assert "distilled:dm [conv] +2.50 points vs the best Avalanche buffer (herding)" in text
    assert json.loads((tmp_path / "out" / "combined.json").read_text())["rows"][0]["source"] == str(old)


def test_bad_inputs_are_one_line_errors(tmp_path, capsys):
    two = _run(tmp_path / "two", [_row("herding", [30.0, 34.0])])
    three = _run(tmp_path / "three", [_row("reservoir", [30.0, 34.0, 31.0])])
    assert main(["--run", str(tmp_path / "missing.json"), "--out", str(tmp_path / "o")]) == 2
    assert main(["--run", str(two), "--run", str(three), "--out", str(tmp_path / "o")]) == 2
    assert "cannot be paired" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("[1, 2]")
    assert main(["--run", str(tmp_path / "bad.json"), "--out", str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o").exists()
