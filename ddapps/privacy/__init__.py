"""Privacy for distillation (extra ``privacy``: Opacus).

* :mod:`ddapps.privacy.accounting` -- epsilon and noise calibration with Opacus' RDP accountant;
* ``dp-dm`` (:mod:`ddapps.methods.dp_dm`) -- differentially private distribution matching;
* :mod:`ddapps.privacy.audit` -- membership-inference audit (loss threshold, LiRA) and memorisation;
* :mod:`ddapps.privacy.cli` -- ``ddapps privacy audit``.

Nothing here imports Opacus at import time.
"""
