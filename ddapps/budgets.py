"""Named compute budgets: one type for the methods, the benchmarks and every application.

``paper`` is every method's paper default (GPU scale: DM runs 20,000 iterations, the protocol
trains 5 nets for 1000 epochs). ``small`` is an explicit CPU budget for a 2-core machine; every
override it applies is listed in the reports it produces. ``smoke`` runs in seconds.

A :class:`Budget` holds the methods' config overrides (``"<method>@<ipc>"`` keys for one IPC),
the evaluation protocol, shared network options, and one *section* per consumer that needs more
(:data:`SECTIONS`): ``speed`` (``bench speed``'s per-method overrides), ``continual`` (the
distilled buffer's per-method overrides), ``federated`` (:class:`~ddapps.federated.settings.
FederatedConfig` fields), ``privacy`` (the audit's settings), ``teacher`` (``ddapps teacher``'s net,
options and epochs) and ``card`` (``ddapps card``'s evaluation lengths). :func:`with_expert_cache` is the
one place that points methods that train their own experts at a shared cache file.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from ddapps.errors import ConfigError
from ddapps.evaluation import EvalConfig


@dataclass(frozen=True)
class Budget:
    """Method config overrides and the evaluation protocol for one budget."""

    name: str
    description: str
    method_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    eval: EvalConfig = EvalConfig()
    net_options: dict[str, Any] = field(default_factory=dict)
    """Network options applied to every method that has a ``net_options`` field and to evaluation."""
    sections: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Per-consumer settings (see :data:`SECTIONS`)."""

    def __post_init__(self) -> None:
        unknown = sorted(set(self.sections) - set(SECTIONS))
        if unknown:
            raise ConfigError(
                f"budget {self.name!r}: unknown section(s) {', '.join(unknown)}; known: {', '.join(SECTIONS)}"
            )

    def section(self, name: str) -> dict[str, Any]:
        """A deep copy of section ``name`` (empty when the budget has none: the consumer's defaults)."""
        if name not in SECTIONS:
            raise ConfigError(f"unknown budget section {name!r}; known: {', '.join(SECTIONS)}")
        return copy.deepcopy(dict(self.sections.get(name, {})))

    def overrides(self, method: str, ipc: int | None = None) -> dict[str, Any]:
        """Config overrides of ``method`` under this budget (empty: paper defaults).

        A key ``"<method>@<ipc>"`` in ``method_overrides`` adds overrides for that IPC only (the
        papers themselves change loops and step counts with the IPC).
        """
        from ddapps.methods import METHODS

        overrides = dict(self.method_overrides.get(method, {}))
        if ipc is not None:
            overrides |= self.method_overrides.get(f"{method}@{ipc}", {})
        if self.net_options and METHODS.get(method).accepts("net_options"):
            overrides["net_options"] = dict(self.net_options) | overrides.get("net_options", {})
        return overrides

    def eval_config(self) -> EvalConfig:
        """The evaluation protocol, with this budget's network options."""
        if not self.net_options:
            return self.eval
        return replace(self.eval, net_options=dict(self.net_options) | self.eval.net_options)


SECTIONS = ("speed", "continual", "federated", "privacy", "teacher", "card")

_PRIVACY_PAPER: dict[str, Any] = {"shadows": 64, "iterations": 1000, "seeds": [0, 1, 2]}
"""``ddapps privacy audit/utility``: LiRA's 64 shadow models (Carlini et al., S&P 2022), 1,000
distillation iterations, three seeds. The command line's own defaults are the ``small`` budget."""
_PRIVACY_SMOKE: dict[str, Any] = {
    "shadows": 2, "iterations": 4, "epochs": 3, "ipc": 2, "pool_size": 200, "n_boot": 20, "dpsgd_epochs": 1,
    "train_size": 100,
}  # fmt: skip
"""Seconds-long audits and utility curves (numbers meaningless)."""

_SPEED = {
    "mtt": {"auto_experts": True, "max_start_epoch": 1, "expert_epochs": 1,
            "experts": {"num_experts": 1, "epochs": 2, "max_train_samples": 2000}},
}  # fmt: skip
"""``bench speed``: MTT's iteration cost depends on ``syn_steps`` and the set, not on the experts, so it
uses one expert trained 2 epochs on 2,000 images (from epoch 0). The same in every budget."""

_CONTINUAL_SMALL = {
    "default": {"iterations": 100, "batch_real": 128, "net": "mlp", "dsa": False},
    "methods": {"dm": {"iterations": 2000, "batch_real": 128, "net": "mlp", "dsa": False}},
}
"""The distilled buffer's CPU budget (keys a method lacks are skipped). DM: 2,000 iterations on random
MLPs (about 45 s per seed on one core for Split-MNIST), chosen on a held-out part of the MNIST
training set (docs/continual.md); DM is too cheap per iteration for 100 to move the images."""

_FEDERATED_SMOKE = {
    "model_options": {"width": 32},
    "method_options": {"iterations": 4, "batch_real": 8},
    "server_epochs": 5,
    "augment": "none",
    "max_per_client": 60,
}
_FEDERATED_PAPER = {
    "model": "convnet", "model_options": {}, "method_options": {}, "server_epochs": 1000, "threads": 0,
    "round_timeout": 3600.0,
}  # fmt: skip
"""DM's paper settings run 20,000 iterations per client and round: an hour per round before a client times out."""

_TEACHER_SECTION_SMALL = {"net": "convnet", "net_options": {"width": 32}, "epochs": 5, "min_steps": 500, "lr": 0.1}
_TEACHER_SECTION_PAPER = {"net": "resnet18", "net_options": {}, "epochs": 200, "lr": 0.1}
"""SRe2L squeezes a ResNet-18 for 200 epochs on CIFAR (its small-dataset script); the CPU budget trains a
ConvNet-3 of width 32 for 5 epochs, or more on a small dataset: at least 500 SGD steps. Both at SGD lr 0.1 (the
usual CIFAR ResNet recipe; SRe2L's own lr n/v). Measured on digits (ConvNet-3 width 32, DSA): at the evaluation
protocol's lr 0.01, 2,000 steps give 95.4% test accuracy but nearly flat logits (std across classes 0.18), useless
as soft labels; lr 0.1 and 500 steps give 98.5% and std 1.65."""
_CARD_SMALL = {"n_eval": 5, "eval_epochs": 100, "real_epochs": 2, "real_min_steps": 500}
_CARD_PAPER = {"n_eval": 5, "eval_epochs": None, "real_epochs": None}
"""``ddapps card``: evaluation runs per row and regime, their epochs (``None``: the protocol's 1000 with DSA,
300 without) and the epochs of the full-real-data runs that DD-Ranking's hard-label recovery needs (at least
``real_min_steps`` SGD steps)."""
_CORESET_SMALL = {"feature_epochs": 2, "feature_samples": 5000}
_TEACHER_SMALL = {
    "auto_teacher": True, "teacher_net": "convnet", "teacher_options": {"width": 32, "norm": "batch"},
    "teacher_epochs": 5,
}  # fmt: skip
"""SRe2L/RDED on CPU: a ConvNet-3 teacher of width 32 with batch norm, trained 5 epochs (shared via
:func:`with_expert_cache`), instead of the papers' ResNet-18."""
_FORGETTING_SMALL = {"feature_epochs": 10, "feature_samples": 5000}
_EL2N_SMALL = {"feature_epochs": 2, "feature_samples": 5000, "score_nets": 2}
_MATCHING_SMALL = {"iterations": 100, "init": "real", "batch_real": 64}

BUDGETS: dict[str, Budget] = {
    "paper": Budget(
        name="paper",
        description=(
            "the papers' settings (e.g. DM 20,000 iterations; MTT and HaBa train the paper's 100 experts x "
            "50 epochs first; evaluation: 5 nets x 1000 epochs with DSA)"
        ),
        method_overrides={"mtt": {"auto_experts": True}, "haba": {"matcher_options": {"auto_experts": True}}},
        sections={
            "speed": _SPEED,
            "continual": {"default": {}, "methods": {}},
            "federated": _FEDERATED_PAPER,
            "privacy": _PRIVACY_PAPER,
            "teacher": _TEACHER_SECTION_PAPER,
            "card": _CARD_PAPER,
        },
    ),
    "small": Budget(
        name="small",
        description=(
            "CPU budget for a 2-core machine, every ConvNet-3 (distillation and evaluation) of width 32 "
            "instead of 128 and every iterative method warm-started from real images; "
            "dm 500 iterations x 64 real images per class; dc/dsa 100 iterations at IPC 1 and 3 at IPC 10 "
            "(the paper's 10 outer x 50 inner loops each), 64 real images per class; "
            "mtt 4 experts x 4 epochs on 10,000 real images, then 100 iterations of 20 synthetic steps "
            "(expert_epochs 2, max_start_epoch 3, lr_img 100); kip 200 iterations (5,000 targets, lr 0.01); "
            "rfad 200 iterations at IPC 1 and 40 at IPC 10 (1,000 targets, 4 random ConvNets, Adam lr 0.01); frepo 100 iterations (1,000 targets, Adam lr 0.01); "
            "bptt 40 iterations at IPC 1 (5 steps x 2 epochs unrolled) and 200 at IPC 10 (10 steps); idm 100 iterations (queue of 10 models); "
            "idc 10 iterations of 10 matching steps; haba and lowrank 100 iterations with the dm matcher; "
            "herding/k-center features from a ConvNet trained 2 epochs on 5,000 real images; "
            "sre2l and rded with a ConvNet-3 teacher (width 32, batch norm) trained 5 epochs instead of ResNet-18, "
            "sre2l 500 recover iterations, rded factor 1 (the paper's CIFAR setting); "
            "forgetting scores over 10 epochs and EL2N after 2 epochs (2 nets), both on a pool of 5,000 real images; "
            "evaluation: 3 nets x 300 epochs with DSA"
        ),
        net_options={"width": 32},
        method_overrides={
            "dm": {"iterations": 500, "batch_real": 64},
            "dc": _MATCHING_SMALL,
            "dc@10": {"iterations": 3},
            "dsa": _MATCHING_SMALL,
            "dsa@10": {"iterations": 3},
            "mtt": {
                "iterations": 100,
                "syn_steps": 20,
                "expert_epochs": 2,
                "max_start_epoch": 3,
                "lr_img": 100.0,
                "auto_experts": True,
                "experts": {"num_experts": 4, "epochs": 4, "max_train_samples": 10000},
            },
            "kip": {"iterations": 200, "batch_real": 5000, "lr_img": 0.01},
            "rfad": {
                "iterations": 40,
                "lr_img": 0.01,
                "batch_real": 1000,
                "n_models": 4,
                "width": 64,
                "net_options": {"norm": "none"},
            },
            "rfad@1": {"iterations": 200},
            "frepo": {"iterations": 100, "lr_img": 0.01, "batch_real": 1000, "net_options": {"norm": "none"}},
            "bptt": {
                "iterations": 40,
                "init": "real",
                "lr_init": 0.1,
                "batch_real": 256,
                "inner_steps": 10,
                "inner_epochs": 1,
            },
            "bptt@1": {"inner_steps": 5, "inner_epochs": 2},
            "bptt@10": {"iterations": 200},
            "idm": {"iterations": 100, "num_models": 10, "model_train_steps": 5, "model_batch": 128, "batch_real": 64},
            "idc": {"iterations": 10, "outer_loop": 10, "batch_real": 32},
            "haba": {"iterations": 100, "matcher": "dm", "matcher_options": {"batch_real": 64}},
            "lowrank": {"iterations": 100, "matcher": "dm", "matcher_options": {"batch_real": 64}},
            "herding": _CORESET_SMALL,
            "kcenter": _CORESET_SMALL,
            "sre2l": _TEACHER_SMALL | {"iterations": 500},
            "rded": _TEACHER_SMALL | {"factor": 1},
            "forgetting": _FORGETTING_SMALL,
            "el2n": _EL2N_SMALL,
        },
        eval=EvalConfig(n_eval=3, epochs=300),
        sections={
            "speed": _SPEED,
            "continual": _CONTINUAL_SMALL,
            "federated": {},
            "teacher": _TEACHER_SECTION_SMALL,
            "card": _CARD_SMALL,
        },
    ),
    "demo": Budget(
        name="demo",
        description=(
            "demo budget on digits: DM 300 iterations (256 real images per class, i.e. whole classes); "
            "evaluation: 3 ConvNet-3 (width 128) x 300 epochs with DSA"
        ),
        method_overrides={"dm": {"iterations": 300}},
        eval=EvalConfig(n_eval=3, epochs=300),
    ),
}


def smoke_budget() -> Budget:
    """Seconds-long runs for checking a pipeline end to end: every method's ``smoke_config``."""
    from ddapps.methods import METHODS

    return Budget(
        name="smoke",
        description="pipeline check only: each method's smoke_config, 2 nets x 2 epochs (numbers meaningless)",
        method_overrides={name: dict(METHODS.get(name).smoke_config) for name in METHODS.names()},
        eval=EvalConfig(n_eval=2, epochs=2, net_options={"width": 16}),
        sections={
            "speed": _SPEED,
            "continual": _CONTINUAL_SMALL,
            "federated": _FEDERATED_SMOKE,
            "privacy": _PRIVACY_SMOKE,
            "teacher": {"net": "mlp", "net_options": {"width": 16}, "epochs": 1, "lr": 0.1},
            "card": {"n_eval": 2, "eval_epochs": 2, "real_epochs": 1},
        },
    )


def get_budget(name: str) -> Budget:
    """The budget called ``name`` (ConfigError naming the choices otherwise)."""
    if name == "smoke":
        return smoke_budget()
    if name not in BUDGETS:
        raise ConfigError(f"unknown budget {name!r}; choose one of: {', '.join([*BUDGETS, 'smoke'])}")
    return BUDGETS[name]


def with_eval(budget: Budget, **changes: Any) -> Budget:
    """A copy of ``budget`` whose evaluation config has ``changes`` (``None`` values ignored)."""
    changes = {k: v for k, v in changes.items() if v is not None}
    return replace(budget, eval=replace(budget.eval, **changes)) if changes else budget


def with_expert_cache(overrides: dict[str, Any], cache_dir: Path, dataset: str) -> dict[str, Any]:
    """Point a method that trains its own experts (``auto_experts``, also as a factorized set's matcher)
    at ``cache_dir/<dataset>.safetensors``, and one that trains its own teacher (``auto_teacher``)
    at ``cache_dir/<dataset>-teacher.safetensors``: trained once, reused by every IPC, repeat and
    resumed run."""
    cache = str(Path(cache_dir) / f"{dataset}.safetensors")
    if overrides.get("auto_experts") and not overrides.get("expert_file"):
        return overrides | {"expert_file": cache}
    matcher = overrides.get("matcher_options", {})
    if matcher.get("auto_experts") and not matcher.get("expert_file"):  # factorized sets over mtt
        return overrides | {"matcher_options": matcher | {"expert_file": cache}}
    if overrides.get("auto_teacher") and not overrides.get("teacher"):  # sre2l, rded: one teacher per dataset
        return overrides | {"teacher": str(Path(cache_dir) / f"{dataset}-teacher.safetensors")}
    return overrides
