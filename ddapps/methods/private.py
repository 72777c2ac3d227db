"""What every DP distillation method adds to its base method's loop (``dp-dm``, ``dp-dc``).

A mixin placed before the base method (``class DPDistributionMatching(PrivateMethod,
DistributionMatching)``): it refuses a warm start that is not a private release, prepares the
mechanism (:class:`~ddapps.dp.mechanism.PrivateRun`) once the base method's network exists,
checkpoints the noise source's position with the base method's state, and writes
``meta["privacy"]`` into the released set.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from ddapps.data import Benchmark
from ddapps.dp.mechanism import DPOptions, PrivateRun, check_warm_start, inf_as_text
from ddapps.nets.base import Net
from ddapps.synthetic import SyntheticSet


class PrivateMethod:
    """Mixin for an :class:`~ddapps.methods.iterative.IterativeDistiller` whose config has :class:`DPOptions`."""

    name: ClassVar[str]
    differentially_private: ClassVar[bool] = True
    config: Any
    net: Net
    private_run: PrivateRun

    def accountant_steps(self, ipc: int) -> int:
        """Reads of the real data in one run (the mechanism's composition count)."""
        return int(self.config.iterations)

    def init_params(
        self, real: Benchmark, ipc: int, init: SyntheticSet | None, generator: torch.Generator
    ) -> dict[str, Tensor]:
        check_warm_start(init, self.config, self.name)
        return super().init_params(real, ipc, init, generator)  # type: ignore[misc]

    def setup(self, real: Benchmark, ipc: int, generator: torch.Generator) -> None:
        super().setup(real, ipc, generator)  # type: ignore[misc]
        cfg: DPOptions = self.config
        self.private_run = PrivateRun.prepare(
            real, cfg, batch_real=self.config.batch_real, steps=self.accountant_steps(ipc), net=self.net,
            method=self.name, net_name=self.config.net, generator=generator,
        )  # fmt: skip

    def extra_state(self) -> dict[str, Tensor]:
        return super().extra_state() | self.private_run.extra_state()  # type: ignore[misc]

    def load_extra_state(self, state: dict[str, Tensor]) -> None:
        own = self.private_run.extra_state().keys()
        super().load_extra_state({k: v for k, v in state.items() if k not in own})  # type: ignore[misc]
        self.private_run.load_extra_state(state)

    def finalize(self, params: dict[str, Tensor], real: Benchmark, ipc: int, **meta: Any) -> SyntheticSet:
        synset: SyntheticSet = super().finalize(params, real, ipc, privacy=dict(self.private_run.record), **meta)  # type: ignore[misc]
        inf_as_text(synset.meta["config"])
        return synset
