"""Trajectory matching: expert trajectories and MTT (with TESLA's constant-memory gradient).

* :mod:`.experts` -- :class:`ExpertConfig`, :func:`train_experts` (Cazenavette et al., CVPR 2022).
* :mod:`.buffer` -- :class:`ExpertBuffer`, the one-file safetensors store of trajectories.
* :mod:`.flat` -- :class:`FlatSpec`, a network's parameters as one flat vector.
* :mod:`.unroll` -- the unrolled student and its two gradients (autograd; TESLA, ICML 2023).
* :mod:`.mtt` -- the ``mtt`` method.
"""

from ddapps.methods.trajectory.buffer import ExpertBuffer
from ddapps.methods.trajectory.experts import ExpertConfig, ExpertEvent, train_experts
from ddapps.methods.trajectory.flat import FlatSpec
from ddapps.methods.trajectory.mtt import MatchingTrainingTrajectories, MTTConfig

__all__ = [
    "ExpertBuffer",
    "ExpertConfig",
    "ExpertEvent",
    "FlatSpec",
    "MTTConfig",
    "MatchingTrainingTrajectories",
    "train_experts",
]
