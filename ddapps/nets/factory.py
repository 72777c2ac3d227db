"""``create_net``: build a registered network by name, timm style.

Options passed as ``None`` are dropped before they reach the builder, so a config that leaves an
option unset never overrides the network's own default; an option the network does not take is a
:class:`~ddapps.errors.ConfigError` naming the ones it does.
"""

from __future__ import annotations

import inspect
from typing import Any, Sequence

import torch

from ddapps.errors import ConfigError
from ddapps.nets.base import NETS, Net
from ddapps.nets.init import reinitialize_

_POSITIONAL = ("in_channels", "num_classes", "image_size")


def list_nets() -> list[str]:
    """Registered network names, sorted."""
    return NETS.names()


def net_options(name: str) -> dict[str, Any]:
    """The options network ``name`` accepts, with their defaults (``{"width": 128, ...}``)."""
    params = inspect.signature(NETS.get(name)).parameters.values()
    return {
        p.name: p.default
        for p in params
        if p.name not in _POSITIONAL
        and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        and p.default is not p.empty
    }


def create_net(
    name: str,
    in_channels: int,
    num_classes: int,
    image_size: int | Sequence[int],
    *,
    generator: torch.Generator | None = None,
    **opts: Any,
) -> Net:
    """Build network ``name`` for ``in_channels`` x ``image_size`` images and ``num_classes``.

    ``image_size`` is an int or ``(H, W)``. With a ``generator`` the network is built on the meta
    device (no memory, no draws from the global RNG) and then given CPU storage and initialized by
    :func:`~ddapps.nets.init.reinitialize_` from it: the same generator seed gives identical
    weights. Without one, PyTorch's default initialization from the global RNG is used.
    """
    builder = NETS.get(name)
    opts = {key: value for key, value in opts.items() if value is not None}
    accepted = net_options(name)
    unknown = sorted(set(opts) - set(accepted))
    if unknown:
        choices = ", ".join(sorted(accepted)) or "none"
        raise ConfigError(
            f"network {name!r} got unknown option(s) {', '.join(map(repr, unknown))}; it accepts: {choices}"
        )
    if generator is None:
        return builder(in_channels, num_classes, image_size, **opts)
    with torch.device("meta"):
        net = builder(in_channels, num_classes, image_size, **opts)
    net.to_empty(device="cpu")
    return reinitialize_(net, generator)
