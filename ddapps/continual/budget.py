"""The distilled buffer's distillation budget, by name, shared by the Python API and the command line.

``buffer_overrides(method, "small")`` is the CPU budget of the budget type's ``continual`` section
(:mod:`ddapps.budgets`): DM runs 2,000 iterations on random MLPs without DSA, other methods 100
iterations (keys a method lacks are dropped). ``"paper"`` is each method's paper config (no
overrides: DM's 20,000 iterations on ConvNet-3 with DSA, minutes to hours per update on a CPU).
The small budget's DM iterations were chosen on a validation stream carved from the training split
(``ddapps continual-select``; docs/continual.md).
"""

from __future__ import annotations

from typing import Any

BUFFER_BUDGETS = ("small", "paper", "smoke")
"""Budget names a :class:`~ddapps.continual.distilled_buffer.DistilledBuffer` accepts."""


def buffer_overrides(method: str, budget: str = "small") -> dict[str, Any]:
    """Config overrides of ``method`` for the distilled buffer under ``budget``.

    The method's own entry of the budget's ``continual`` section, else the section's default, keeping
    only the options the method has.
    """
    from ddapps.budgets import get_budget
    from ddapps.errors import ConfigError
    from ddapps.methods import METHODS

    if budget not in BUFFER_BUDGETS:
        raise ConfigError(f"unknown buffer budget {budget!r}; choose one of: {', '.join(BUFFER_BUDGETS)}")
    distiller = METHODS.get(method)
    section = get_budget(budget).section("continual")
    overrides = dict(section.get("methods", {}).get(method, section.get("default", {})))
    return {key: value for key, value in overrides.items() if distiller.accepts(key)}
