"""Federated learning with distilled sets, run by Flower (extra ``federated``: flwr 1.42).

Clients send synthetic sets instead of weights: ``oneshot`` collects every client's distilled
set once and trains the global model on their union (DOSFL, Zhou et al. 2020); ``iterative``
repeats that with the global model sent down and used by the clients' distillation (FedDM-style,
Xiong et al., CVPR 2023); ``fedavg`` is Flower's own FedAvg strategy on the same model, partition
and evaluation (McMahan et al., AISTATS 2017).

Only :mod:`ddapps.federated.partition`, :mod:`ddapps.federated.settings` and
:mod:`ddapps.federated.cli` import without Flower; every other module imports ``flwr``.
"""
