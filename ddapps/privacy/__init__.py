"""Privacy for distillation (extra ``privacy``: Opacus).

* :mod:`ddapps.privacy.accounting` -- epsilon and noise calibration with Opacus' RDP accountant;
* :mod:`ddapps.privacy.mechanism` -- the clipped, noisy class sums and privacy options shared by
  ``dp-dm`` (:mod:`ddapps.methods.dp_dm`, distribution matching) and ``dp-dc``
  (:mod:`ddapps.methods.dp_gradient_matching`, gradient matching as in PSG);
* :mod:`ddapps.privacy.audit` -- membership-inference audit (loss threshold, LiRA) and memorisation;
* :mod:`ddapps.privacy.cli` -- ``ddapps privacy audit``.

Nothing here imports Opacus at import time.
"""
