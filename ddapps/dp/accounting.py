"""Privacy accounting with Opacus' Rényi-DP accountant (extra ``privacy``).

Every DP mechanism in ddapps is a *Poisson-subsampled Gaussian mechanism* repeated ``steps``
times: each record enters a step independently with probability ``sample_rate``, each record's
contribution is clipped to L2 norm ``C`` and the sum gets ``N(0, (noise_multiplier * C)^2 I)``.
Its privacy under add/remove-one-record adjacency is computed by Opacus' RDP accountant
(Mironov, CSF 2017; Mironov, Talwar & Zhang 2019 for the subsampled Gaussian), never by a
hand-written bound. Opacus is imported inside the functions, so this module imports without it.
"""

from __future__ import annotations

import functools
import math
import warnings
from typing import Any, Sequence

from ddapps.errors import ConfigError

ACCOUNTANT = "opacus-rdp"
MAX_NOISE = 1e6
MIN_NOISE = 1e-3
STEP = 1.25  # bracketing factor: small steps keep probes near the answer, where RDP is cheap


def _check(sample_rate: float, steps: int, delta: float) -> None:
    if not 0 < sample_rate <= 1:
        raise ConfigError(f"sample_rate must be in (0, 1], got {sample_rate}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ConfigError(f"steps must be an int >= 0, got {steps!r}")
    if not 0 < delta < 1:
        raise ConfigError(f"delta must be in (0, 1), got {delta}")


def _rdp_accountant() -> Any:
    try:
        from opacus.accountants import RDPAccountant
    except ImportError:  # pragma: no cover - depends on the installed extras
        raise ConfigError("privacy accounting needs Opacus: pip install 'ddapps[privacy]'") from None
    return RDPAccountant()


def epsilon(noise_multiplier: float, sample_rate: float, steps: int, delta: float) -> float:
    """The (epsilon, delta)-DP epsilon of ``steps`` Poisson-subsampled Gaussian steps.

    ``noise_multiplier`` is the noise std divided by the clipping norm; 0 means no noise and
    gives ``inf`` (no guarantee) unless ``steps`` is 0.
    """
    return composed_epsilon([(noise_multiplier, sample_rate, steps)], delta)


def composed_epsilon(mechanisms: Sequence[tuple[float, float, int]], delta: float) -> float:
    """The epsilon of running every ``(noise_multiplier, sample_rate, steps)`` on the same data.

    The mechanisms compose (adaptively) in Rényi DP -- Opacus' accountant with all of them in its
    history -- and the total is converted to ``(epsilon, delta)`` once, which is tighter than adding
    the epsilons. No mechanisms (or no steps) cost 0; any noiseless step gives ``inf``.
    """
    if not 0 < delta < 1:
        raise ConfigError(f"delta must be in (0, 1), got {delta}")
    history = []
    for noise_multiplier, sample_rate, steps in mechanisms:
        _check(sample_rate, steps, delta)
        if noise_multiplier < 0 or not math.isfinite(noise_multiplier):
            raise ConfigError(f"noise_multiplier must be finite and >= 0, got {noise_multiplier}")
        if steps == 0:
            continue
        if noise_multiplier == 0:
            return math.inf
        history.append((float(noise_multiplier), float(sample_rate), int(steps)))
    if not history:
        return 0.0
    accountant = _rdp_accountant()
    accountant.history = history
    return float(accountant.get_epsilon(delta=delta))


@functools.lru_cache(maxsize=256)
def calibrate_noise(
    target_epsilon: float | None, delta: float, sample_rate: float, steps: int, tolerance: float = 0.01
) -> float:
    """The noise multiplier whose epsilon (by :func:`epsilon`) is in ``[target - tolerance, target]``.

    The same search as ``opacus.accountants.utils.get_noise_multiplier`` (bisection on Opacus'
    RDP accountant, absolute tolerance in epsilon), but bracketed geometrically (factor 1.25) from 1: Opacus'
    own search starts from [0, 20] and probes tiny multipliers, whose RDP at large sampling rates
    takes seconds per evaluation. Results are cached (the function is pure).
    ``target_epsilon`` of ``None`` or ``inf`` -- or ``steps == 0`` -- needs no noise: returns 0.
    """
    _check(sample_rate, steps, delta)
    if target_epsilon is None or math.isinf(target_epsilon) or steps == 0:
        return 0.0
    if not target_epsilon > 0:
        raise ConfigError(f"epsilon must be > 0, got {target_epsilon}")
    with warnings.catch_warnings():
        # probes far from the answer may hit the edge of Opacus' default orders; harmless here
        warnings.filterwarnings("ignore", message="Optimal order is the largest alpha")
        lo, hi = 1.0, 1.0
        eps_hi = epsilon(hi, sample_rate, steps, delta)
        if eps_hi > target_epsilon:
            while eps_hi > target_epsilon:
                lo, hi = hi, hi * STEP
                if hi > MAX_NOISE:
                    raise ConfigError(f"cannot reach epsilon={target_epsilon}: the budget is too low")
                eps_hi = epsilon(hi, sample_rate, steps, delta)
        else:
            while True:
                lo = hi / STEP
                eps_lo = epsilon(lo, sample_rate, steps, delta)
                if eps_lo > target_epsilon:
                    break
                hi, eps_hi = lo, eps_lo
                if hi < MIN_NOISE:
                    return hi
        # INVARIANT: epsilon(lo) > target >= epsilon(hi)
        while target_epsilon - eps_hi > tolerance:
            mid = math.sqrt(lo * hi)
            eps_mid = epsilon(mid, sample_rate, steps, delta)
            if eps_mid > target_epsilon:
                lo = mid
            else:
                hi, eps_hi = mid, eps_mid
    return hi
