"""Atomic checkpoints of an iterative distillation: learnable tensors, optimiser state, progress.

Saved as safetensors (tensors) + JSON (iteration, fingerprint, optimiser hyper-parameters) in the
safetensors header; loading never unpickles. A fingerprint of (method, config, ipc, dataset, seed)
guards against resuming a different run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ddapps.errors import ConfigError
from ddapps.utils.atomic import atomic_path


def save_checkpoint(
    path: str | Path,
    *,
    iteration: int,
    fingerprint: dict[str, Any],
    params: dict[str, Tensor],
    optimizer: torch.optim.Optimizer,
) -> None:
    """Write the state after ``iteration`` completed iterations, atomically."""
    from safetensors.torch import save_file

    tensors = {f"param.{k}": v.detach().cpu().contiguous().clone() for k, v in params.items()}
    opt_state = optimizer.state_dict()
    scalars: dict[str, dict[str, Any]] = {}
    for idx, state in opt_state["state"].items():
        for key, value in state.items():
            if isinstance(value, Tensor):
                tensors[f"opt.{idx}.{key}"] = value.detach().cpu().contiguous().clone()
            else:
                scalars.setdefault(str(idx), {})[key] = value
    header = {
        "iteration": iteration,
        "fingerprint": fingerprint,
        "param_groups": opt_state["param_groups"],
        "opt_scalars": scalars,
    }
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"ddapps_checkpoint": json.dumps(header)})


def load_checkpoint(
    path: str | Path,
    *,
    fingerprint: dict[str, Any],
    params: dict[str, Tensor],
    optimizer: torch.optim.Optimizer,
) -> int:
    """Restore ``params`` (in place) and ``optimizer``; return the completed iteration count."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            header = json.loads((handle.metadata() or {})["ddapps_checkpoint"])
            tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    except (SafetensorError, OSError, KeyError, ValueError) as err:
        raise ConfigError(f"cannot resume: {path} is not a valid ddapps checkpoint ({err})") from None
    if header.get("fingerprint") != json.loads(json.dumps(fingerprint)):
        raise ConfigError(
            f"cannot resume: {path} belongs to a different run (method, config, ipc, data or seed differ)"
        )
    with torch.no_grad():
        for key, value in params.items():
            stored = tensors.get(f"param.{key}")
            if stored is None or stored.shape != value.shape:
                raise ConfigError(f"cannot resume: {path} has no matching tensor {key!r}")
            value.copy_(stored)
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("opt."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value.to(next(iter(params.values())).device)
    for idx, values in header.get("opt_scalars", {}).items():
        state.setdefault(int(idx), {}).update(values)
    optimizer.load_state_dict({"state": state, "param_groups": header["param_groups"]})
    return int(header["iteration"])
