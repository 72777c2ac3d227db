"""Continual learning with distilled memories, inside Avalanche (extra ``continual``).

``DistilledBuffer`` (an Avalanche storage policy), ``DistilledGDumbPlugin`` (GDumb with any
storage policy), split benchmarks built with Avalanche's generator, and the comparison runner
behind ``ddapps continual``. Attributes are imported lazily so that ``import ddapps.continual``
(and ``ddapps.continual.cli``) works without Avalanche installed.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DistilledBuffer": "ddapps.continual.distilled_buffer",
    "DistilledGDumbPlugin": "ddapps.continual.gdumb",
    "SPLITS": "ddapps.continual.scenarios",
    "load_split": "ddapps.continual.scenarios",
    "split_scenario": "ddapps.continual.scenarios",
    "make_buffer": "ddapps.continual.storage_policies",
    "BufferOptions": "ddapps.continual.storage_policies",
    "ContinualConfig": "ddapps.continual.experiment",
    "LearnerConfig": "ddapps.continual.experiment",
    "run_comparison": "ddapps.continual.experiment",
    "summarize": "ddapps.continual.experiment",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'ddapps.continual' has no attribute {name!r}")
