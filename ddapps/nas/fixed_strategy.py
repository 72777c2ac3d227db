"""An NNI 3.0 strategy that submits a fixed list of architectures: how a rank study runs on NNI's engines."""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

from nni.nas.strategy.base import Strategy


class FixedSamples(Strategy):
    """Submit exactly ``samples`` (in order), each once.

    After the first model finishes it calls ``on_first`` with its wall time divided by
    ``concurrency`` (what each further architecture adds to the study's wall time).
    """

    def __init__(
        self, samples: Sequence[dict[str, Any]], on_first: Callable[[float], None] | None = None, concurrency: int = 1
    ) -> None:
        super().__init__()
        self.samples, self.on_first, self.concurrency = list(samples), on_first, concurrency
        self.submitted = 0

    def _run(self) -> None:
        for index, sample in enumerate(self.samples[self.submitted :]):
            if not self.wait_for_resource():
                return
            started = time.perf_counter()
            model = self.model_space.freeze(sample)
            self.engine.submit_models(model)
            self.submitted += 1
            if index == 0 and self.on_first is not None:
                self.engine.wait_models(model)
                self.on_first((time.perf_counter() - started) / self.concurrency)

    def state_dict(self) -> dict[str, Any]:
        return {"submitted": self.submitted}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.submitted = int(state_dict.get("submitted", 0))
