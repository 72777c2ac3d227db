"""FedProx on the server: Flower's ``FedProx`` strategy with ddapps' accounting.

Li et al., "Federated Optimization in Heterogeneous Networks", MLSys 2020: the server is FedAvg;
each client minimises its local loss plus the proximal term ``mu/2 * ||w - w_t||^2`` (Eq. 2),
``w_t`` the global weights it received. Flower's ``FedProx`` sends ``mu`` as ``"proximal-mu"``
in the train ConfigRecord; the term itself is the client's job
(:func:`ddapps.federated.proximal.proximal_penalty`).
"""

from __future__ import annotations

from flwr.serverapp.strategy import FedProx

from ddapps.federated.fedavg import AccountedFedAvg


class AccountedFedProx(AccountedFedAvg, FedProx):
    """``FedProx`` with :class:`AccountedFedAvg`'s byte/failure accounting and seeded client sampling."""
