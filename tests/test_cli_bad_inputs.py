"""Bad command-line input is rejected before any data loads: one ``ddapps: error:`` line, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from ddapps.cli import main

CONTINUAL = ["continual", "--benchmark", "split-digits", "--buffer", "reservoir", "--seeds", "0"]
NAS_RANK = ["nas", "rank", "--dataset", "digits", "--space", "convnet720", "--proxy", "random", "--ipc", "2"]


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (CONTINUAL + ["--net-width", "0"], "--net-width must be >= 1"),
        (CONTINUAL + ["--mem-size", "3"], "--mem-size 3 cannot hold one image of each"),
        (CONTINUAL + ["--net", "nosuch"], "unknown --net 'nosuch'"),
        (CONTINUAL + ["--gdumb-epochs", "0"], "--gdumb-epochs must be >= 1"),
        (NAS_RANK + ["--width-scale", "0.01"], "narrowest layer"),
        (NAS_RANK + ["--sample", "1000"], "--sample 1000 exceeds the 720 architectures"),
    ],
)
def test_rejected_before_work(
    argv: list[str], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    if argv[0] == "continual":
        pytest.importorskip("avalanche")
        import ddapps.continual.scenarios as loader

        monkeypatch.setattr(loader, "load_split", _must_not_load)
    else:
        pytest.importorskip("nni")
    import ddapps.data as data

    monkeypatch.setattr(data, "load_dataset", _must_not_load)
    code = main([*argv, "--out", str(tmp_path / "out")])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("ddapps: error:") and needle in lines[0]
    assert not (tmp_path / "out").exists()  # nothing written, nothing destroyed


def _must_not_load(*args: object, **kwargs: object) -> None:
    raise AssertionError("data was loaded before the bad input was rejected")
