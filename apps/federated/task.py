"""The learning task of this app: ddapps' federated task (data, partition, model, training).

Imported here so that Flower's simulation actors import torch through a real module (functions
cloudpickled from ``__main__`` lose their imports in Ray actors).
"""

from ddapps.federated.task import (  # noqa: F401
    client_split,
    evaluate,
    initial_model,
    load_benchmark,
    local_benchmark,
    partitions,
)
