"""The proxy evaluator NNI runs: train a sampled architecture on proxy data, report validation accuracy.

An NNI ``FunctionalEvaluator`` calls :func:`proxy_trial` with the frozen model and the keyword
arguments given to :func:`make_evaluator`. NNI serializes those arguments (to checkpoints, and to
trial subprocesses under the local training service), so they are paths and numbers: each proxy's
data (a saved :class:`~ddapps.synthetic.SyntheticSet`, or a :func:`~ddapps.nas.scoring.save_data_proxy`
file) and the validation images carved from the real training split
(:func:`~ddapps.nas.proxy_data.save_tensors`) travel as files.

The trial is :func:`~ddapps.nas.scoring.score_architecture`, the scorer the rank study uses in
process: a search and a study with the same seed, proxy and budget score an architecture alike.
Each proxy's accuracy, then (with ``ceiling``) each proxy's second-initialisation accuracy, then
each proxy's training seconds are reported as intermediate results, in the order the proxies were
given; the first proxy's accuracy is the final result (what a search ranks by).
The trial never sees the test split. An exception inside a trial (for example an architecture that
does not fit the input size) propagates to NNI, which records the trial as failed.
"""

from __future__ import annotations

from typing import Any, Mapping

from torch import nn

from ddapps.errors import ConfigError
from ddapps.nas.proxy_data import load_tensors
from ddapps.nas.scoring import ArchitectureScore, load_data_proxy, resize, resized, score_architecture
from ddapps.nas.training import StepBudget

OPTIONS = ("batch_size", "seed", "device", "resolution", "ceiling")


def proxy_scores(
    model: nn.Module,
    *,
    proxies: Mapping[str, str],
    val_path: str,
    steps: int,
    batch_size: int = 64,
    seed: int = 0,
    device: str = "cpu",
    resolution: int | None = None,
    ceiling: bool = False,
) -> ArchitectureScore:
    """Every proxy's score of ``model`` (``proxies``: name -> data file), images pooled to ``resolution``."""
    data = {name: resized(load_data_proxy(path), resolution) for name, path in proxies.items()}
    val_images, val_labels = load_tensors(val_path)
    val = (resize(val_images, resolution), val_labels)
    budget = StepBudget(steps=steps, batch_size=batch_size)
    return score_architecture(model, data, budget, seed=seed, val=val, ceiling=ceiling, device=device)


def proxy_trial(model: nn.Module, **kwargs: Any) -> float:
    """NNI trial body: :func:`proxy_scores`, reported with ``nni.report_intermediate_result`` /
    ``nni.report_final_result`` (see the module docstring)."""
    import nni

    score = proxy_scores(model, **kwargs)
    values = list(score.accuracy.values())
    for value in [*values, *score.ceiling.values(), *score.seconds.values()]:
        nni.report_intermediate_result(value)
    nni.report_final_result(values[0])
    return values[0]


def make_evaluator(proxies: Mapping[str, str] | str, val_path: str, *, steps: int, **options: Any) -> Any:
    """An NNI ``FunctionalEvaluator`` running :func:`proxy_trial` with these (serializable) arguments.

    ``proxies`` maps proxy names to data files (a single path is the proxy ``"synset"``); ``options``
    are :func:`proxy_scores`'s other keyword arguments (``batch_size``, ``seed``, ``device``,
    ``resolution``, ``ceiling``).
    """
    from nni.nas.evaluator import FunctionalEvaluator

    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise TypeError(f"make_evaluator got unknown option(s) {unknown}")
    named = {"synset": str(proxies)} if isinstance(proxies, str) else {str(k): str(v) for k, v in proxies.items()}
    if not named:
        raise ConfigError("the evaluator needs at least one proxy")
    StepBudget(steps=steps, batch_size=int(options.get("batch_size", 64)))  # validate before any trial runs
    return FunctionalEvaluator(proxy_trial, proxies=named, val_path=str(val_path), steps=int(steps), **options)
