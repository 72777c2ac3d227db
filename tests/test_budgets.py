"""Budgets: IPC-specific overrides, and every named budget builds a valid config for every method."""

from __future__ import annotations

import pytest

from ddapps.budgets import BUDGETS, Budget, get_budget
from ddapps.errors import ConfigError
from ddapps.methods import METHODS, create_distiller


def test_ipc_specific_overrides_extend_the_method_overrides() -> None:
    budget = Budget(name="t", description="t", method_overrides={"dc": {"iterations": 5, "lr_img": 1.0}, "dc@10": {"iterations": 2}})
    assert budget.overrides("dc") == {"iterations": 5, "lr_img": 1.0}
    assert budget.overrides("dc", 1) == {"iterations": 5, "lr_img": 1.0}
    assert budget.overrides("dc", 10) == {"iterations": 2, "lr_img": 1.0}


@pytest.mark.parametrize("name", sorted(BUDGETS))
def test_every_budget_override_is_a_valid_config(name: str) -> None:
    budget = get_budget(name)
    for key in budget.method_overrides:
        assert key.split("@")[0] in METHODS.names(), f"budget {name} names unknown method {key}"
    for method in METHODS.names():
        for ipc in (1, 10, 50):
            create_distiller(method, budget.overrides(method, ipc))  # raises ConfigError if invalid


def test_unknown_budget_names_the_choices() -> None:
    with pytest.raises(ConfigError, match="small"):
        get_budget("nope")


def test_bench_all_means_every_non_private_method() -> None:
    from ddapps.methods.base import benchmark_methods

    chosen = benchmark_methods()
    assert "dp-dm" not in chosen and "dp-dc" not in chosen
    assert {"dm", "dc", "dsa", "mtt", "kip", "bptt", "idc", "random"} <= set(chosen)
    assert set(METHODS.names()) - set(chosen) == {"dp-dm", "dp-dc"}


def test_sections_are_copies_and_unknown_ones_are_refused() -> None:
    small = get_budget("small")
    section = small.section("continual")
    section["methods"]["dm"]["iterations"] = 1
    assert small.section("continual")["methods"]["dm"]["iterations"] == 2000  # the budget is unchanged
    assert get_budget("demo").section("speed") == {}  # no section: the consumer's defaults
    with pytest.raises(ConfigError, match="unknown budget section"):
        small.section("nope")
    with pytest.raises(ConfigError, match="unknown section"):
        Budget(name="x", description="x", sections={"nope": {}})


def test_expert_cache_is_one_file_per_dataset_for_methods_and_matchers(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from ddapps.budgets import with_expert_cache

    cache = tmp_path / "experts"
    assert with_expert_cache({"auto_experts": True}, cache, "mnist")["expert_file"] == str(cache / "mnist.safetensors")
    nested = with_expert_cache({"matcher_options": {"auto_experts": True}}, cache, "digits")
    assert nested["matcher_options"]["expert_file"] == str(cache / "digits.safetensors")
    assert with_expert_cache({"auto_experts": True, "expert_file": "mine"}, cache, "x")["expert_file"] == "mine"
    assert with_expert_cache({"iterations": 3}, cache, "x") == {"iterations": 3}
