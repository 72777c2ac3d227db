"""The federated modes: which server loop each runs and what its clients upload.

Imports nothing from Flower. Every mode shares the model, partition, augmentation policy and test
set of the run; they differ only in what a client sends:

* ``oneshot`` -- one round of distilled sets (DOSFL, Zhou et al., 2020), the run's ``method``;
* ``subset`` -- the baseline that answers "does distillation, not just sending data, buy the
  accuracy?": one round in which each client uploads a class-stratified random subset of its own
  real images (method ``random``), the same classes and ``ipc`` as ``oneshot``, hence the same
  number of images and (up to a few hundred bytes of metadata) the same bytes;
* ``oneshot-noise`` -- ``oneshot`` with the distillation started from Gaussian noise
  (``init=noise``) instead of real images: no raw image is the starting point of an upload;
* ``oneshot-dp`` -- ``oneshot`` with DP distribution matching (``dp-dm``, its noise drawn from
  the client's own secret source; ``--set dp_epsilon=E``);
* ``iterative`` -- FedDM-style rounds (Xiong et al., CVPR 2023);
* ``fedavg`` / ``fedprox`` -- Flower's ``FedAvg`` / ``FedProx`` strategies on model weights
  (McMahan et al., AISTATS 2017; Li et al., MLSys 2020).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ddapps.errors import ConfigError


@dataclass(frozen=True)
class ModeSpec:
    """One mode.

    Attributes:
        loop: ``distilled`` (clients upload sets) or ``weights`` (clients upload model weights).
        one_round: the mode runs exactly one round.
        global_model: the server sends the global model with each distillation instruction.
        method: the method the clients run instead of the run's ``method`` (``None``: the run's).
        keep_options: pass the run's ``method_options`` on (``False`` for a different method).
        options: method options the mode sets on top (they win over ``--set``).
    """

    loop: str
    one_round: bool = False
    global_model: bool = False
    method: str | None = None
    keep_options: bool = True
    options: dict[str, Any] = field(default_factory=dict)


MODE_SPECS: dict[str, ModeSpec] = {
    "oneshot": ModeSpec("distilled", one_round=True),
    "subset": ModeSpec("distilled", one_round=True, method="random", keep_options=False),
    "oneshot-noise": ModeSpec("distilled", one_round=True, options={"init": "noise"}),
    "oneshot-dp": ModeSpec("distilled", one_round=True, method="dp-dm"),
    "iterative": ModeSpec("distilled", global_model=True),
    "fedavg": ModeSpec("weights"),
    "fedprox": ModeSpec("weights"),
}
MODES = tuple(MODE_SPECS)


def mode_spec(mode: str) -> ModeSpec:
    """The :class:`ModeSpec` of ``mode`` (ConfigError naming the choices otherwise)."""
    spec = MODE_SPECS.get(mode)
    if spec is None:
        raise ConfigError(f"unknown federated mode {mode!r}; choose one of: {', '.join(MODES)}")
    return spec
