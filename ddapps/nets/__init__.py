"""Networks for dataset distillation: a registry and a factory.

``create_net("convnet", in_channels=3, num_classes=10, image_size=32)`` builds ConvNet-3, the
default network of DC/DSA/DM/MTT (Zhao et al., ICLR 2021). Every network has
``forward(x) -> [N, num_classes]`` logits, ``embed(x) -> [N, feature_dim]`` features (those the
classifier sees) and a ``feature_dim`` attribute. ``reinitialize_(net, generator)`` draws fresh
weights in place, reproducibly.
"""

from __future__ import annotations

# Importing the network modules registers them in NETS.
from ddapps.nets import alexnet, convnet, lenet, mlp, resnet, vgg  # noqa: F401
from ddapps.nets.base import NETS, Net, batch_norm_layers
from ddapps.nets.convnet import fitting_depth
from ddapps.nets.factory import create_net, list_nets, net_options
from ddapps.nets.init import reinitialize_, reset_norm

__all__ = [
    "NETS",
    "Net",
    "batch_norm_layers",
    "create_net",
    "fitting_depth",
    "list_nets",
    "net_options",
    "reinitialize_",
    "reset_norm",
]
