"""Shared validators for configs and command-line options: one error message per kind of mistake.

Each returns the value it accepted (so ``self.width = check_positive("width", width)`` reads well)
or raises :class:`~ddapps.errors.ConfigError` naming the option. Booleans are never accepted as
numbers (``True`` is an ``int`` to Python, but ``iterations=True`` is a mistake).
"""

from __future__ import annotations

import math
from typing import Callable, Collection, TypeVar

from ddapps.errors import ConfigError

T = TypeVar("T")


def check_int(name: str, value: object, *, minimum: int = 1) -> int:
    """``value`` as an int ``>= minimum`` (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        kind = "a positive int" if minimum == 1 else "a non-negative int" if minimum == 0 else f"an int >= {minimum}"
        raise ConfigError(f"{name} must be {kind}, got {value!r}")
    return value


def check_positive(name: str, value: object) -> int:
    """``value`` as an int ``>= 1``."""
    return check_int(name, value, minimum=1)


def check_count(name: str, value: object) -> int:
    """``value`` as an int ``>= 0`` (iterations, steps)."""
    return check_int(name, value, minimum=0)


def check_optional_positive(name: str, value: object) -> int | None:
    """``None`` or an int ``>= 1``."""
    return None if value is None else check_positive(name, value)


def check_number(name: str, value: object, *, low: float = 0.0, low_inclusive: bool = False) -> float:
    """``value`` as a finite real number ``> low`` (``>= low`` when ``low_inclusive``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    if value < low or (value == low and not low_inclusive):
        raise ConfigError(f"{name} must be {'>=' if low_inclusive else '>'} {low:g}, got {value!r}")
    return float(value)


def check_rate(name: str, value: object) -> float:
    """``value`` as a number in ``(0, 1]``."""
    number = check_number(name, value)
    if number > 1:
        raise ConfigError(f"{name} must be in (0, 1], got {value!r}")
    return number


def check_fields(obj: object, check: Callable[[str, object], object], *names: str) -> None:
    """``check(name, obj.name)`` for each of ``names`` (e.g. ``check_fields(self, check_positive, "a", "b")``)."""
    for name in names:
        check(name, getattr(obj, name))


def check_choice(name: str, value: T, choices: Collection[T]) -> T:
    """``value`` if it is one of ``choices``; the error lists them."""
    if value not in choices:
        raise ConfigError(f"unknown {name} {value!r}; choose one of: {', '.join(str(c) for c in choices)}")
    return value
