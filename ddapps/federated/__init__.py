"""Federated learning with distilled sets, run by Flower (extra ``federated``: flwr 1.42).

Clients send synthetic sets instead of weights: ``oneshot`` collects every client's distilled
set once and trains the global model on their union (DOSFL, Zhou et al. 2020); ``iterative``
repeats that with the global model sent down and used by the clients' distillation (FedDM-style,
Xiong et al., CVPR 2023); ``fedavg`` / ``fedprox`` are Flower's own FedAvg / FedProx strategies on
the same model, partition and evaluation (McMahan et al., AISTATS 2017; Li et al., MLSys 2020);
``subset``, ``oneshot-noise`` and ``oneshot-dp`` are the one-shot baselines of
:mod:`ddapps.federated.modes`.

Only :mod:`ddapps.federated.partition`, :mod:`ddapps.federated.modes`,
:mod:`ddapps.federated.settings`, :mod:`ddapps.federated.sampling`,
:mod:`ddapps.federated.proximal` and :mod:`ddapps.federated.cli` import without Flower; every other
module imports ``flwr``.
"""
