"""``FederatedConfig``: everything one federated run needs, and the named compute budgets.

The same frozen config drives the in-process driver, Flower's simulation engine and a real
deployment: the ServerApp builds it from ``context.run_config`` (the ``[tool.flwr.app.config]``
keys, hyphenated) or receives it directly, and sends the client part down in every instruction
message, so a ClientApp needs no configuration of its own beyond its ``partition-id`` (and,
optionally, a ``data-dir`` in its node config).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from ddapps.errors import ConfigError
from ddapps.federated.modes import MODES, mode_spec
from ddapps.federated.partition import PARTITIONERS

__all__ = [
    "AUGMENTS",
    "BUDGET_NAMES",
    "EVALUATIONS",
    "FAIL_MODES",
    "MODES",
    "FederatedConfig",
    "budget_config",
    "budget_section",
]

FAIL_MODES = ("raise", "stall")
AUGMENTS = ("dsa", "none")
EVALUATIONS = ("test", "validation")
UPLOAD_DTYPES = ("float32", "float16", "uint8")
"""Image encodings of an uploaded set (:mod:`ddapps.federated.records` implements them)."""
VALIDATION_FRACTION = 0.1
"""Share of the training split held out (stratified, seeded) by ``evaluate="validation"``."""


@dataclass(frozen=True)
class FederatedConfig:
    """One federated run. Defaults are the ``small`` CPU budget (see :data:`BUDGET_NAMES`).

    Attributes:
        mode: one of :data:`MODES` (see :mod:`ddapps.federated.modes`): ``oneshot``, ``subset``,
            ``oneshot-noise``, ``oneshot-dp``, ``iterative``, ``fedavg`` or ``fedprox``.
        dataset, data_dir: the dataset each client partitions and the server tests on.
        clients, partitioner, alpha, max_per_client: ``clients`` parts, ``iid``,
            ``dirichlet(alpha)`` label skew or ``quantity(alpha)`` size skew; ``max_per_client > 0``
            subsamples each part.
        fraction: share of the clients sampled (seeded) each round, in ``(0, 1]``.
        rounds: communication rounds (``oneshot`` always runs exactly one).
        seed: partition, model initialisation, client distillation and training all derive
            from it.
        model, model_options: the global model (a ddapps network) of every mode.
        method, ipc, method_options: the registered distillation method each client runs, its
            images per class and config overrides (``net``/``net_options`` default to the model).
        server_epochs, server_lr, server_batch: how the server trains the global model on the
            union of the synthetic sets (SGD, momentum 0.9, weight decay 5e-4, lr x0.1 after half,
            as the evaluation protocol of dataset distillation).
        augment: ``dsa`` or ``none``: the augmentation of every model training, on both sides --
            the server's training on the union and FedAvg/FedProx clients' local training (the
            clients' distillation keeps its method's own DSA).
        local_epochs, local_lr, local_batch: FedAvg client training (same SGD settings).
        proximal_mu: FedProx's ``mu``: ``fedprox`` clients add ``mu/2 ||w - w_global||^2``.
        perturb: FedDM-style iterative mode: relative scale of the Gaussian perturbation of the
            global model each DM iteration (see :mod:`ddapps.federated.feddm`).
        round_timeout: seconds the server waits for replies in a round (and, before the first,
            for the ``clients`` nodes to connect); late clients are reported as timed out and the
            round continues without them. 300 s by default: about ten times what a client of the
            ``small`` budget takes (distillation plus the ClientApp's process start), so a slow
            client is not dropped, while a stuck one costs minutes, not Flower's hour (a crashed
            SuperNode is reported sooner: the SuperLink answers for a node that missed two
            30-second heartbeats). The ``paper`` budget sets 3600 s.
        quorum: share of ``clients`` (rounded up, at least one) that must be connected for a
            FedAvg/FedProx round to start; with fewer after ``round_timeout`` seconds the round is
            skipped and recorded as a ``quorum`` failure. The distilled modes address the nodes
            connected at the start and record each missing reply.
        fail_partitions, fail_mode, stall_seconds: fault injection for tests and acceptance
            runs: those partitions raise (``raise``) or sleep ``stall_seconds`` (``stall``).
        threads: torch intra-op threads in each client and the server (0: leave torch's).
        evaluate: ``test`` (the global model is scored on the test split) or ``validation``: a
            stratified 10% of the training split (:data:`VALIDATION_FRACTION`, drawn with a fixed
            seed, the same for every run seed) is held out from every client and scored instead, so
            settings can be chosen without touching the test set
            (:mod:`ddapps.federated.select`).
        upload_dtype: how a client encodes the images of the set it uploads: ``float32``,
            ``float16`` or ``uint8`` (8-bit pixels; see :mod:`ddapps.federated.records`). FedAvg and
            FedProx send float32 weights whatever it says.
    """

    mode: str = "oneshot"
    dataset: str = "mnist"
    data_dir: str = ""
    clients: int = 10
    partitioner: str = "dirichlet"
    alpha: float = 0.5
    max_per_client: int = 0
    fraction: float = 1.0
    rounds: int = 1
    seed: int = 0
    model: str = "mlp"
    model_options: dict[str, Any] = field(default_factory=lambda: {"width": 128})
    method: str = "dm"
    ipc: int = 10
    method_options: dict[str, Any] = field(default_factory=lambda: {"iterations": 200, "batch_real": 64})
    server_epochs: int = 300
    server_lr: float = 0.01
    server_batch: int = 256
    augment: str = "dsa"
    local_epochs: int = 1
    local_lr: float = 0.01
    local_batch: int = 64
    proximal_mu: float = 0.01
    perturb: float = 0.1
    round_timeout: float = 300.0
    quorum: float = 0.5
    fail_partitions: tuple[int, ...] = ()
    fail_mode: str = "raise"
    stall_seconds: float = 0.0
    threads: int = 1
    evaluate: str = "test"
    upload_dtype: str = "float32"

    def __post_init__(self) -> None:
        spec = mode_spec(self.mode)
        if self.augment not in AUGMENTS:
            raise ConfigError(f"unknown augment {self.augment!r}; choose one of: {', '.join(AUGMENTS)}")
        if self.evaluate not in EVALUATIONS:
            raise ConfigError(f"unknown evaluate {self.evaluate!r}; choose one of: {', '.join(EVALUATIONS)}")
        if self.upload_dtype not in UPLOAD_DTYPES:
            raise ConfigError(f"unknown upload dtype {self.upload_dtype!r}; choose one of: {', '.join(UPLOAD_DTYPES)}")
        if self.fail_mode not in FAIL_MODES:
            raise ConfigError(f"unknown fail_mode {self.fail_mode!r}; choose one of: {', '.join(FAIL_MODES)}")
        for name in ("clients", "rounds", "ipc", "server_epochs", "server_batch", "local_epochs", "local_batch"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name.replace('_', '-')} must be a positive integer, got {value!r}")
        if self.partitioner not in PARTITIONERS:
            raise ConfigError(f"unknown partitioner {self.partitioner!r}; choose one of: {', '.join(PARTITIONERS)}")
        if not self.alpha > 0 or self.max_per_client < 0:
            raise ConfigError(f"alpha must be > 0 and max-per-client >= 0, got {self.alpha}, {self.max_per_client}")
        if spec.one_round and self.rounds != 1:
            raise ConfigError(f"{self.mode} runs exactly one round, got rounds={self.rounds}")
        if not 0 < self.fraction <= 1 or not self.proximal_mu >= 0:
            raise ConfigError(
                f"fraction must lie in (0, 1] and proximal-mu be >= 0, got {self.fraction}, {self.proximal_mu}"
            )
        if not (self.server_lr > 0 and self.local_lr > 0 and self.round_timeout > 0 and self.perturb >= 0):
            raise ConfigError("server-lr, local-lr and round-timeout must be > 0 and perturb >= 0")
        if not 0 < self.quorum <= 1:
            raise ConfigError(f"quorum must lie in (0, 1], got {self.quorum}")
        if any(not 0 <= p < self.clients for p in self.fail_partitions):
            raise ConfigError(f"fail-partitions must lie in [0, {self.clients}), got {list(self.fail_partitions)}")
        if not isinstance(self.model_options, dict) or not isinstance(self.method_options, dict):
            raise ConfigError("model-options and method-options must be JSON objects")

    # ----------------------------------------------------------- conversions
    @property
    def upload_method(self) -> str:
        """The method the clients run in this mode (``subset``: ``random``; ``oneshot-dp``: ``dp-dm``)."""
        return mode_spec(self.mode).method or self.method

    def method_overrides(self) -> dict[str, Any]:
        """Config overrides for ``create_distiller(self.upload_method, ...)``: the run's method options
        (unless the mode runs another method), the mode's own options, and the model's net unless the
        options say otherwise."""
        from ddapps.methods import METHODS

        spec = mode_spec(self.mode)
        method = METHODS.get(self.upload_method)
        overrides = dict(self.method_options) if spec.keep_options else {}
        overrides.update(spec.options)
        if method.accepts("net") and "net" not in overrides:
            overrides["net"] = self.model
            if method.accepts("net_options") and "net_options" not in overrides:
                overrides["net_options"] = dict(self.model_options)
        return overrides

    def to_flat(self) -> dict[str, Any]:
        """Hyphenated flat values (ints, floats, bools, strings) as Flower run configs hold them."""
        flat: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, dict):
                value = json.dumps(value, sort_keys=True)
            elif isinstance(value, tuple):
                value = ",".join(str(v) for v in value)
            flat[f.name.replace("_", "-")] = value
        return flat

    @classmethod
    def from_flat(cls, values: Mapping[str, Any]) -> "FederatedConfig":
        """Parse :meth:`to_flat` output (or a Flower run config); unknown keys are errors."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, raw in values.items():
            name = str(key).replace("-", "_")
            if name not in known:
                raise ConfigError(f"unknown federated option {key!r}; known: {', '.join(sorted(known))}")
            kwargs[name] = _parse(name, raw, getattr(cls(), name))
        try:
            return cls(**kwargs)
        except (TypeError, ValueError) as err:
            if isinstance(err, ConfigError):
                raise
            raise ConfigError(f"invalid federated config: {err}") from None

    def replace(self, **changes: Any) -> "FederatedConfig":
        """A copy with ``changes`` (validated)."""
        return dataclasses.replace(self, **changes)


def _parse(name: str, raw: Any, default: Any) -> Any:
    if isinstance(default, dict):
        if isinstance(raw, dict):
            return raw
        try:
            value = json.loads(str(raw) or "{}")
        except json.JSONDecodeError as err:
            raise ConfigError(f"{name.replace('_', '-')} must be a JSON object ({err.msg})") from None
        return value
    if isinstance(default, tuple):
        if isinstance(raw, (list, tuple)):
            return tuple(int(v) for v in raw)
        try:
            return tuple(int(v) for v in str(raw).split(",") if v.strip())
        except ValueError:
            raise ConfigError(f"{name.replace('_', '-')} must be comma-separated integers, got {raw!r}") from None
    if isinstance(default, bool):
        if isinstance(raw, str):
            return raw.strip().lower() in ("1", "true", "yes")
        return bool(raw)
    if isinstance(default, int) and not isinstance(raw, bool) and isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if isinstance(default, float) and isinstance(raw, int) and not isinstance(raw, bool):
        return float(raw)
    return raw


BUDGET_NAMES = ("small", "smoke", "paper")
"""Budgets with a ``federated`` section (:mod:`ddapps.budgets`). ``small``: these defaults -- MLP-3
(width 128) everywhere, DM 200 iterations with 64 real images per class, server training 300 epochs
with DSA augmentation, FedAvg 1 local epoch of batch 64, 1 torch thread. ``paper``: ConvNet-3 and
DM's paper settings (20,000 iterations), server training 1000 epochs with DSA (GPU scale).
``smoke``: seconds."""


def budget_section(name: str) -> dict[str, Any]:
    """The ``federated`` section of budget ``name`` (ConfigError naming the choices otherwise)."""
    from ddapps.budgets import get_budget

    if name not in BUDGET_NAMES:
        raise ConfigError(f"unknown budget {name!r}; choose one of: {', '.join(BUDGET_NAMES)}")
    return get_budget(name).section("federated")


def budget_config(name: str, **changes: Any) -> FederatedConfig:
    """The defaults with budget ``name`` and then ``changes`` applied (``None`` values ignored)."""
    values = budget_section(name) | {k: v for k, v in changes.items() if v is not None}
    try:
        return FederatedConfig(**values)
    except TypeError as err:
        raise ConfigError(f"invalid federated config: {err}") from None
