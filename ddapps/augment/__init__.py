"""Augmentation for dataset distillation: Differentiable Siamese Augmentation (DSA).

Zhao & Bilen, "Dataset Condensation with Differentiable Siamese Augmentation", ICML 2021
(arXiv:2102.08259). Sample once, apply the same draw to the real and the synthetic batch::

    from ddapps.augment import DSA, default_strategy
    dsa = DSA(default_strategy("cifar10"))
    real_aug, syn_aug = dsa.siamese(real, syn, generator=g)   # one shared transform
    loss = match(net(real_aug), net(syn_aug))

Modules: :mod:`.params` (DSAParams, AugParams), :mod:`.functional` (deterministic differentiable
image ops), :mod:`.ops` (per-op samplers and appliers, registry ``OPS``), :mod:`.dsa` (DSA).
"""

from ddapps.augment.dsa import (
    DIGITS_STRATEGY,
    DSA,
    FULL_STRATEGY,
    MODES,
    default_strategy,
    parse_strategy,
)
from ddapps.augment.ops import OPS
from ddapps.augment.params import AugParams, DSAParams

__all__ = [
    "DSA",
    "DSAParams",
    "AugParams",
    "OPS",
    "MODES",
    "FULL_STRATEGY",
    "DIGITS_STRATEGY",
    "default_strategy",
    "parse_strategy",
]
