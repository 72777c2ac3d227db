"""ClientApp of this Flower app: ``ddapps.federated.client_app.app``.

``train.distill`` distils the node's partition with the configured ddapps method and replies with
the synthetic set as records; ``train`` is the FedAvg baseline's local training.
"""

import task  # noqa: F401  -- torch imported through a real module (see task.py)

from ddapps.federated import client_app as _ddapps_client

app = _ddapps_client.app
