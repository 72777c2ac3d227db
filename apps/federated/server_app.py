"""ServerApp of this Flower app: ``ddapps.federated.server_app.app``.

Reads the run config (``[tool.flwr.app.config]`` + ``--run-config``) and runs the mode it names:
``oneshot``, ``iterative`` or ``fedavg``.
"""

import task  # noqa: F401  -- torch imported through a real module (see task.py)

from ddapps.federated import server_app as _ddapps_server

app = _ddapps_server.app
