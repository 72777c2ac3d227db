"""Kernel ridge-regression meta-learning: KIP, RFAD and FRePo.

All three fit a kernel ridge regressor on the synthetic set and minimise its 0.5 * MSE on real
target batches (centred one-hot labels); they differ in the kernel: the analytic NTK/NNGP of an
infinitely wide fully-connected network (``kip``), a random-feature ConvNet NNGP (``rfad``), or
the features of a pool of finite networks trained online (``frepo``). Their sets are evaluated with
an MSE loss (``synset.eval_protocol.loss == "mse"``).
"""

from ddapps.methods.kernel.frepo import FRePo, FRePoConfig
from ddapps.methods.kernel.kip import KIP, KIPConfig
from ddapps.methods.kernel.krr import centered_one_hot, krr_loss, krr_predict
from ddapps.methods.kernel.ntk import fc_relu_kernel
from ddapps.methods.kernel.rfad import RFAD, RFADConfig, nngp_init_

__all__ = [
    "KIP",
    "RFAD",
    "FRePo",
    "FRePoConfig",
    "KIPConfig",
    "RFADConfig",
    "centered_one_hot",
    "fc_relu_kernel",
    "krr_loss",
    "krr_predict",
    "nngp_init_",
]
