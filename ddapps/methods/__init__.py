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


def _register_all() -> None:
    """Import every module of this package so each method registers itself (one file per family)."""
    import importlib
    import pkgutil

    for info in pkgutil.walk_packages(__path__, prefix=f"{__name__}."):
        importlib.import_module(info.name)


_register_all()

__all__ = [
    "METHODS",
    "CheckpointSpec",
    "Distiller",
    "DistillerConfig",
    "IterationEvent",
    "create_distiller",
    "list_methods",
]
