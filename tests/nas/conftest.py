"""Fixtures of the NAS tests: NNI keeps its experiment manifest in a temporary home."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def nni_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point NNI's experiment manifest (``~/nni-experiments/.experiment``) at ``tmp_path``."""
    pytest.importorskip("pytorch_lightning")
    config_utils = pytest.importorskip("nni.tools.nnictl.config_utils")
    home = tmp_path / "nni-home"
    monkeypatch.setattr(config_utils.Experiments.__init__, "__defaults__", (str(home),))
    return home
