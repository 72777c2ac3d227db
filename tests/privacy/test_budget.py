"""``--budget`` of the privacy commands: the budget's ``privacy`` section fills the flags left at
their defaults; flags given on the command line win."""

from __future__ import annotations

import pytest

from ddapps.budgets import BUDGETS, get_budget
from ddapps.cli import build_parser
from ddapps.privacy.arguments import BUDGET_KEYS, apply_budget


def _parse(*argv: str):
    command, *rest = argv
    return build_parser().parse_args(["privacy", command, "--dataset", "digits", *rest, "--out", "unused"])


def test_paper_budget_sets_the_audit_to_the_paper_settings_unless_a_flag_says_otherwise() -> None:
    paper = get_budget("paper").section("privacy")
    args = _parse("audit", "--budget", "paper", "--iterations", "50")
    applied = apply_budget(args)
    assert args.shadows == paper["shadows"] == 64 and args.seeds == paper["seeds"]
    assert args.iterations == 50 and "iterations" not in applied  # explicit flag wins


def test_small_budget_keeps_the_command_line_defaults() -> None:
    args = _parse("utility")
    before = vars(args).copy()
    assert apply_budget(args) == {} and vars(args) == before


def test_smoke_budget_skips_settings_the_command_does_not_have() -> None:
    args = _parse("utility", "--budget", "smoke")
    applied = apply_budget(args)
    assert args.train_size == get_budget("smoke").section("privacy")["train_size"]
    assert "shadows" not in applied and not hasattr(args, "shadows")


@pytest.mark.parametrize("name", [*BUDGETS, "smoke"])
def test_every_budget_privacy_section_uses_known_keys(name: str) -> None:
    assert set(get_budget(name).section("privacy")) <= set(BUDGET_KEYS)
