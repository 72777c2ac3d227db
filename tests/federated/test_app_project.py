"""``apps/federated`` is a valid Flower app whose config is exactly ``FederatedConfig``."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("flwr")

from flwr.cli.config_utils import load_and_validate  # noqa: E402

from ddapps.federated.settings import FederatedConfig  # noqa: E402

APP = Path(__file__).resolve().parents[2] / "apps" / "federated"


def test_pyproject_validates_and_its_config_is_the_default_budget() -> None:
    config, warnings = load_and_validate(APP / "pyproject.toml")
    assert not warnings
    app = config["tool"]["flwr"]["app"]
    assert app["components"] == {"serverapp": "server_app:app", "clientapp": "client_app:app"}
    values = dict(app["config"])
    assert values.pop("out-dir") == ""
    assert FederatedConfig.from_flat(values) == FederatedConfig()
    assert set(values) == set(FederatedConfig().to_flat())
