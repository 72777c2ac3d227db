"""Distilled data as a neural-architecture-search proxy, run by NNI 3.0 (extra ``nas``).

Training every candidate architecture on the full data is what makes NAS expensive; a distilled
set is a cheap proxy if it ranks architectures the way full training does (Zhao et al., "Dataset
Condensation with Gradient Matching", ICLR 2021, Sec. 4.3: 720 ConvNets on CIFAR-10). This package
offers

* :mod:`ddapps.nas.space` -- the ConvNet space ``convnet720`` (depth x width x norm x act x pool)
  and user-defined spaces of the same shape, sampled with a ``torch.Generator`` (no NNI needed);
* :mod:`ddapps.nas.nni_space` -- the same space as an NNI ``ModelSpace``;
* :mod:`ddapps.nas.evaluator` -- the proxy evaluator (NNI ``FunctionalEvaluator``);
* :mod:`ddapps.nas.search` -- Random / RegularizedEvolution / GridSearch through ``NasExperiment``;
* :mod:`ddapps.nas.rank` and :mod:`ddapps.nas.stats` -- the rank-correlation study.

Nothing here imports NNI at module level except :mod:`~ddapps.nas.nni_space`,
:mod:`~ddapps.nas.evaluator` (lazily) and :mod:`~ddapps.nas.search`, so ``import ddapps.nas.cli``
works without the extra.
"""
