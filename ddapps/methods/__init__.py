"""Distillation methods behind one interface (:class:`Distiller`) and one registry (:data:`METHODS`)."""

from ddapps.methods.base import (
    METHODS,
    CheckpointSpec,
    Distiller,
    DistillerConfig,
    IterationEvent,
    create_distiller,
    list_methods,
)
from ddapps.methods import coreset, dm  # noqa: F401  (registration)

__all__ = [
    "METHODS",
    "CheckpointSpec",
    "Distiller",
    "DistillerConfig",
    "IterationEvent",
    "create_distiller",
    "list_methods",
]
