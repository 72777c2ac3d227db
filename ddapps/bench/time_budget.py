"""Fit iteration counts to a wall-clock budget from measured seconds per iteration.

Used by ``apps/bench_gpu.sh`` after its ``bench speed`` step, so that the script ends within its
``BUDGET_S`` on any device: each method's count is cut (never raised) by water-filling -- every
method is offered an equal share of the time left, and the share a cheap method does not need is
shared among the others.

    python -m ddapps.bench.time_budget SPEED_RESULTS_JSON SECONDS_LEFT RESERVE_PER_METHOD dm=2000 dsa=100 mtt=500

prints the fitted counts in the order given (``2000 56 375``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Mapping, Sequence

from ddapps.errors import ConfigError


def fit_iterations(
    seconds_per_iter: Mapping[str, float], asked: Mapping[str, int], seconds_left: float, reserve: float = 0.0
) -> dict[str, int]:
    """Iterations per method (at least 1, at most ``asked``) whose total time fits ``seconds_left``
    less ``reserve`` seconds per method (start-up, evaluation)."""
    missing = [m for m in asked if m not in seconds_per_iter]
    if missing:
        raise ConfigError(f"no seconds/iteration measured for {', '.join(missing)}")
    if any(seconds_per_iter[m] <= 0 for m in asked) or any(n < 1 for n in asked.values()):
        raise ConfigError("seconds per iteration must be > 0 and iteration counts >= 1")
    left = max(0.0, seconds_left - len(asked) * reserve)
    need = {m: asked[m] * seconds_per_iter[m] for m in asked}
    waiting = sorted(asked, key=need.__getitem__)
    grant: dict[str, float] = {}
    while waiting:
        m = waiting.pop(0)
        grant[m] = min(need[m], left / (len(waiting) + 1))
        left -= grant[m]
    return {m: max(1, min(asked[m], int(grant[m] / seconds_per_iter[m]))) for m in asked}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 4:
        print(
            "usage: python -m ddapps.bench.time_budget SPEED_RESULTS_JSON SECONDS_LEFT RESERVE METHOD=N ...",
            file=sys.stderr,
        )
        return 2
    try:
        rows = json.loads(Path(args[0]).read_text())["rows"]
        seconds = {r["method"]: float(r["seconds_per_iter"]) for r in rows}
        asked = {name: int(count) for name, _, count in (a.partition("=") for a in args[3:])}
        fitted = fit_iterations(seconds, asked, float(args[1]), float(args[2]))
    except (OSError, ValueError, KeyError, TypeError, ConfigError) as exc:  # JSONDecodeError is a ValueError
        print(f"error: time_budget: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print(*fitted.values())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
