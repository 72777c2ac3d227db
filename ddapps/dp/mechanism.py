"""The Gaussian mechanism shared by the DP distillation methods (``dp-dm``, ``dp-dc``).

Both privatise their only access to the real data -- per-class sums of per-example vectors
(embeddings for ``dp-dm``, loss gradients for ``dp-dc``) -- as in Private Set Generation (Chen,
Kerkouche & Fritz, NeurIPS 2022): Poisson-sample the examples with rate ``q``, clip each vector to
L2 norm ``C``, sum per class, add ``N(0, (sigma C)^2 I)``. The sampling and the noise are drawn
from a secret :class:`~ddapps.dp.noise.NoiseSource` (never the run's seeded generator).

This module holds that mechanism, the privacy options of the methods' configs
(:class:`DPOptions`), the checks that nothing else computed from the private data reaches the
release (:func:`check_public_inputs`, :func:`check_warm_start`), the set-up every DP method
shares (:class:`PrivateRun`) and the ``meta["privacy"]`` record. It imports torch only; Opacus
is needed by the accountant alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ddapps.data import Benchmark
from ddapps.dp.noise import NoiseSource, noise_source
from ddapps.errors import ConfigError
from ddapps.nets import batch_norm_layers
from ddapps.synthetic import SyntheticSet


@dataclass(frozen=True)
class DPOptions:
    """Privacy options mixed into a method's frozen config (put it first among the bases).

    ``dp_epsilon`` ``None``/``inf``/``'inf'`` clips without noise (no guarantee). ``sample_rate``
    ``None`` lets the method derive ``q`` from its batch size. ``init='real'`` is refused for a
    finite epsilon: the initial images would be real training images.
    ``dp_deterministic_noise`` draws the sampling and noise from a seeded generator instead of
    the operating system's secret source: reproducible for tests and debugging, and *not
    private* (the release says so in ``meta["privacy"]["private"]``).
    """

    dp_epsilon: float | None = 10.0
    dp_delta: float = 1e-5
    clip_norm: float = 1.0
    sample_rate: float | None = None
    dp_deterministic_noise: bool = False

    def __post_init__(self) -> None:
        parent = getattr(super(), "__post_init__", None)
        if parent is not None:
            parent()
        eps = self.dp_epsilon
        if isinstance(eps, str):  # "inf" from the command line or a saved config (JSON has no inf)
            try:
                eps = float(eps)
            except ValueError:
                raise ConfigError(f"dp_epsilon must be a number or 'inf', got {eps!r}") from None
            object.__setattr__(self, "dp_epsilon", eps)
        if eps is not None and not (isinstance(eps, (int, float)) and eps > 0):
            raise ConfigError(f"dp_epsilon must be > 0 (or inf/None for no noise), got {eps!r}")
        if not 0 < self.dp_delta < 1:
            raise ConfigError(f"dp_delta must be in (0, 1), got {self.dp_delta}")
        if not (self.clip_norm > 0 and math.isfinite(self.clip_norm)):
            raise ConfigError(f"clip_norm must be finite and > 0, got {self.clip_norm}")
        if self.sample_rate is not None and not 0 < self.sample_rate <= 1:
            raise ConfigError(f"sample_rate must be in (0, 1], got {self.sample_rate}")
        if not isinstance(self.dp_deterministic_noise, bool):
            raise ConfigError(f"dp_deterministic_noise must be true or false, got {self.dp_deterministic_noise!r}")
        if getattr(self, "init", None) == "real" and self.noisy:
            raise ConfigError("init='real' leaks the real images; use init='noise' or dp_epsilon=inf")

    @property
    def noisy(self) -> bool:
        """True when a finite epsilon is requested (noise is added)."""
        return self.dp_epsilon is not None and math.isfinite(self.dp_epsilon)

    @property
    def private(self) -> bool:
        """True when the release carries a guarantee: noise, drawn from the secret source."""
        return self.noisy and not self.dp_deterministic_noise


def clip_rows(v: Tensor, clip_norm: float) -> Tensor:
    """Scale each row of ``v`` to L2 norm at most ``clip_norm`` (differentiable)."""
    norms = v.norm(dim=1, keepdim=True)
    return v * (clip_norm / norms.clamp_min(1e-12)).clamp(max=1.0)


def private_class_sums(
    feats: Tensor, labels: Tensor, num_classes: int, clip_norm: float, noise_std: float, noise: NoiseSource
) -> Tensor:
    """``[K, d]`` per-class sums of clipped rows of ``feats`` plus ``N(0, noise_std^2)`` noise each."""
    sums = torch.zeros(num_classes, feats.shape[1], dtype=feats.dtype, device=feats.device)
    if feats.shape[0]:
        sums.index_add_(0, labels, clip_rows(feats, clip_norm))
    if noise_std > 0:
        sums = sums + noise_std * noise.normal(tuple(sums.shape), sums.dtype).to(sums.device)
    return sums


def refuse_batch_norm(net: torch.nn.Module, method: str, net_name: str) -> None:
    """:class:`ConfigError` if ``net`` has batch norm: it mixes examples, so no per-example bound holds."""
    if batch_norm_layers(net):
        raise ConfigError(f"{method} needs a net without batch norm (it mixes examples); got {net_name!r}")


def privacy_record(options: DPOptions, sample_rate: float, steps: int, noise: NoiseSource) -> dict[str, Any]:
    """Calibrate the noise for ``steps`` accountant steps at ``sample_rate``; the ``meta["privacy"]`` dict.

    ``noise_multiplier`` is 0 unless ``options.noisy``. ``epsilon`` is the guarantee and is
    ``None`` unless the release has one (noise from the secret source); ``nominal_epsilon`` is what
    the accountant gives for the noise that was added, whatever its source.
    """
    from ddapps.dp.accounting import ACCOUNTANT, calibrate_noise, epsilon

    q, noisy = float(sample_rate), options.noisy
    sigma = calibrate_noise(options.dp_epsilon, options.dp_delta, q, steps) if noisy else 0.0
    nominal = epsilon(sigma, q, steps, options.dp_delta) if noisy else None
    private = noisy and noise.private
    return {
        "private": private,
        "epsilon": nominal if private else None,
        "nominal_epsilon": nominal,
        "target_epsilon": options.dp_epsilon if noisy else None,
        "delta": options.dp_delta,
        "noise_multiplier": float(sigma),
        "sample_rate": q,
        "steps": int(steps),
        "clip_norm": options.clip_norm,
        "sampling": "poisson",
        "noise_source": noise.kind,
        "adjacency": "add/remove one example",
        "public_inputs": "class sizes (as q = batch / N in DP-SGD), published normalisation constants",
        "accountant": ACCOUNTANT,
    }


def check_public_inputs(real: Benchmark, options: DPOptions, method: str) -> None:
    """:class:`ConfigError` if ``real`` carries statistics of the private data into the release.

    A DP release stores the normalisation constants and any ZCA whitening of the data it was
    distilled from. Fitted on the private training split they would leave without noise, so with
    a finite epsilon both must be public: published constants or fixed ones (``public_stats``).
    No private-statistics budget is implemented, so ZCA is refused.
    """
    if not options.noisy:
        return
    if real.zca is not None:
        raise ConfigError(
            f"{method} with ZCA whitening would release the ZCA mean and matrix fitted on the private data "
            "without noise, and ddapps has no private-statistics budget; drop --zca (or use dp_epsilon=inf)"
        )
    if real.stats_source == "data":
        raise ConfigError(
            f"{method}: the normalisation mean/std of {real.name!r} were computed from the private images; "
            "load it with public constants (load_dataset(..., public_stats=True); the CLI does this for DP methods)"
        )


def check_warm_start(init: SyntheticSet | None, options: DPOptions, method: str) -> None:
    """:class:`ConfigError` for a warm start that is not itself a DP release (it could hold real images).

    A set released by a private run is post-processing of its mechanism, so refining it costs
    nothing beyond that release's own budget, which composes with this one (the federated server
    composes a client's releases over rounds). Anything else -- real images, a non-private set --
    would leave through the synthetic images unaccounted.
    """
    if init is None or not options.noisy:
        return
    record = init.meta.get("privacy") or {}
    if not record.get("private"):
        raise ConfigError(
            f"{method}: a warm start (init=...) that is not a private DP release may hold real images and "
            "would be released unaccounted; start from noise, or pass a set released by a private dp run"
        )


@dataclass
class PrivateRun:
    """What a DP method fixes before its loop: ``q``, ``sigma``, the class sizes and the noise source."""

    sample_rate: float
    noise_multiplier: float
    class_sizes: Tensor
    noise: NoiseSource
    record: dict[str, Any]

    @classmethod
    def prepare(
        cls,
        real: Benchmark,
        options: DPOptions,
        *,
        batch_real: int,
        steps: int,
        net: torch.nn.Module,
        method: str,
        net_name: str,
        generator: torch.Generator,
    ) -> "PrivateRun":
        """Check the inputs, derive ``q`` (``batch_real / n_min`` unless set), calibrate ``sigma`` for ``steps``."""
        refuse_batch_norm(net, method, net_name)
        check_public_inputs(real, options, method)
        counts = real.train.class_counts()
        q = options.sample_rate if options.sample_rate is not None else min(1.0, batch_real / int(counts.min()))
        noise = noise_source(options.dp_deterministic_noise, generator)
        record = privacy_record(options, q, steps, noise)
        return cls(record["sample_rate"], record["noise_multiplier"], counts.to(torch.float64), noise, record)

    NOISE_STATE = "dp_noise_state"
    """Key of the noise source's state among a DP method's checkpointed extra state."""

    def extra_state(self) -> dict[str, Tensor]:
        """The seeded source's position, so a resumed deterministic run repeats (empty when secret)."""
        return {self.NOISE_STATE: self.noise.state()}

    def load_extra_state(self, state: dict[str, Tensor]) -> None:
        if self.NOISE_STATE in state:
            self.noise.set_state(state[self.NOISE_STATE])

    def noisy_class_mean(self, feats: Tensor, labels: Tensor, num_classes: int, clip_norm: float) -> Tensor:
        """``[K, d]``: noisy clipped class sums over the expected batch ``q n_c``."""
        sums = private_class_sums(feats, labels, num_classes, clip_norm, self.noise_multiplier * clip_norm, self.noise)
        scale = (self.sample_rate * self.class_sizes).to(sums.device, sums.dtype)
        return sums / scale.unsqueeze(1)


def inf_as_text(config: dict[str, Any]) -> None:
    """Write an infinite ``dp_epsilon`` of a config dict as ``'inf'`` (JSON has no infinity)."""
    eps = config.get("dp_epsilon")
    if isinstance(eps, float) and math.isinf(eps):
        config["dp_epsilon"] = "inf"
