"""A network's parameters as one flat vector, for trajectory snapshots and functional training.

Trajectory matching (Cazenavette et al., CVPR 2022) stores each expert epoch as one vector
``theta`` and trains a student *functionally*: ``torch.func.functional_call(net, spec.unflatten(theta), x)``
evaluates the network at ``theta`` without touching its own parameters, so a chain of SGD steps
``theta_{i+1} = theta_i - lr * grad`` stays differentiable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call

from ddapps.errors import ConfigError


@dataclass(frozen=True)
class FlatSpec:
    """Names and shapes of a network's parameters, in ``named_parameters()`` order."""

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]

    @classmethod
    def of(cls, net: nn.Module) -> "FlatSpec":
        """The spec of ``net``'s trainable parameters."""
        named = [(n, tuple(p.shape)) for n, p in net.named_parameters()]
        return cls(tuple(n for n, _ in named), tuple(s for _, s in named))

    @classmethod
    def from_json(cls, obj: Any) -> "FlatSpec":
        """Inverse of :meth:`to_json`; :class:`ConfigError` on anything malformed."""
        try:
            names = tuple(str(item["name"]) for item in obj)
            shapes = tuple(tuple(int(d) for d in item["shape"]) for item in obj)
        except (TypeError, KeyError, ValueError):
            raise ConfigError("parameter spec must be a list of {name, shape} objects") from None
        if any(d < 0 for s in shapes for d in s) or len(set(names)) != len(names):
            raise ConfigError("parameter spec has negative sizes or repeated names")
        return cls(names, shapes)

    def to_json(self) -> list[dict[str, Any]]:
        """``[{"name": ..., "shape": [...]}, ...]``."""
        return [{"name": n, "shape": list(s)} for n, s in zip(self.names, self.shapes)]

    @property
    def numel(self) -> int:
        """Length of the flat vector."""
        return sum(math.prod(s) for s in self.shapes)

    def flatten(self, net: nn.Module) -> Tensor:
        """A new float32 CPU vector holding a *copy* of ``net``'s current parameters.

        The copy matters: on CPU ``p.detach().cpu()`` shares storage with the live weight, so a
        snapshot taken that way would silently follow later training.
        """
        params = dict(net.named_parameters())
        parts = [params[n].detach().reshape(-1) for n in self.names]
        return torch.cat(parts).to("cpu", torch.float32).clone()

    def unflatten(self, flat: Tensor) -> dict[str, Tensor]:
        """``{name: view}`` of ``flat`` (differentiable views, no copy)."""
        if flat.ndim != 1 or flat.numel() != self.numel:
            raise ConfigError(f"expected a flat vector of {self.numel} parameters, got shape {list(flat.shape)}")
        out: dict[str, Tensor] = {}
        offset = 0
        for name, shape in zip(self.names, self.shapes):
            size = math.prod(shape)
            out[name] = flat[offset : offset + size].view(shape)
            offset += size
        return out

    def load_into(self, net: nn.Module, flat: Tensor) -> None:
        """Copy ``flat`` into ``net``'s parameters in place."""
        params = dict(net.named_parameters())
        with torch.no_grad():
            for name, view in self.unflatten(flat).items():
                params[name].copy_(view)

    def check(self, net: nn.Module) -> None:
        """:class:`ConfigError` unless ``net`` has exactly these parameter names and shapes."""
        other = FlatSpec.of(net)
        if other != self:
            raise ConfigError(
                f"network parameters ({len(other.names)} tensors, {other.numel} numbers) do not match the "
                f"stored spec ({len(self.names)} tensors, {self.numel} numbers)"
            )

    def forward(self, net: nn.Module, flat: Tensor, x: Tensor) -> Tensor:
        """``net(x)`` evaluated at the parameters ``flat`` (``torch.func.functional_call``)."""
        return functional_call(net, self.unflatten(flat), (x,))
