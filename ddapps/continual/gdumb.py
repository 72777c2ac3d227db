"""GDumb with any storage policy: the continual-learning protocol of the DC and DM papers.

Prabhu, Torr & Dokania, "GDumb", ECCV 2020; used with distilled memories by Zhao et al. (ICLR
2021) and Zhao & Bilen (WACV 2023): at each experience the memory is updated with the new data,
then the model is re-initialised and trained *from scratch on the memory alone*.

Avalanche's ``GDumbPlugin`` hard-codes a ``ClassBalancedBuffer``; this plugin takes any
``ExemplarsBuffer`` (a :class:`~ddapps.continual.distilled_buffer.DistilledBuffer` by default, or
Avalanche's reservoir / class-balanced / herding buffers for the baselines). Two deliberate
differences: the memory is updated *before* the model is reset, so feature-based selection
(herding) sees the model trained on the previous memory rather than random weights; and the
reset is in place (weights and optimiser state), so selection strategies that hold a reference
to the model keep seeing the live one.
"""

from __future__ import annotations

import copy
from typing import Any

from avalanche.training.plugins import SupervisedPlugin
from avalanche.training.storage_policy import ExemplarsBuffer

from ddapps.continual.distilled_buffer import DistilledBuffer


class DistilledGDumbPlugin(SupervisedPlugin):
    """Train from scratch on the memory alone after each memory update (GDumb protocol).

    Args:
        mem_size: memory size in images (ignored when ``storage_policy`` is given).
        storage_policy: the memory; default ``DistilledBuffer(mem_size, **buffer_options)``.
        buffer_options: keyword arguments of the default :class:`DistilledBuffer`.
    """

    def __init__(self, mem_size: int = 100, storage_policy: ExemplarsBuffer | None = None, **buffer_options: Any):
        super().__init__()
        self.storage_policy = (
            storage_policy if storage_policy is not None else DistilledBuffer(mem_size, **buffer_options)
        )
        self.mem_size = self.storage_policy.max_size
        self._init_state: dict[str, Any] | None = None

    def before_train_dataset_adaptation(self, strategy: Any, **kwargs: Any) -> None:
        """Update the memory with the new experience, then reset the model to its first weights."""
        self.storage_policy.post_adapt(strategy, strategy.experience)
        if self._init_state is None:
            self._init_state = copy.deepcopy(strategy.model.state_dict())
        else:
            strategy.model.load_state_dict(self._init_state)
            strategy.optimizer.state.clear()

    def after_train_dataset_adaptation(self, strategy: Any, **kwargs: Any) -> None:
        """Train on the memory only."""
        strategy.adapted_dataset = self.storage_policy.buffer
