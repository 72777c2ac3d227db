"""Differential privacy in the core: the mechanism, its secret noise and the accountant.

* :mod:`ddapps.dp.mechanism` -- Poisson sampling, per-example clipping and noisy class sums shared
  by ``dp-dm`` and ``dp-dc`` (Private Set Generation, Chen et al., NeurIPS 2022), the privacy options
  (:class:`~ddapps.dp.mechanism.DPOptions`), the checks that nothing else private reaches a release,
  and the ``meta["privacy"]`` record;
* :mod:`ddapps.dp.noise` -- the mechanism's randomness: a secret OS source, or a seeded one for tests;
* :mod:`ddapps.dp.accounting` -- epsilon and noise calibration with Opacus' RDP accountant.

Opacus is imported inside the accountant's functions only.
"""
