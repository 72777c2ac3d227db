"""Privacy for distillation (extra ``privacy``: Opacus).

The DP mechanism and accountant live in the core package :mod:`ddapps.dp`; this package holds
what measures and chooses:

* :mod:`ddapps.privacy.selection` -- hyper-parameters of DP runs chosen on public data;
* :mod:`ddapps.privacy.audit` -- membership-inference audit (loss threshold, LiRA) and memorisation;
* :mod:`ddapps.privacy.cli` -- ``ddapps privacy audit``.

Nothing here imports Opacus at import time.
"""
