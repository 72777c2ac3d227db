"""Client mods (Flower's composable handler wrappers): fault reporting and fault injection.

Order in :data:`ddapps.federated.client_app.app` (outermost first): ``error_reply_mod`` then
``fault_injection_mod``, so an injected failure is reported exactly as a real one.

* ``error_reply_mod`` turns any exception of the handler into an error reply naming the
  partition (what Flower's simulation worker does too, but with the partition id, and also when a
  ClientApp is called directly): the server reports it and the round goes on with the rest.
* ``fault_injection_mod`` makes the partitions listed in the run config's ``fail-partitions``
  raise (``fail-mode = "raise"``) or sleep ``stall-seconds`` first (``"stall"``: a time-out when
  that exceeds the server's ``round-timeout``). For tests and acceptance runs only.
"""

from __future__ import annotations

import time

from flwr.app import Context, Error, Message
from flwr.clientapp.typing import ClientAppCallable

CONFIG_KEY = "config"
CLIENT_APP_RAISED_EXCEPTION = 2  # flwr.common.constant.ErrorCode.CLIENT_APP_RAISED_EXCEPTION


class InjectedFault(RuntimeError):
    """The failure ``fault_injection_mod`` raises on purpose."""


def partition_id(context: Context) -> int:
    """This node's partition (``partition-id`` of its node config)."""
    value = context.node_config.get("partition-id")
    if value is None:
        raise KeyError("node config has no 'partition-id' (start the SuperNode with --node-config 'partition-id=N')")
    return int(value)


def error_reply_mod(message: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """Reply with an :class:`~flwr.app.Error` instead of raising (the reason names the partition)."""
    try:
        return call_next(message, context)
    except Exception as err:
        pid = context.node_config.get("partition-id", "?")
        reason = f"partition {pid}: {type(err).__name__}: {err}"
        return Message(Error(code=CLIENT_APP_RAISED_EXCEPTION, reason=reason), reply_to=message)


def fault_injection_mod(message: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """Fail or stall on purpose when this partition is listed in ``fail-partitions``."""
    config = message.content.config_records.get(CONFIG_KEY) if message.has_content() else None
    if config is not None:
        listed = {int(v) for v in str(config.get("fail-partitions", "")).split(",") if v.strip()}
        if partition_id(context) in listed:
            if str(config.get("fail-mode", "raise")) == "stall":
                time.sleep(float(str(config.get("stall-seconds", 0.0))))
            else:
                raise InjectedFault(f"injected failure of partition {partition_id(context)}")
    return call_next(message, context)
