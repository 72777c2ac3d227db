"""The ``environment`` block of every ``results.json``: library versions, device and threads."""

from __future__ import annotations

import platform
from typing import Any

import torch


def resolve_device(device: str | None) -> torch.device:
    """``None``/"auto" -> cuda if available else cpu; otherwise the named device (validated)."""
    from ddapps.errors import ConfigError

    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as err:
        raise ConfigError(f"unknown device {device!r}: {err}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available on this machine")
    return dev


def environment(device: torch.device | str) -> dict[str, Any]:
    """Versions and hardware facts recorded with every measurement."""
    dev = torch.device(device)
    info: dict[str, Any] = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(dev),
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
    }
    if dev.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(dev)
    return info
