"""The proxy evaluator: train a sampled architecture on a saved synthetic set, report validation accuracy.

An NNI ``FunctionalEvaluator`` calls :func:`proxy_trial` with the frozen model and the keyword
arguments given to :func:`make_evaluator`. NNI serializes those arguments (to checkpoints, and to
trial subprocesses under the local training service), so they are paths and numbers: the
synthetic set (``SyntheticSet.save``) and the validation images carved from the real training
split (:func:`~ddapps.nas.proxy_data.save_tensors`) travel as files. The trial trains the model
for a fixed number of SGD steps (:mod:`ddapps.nas.training`) on the synthetic set, measures top-1
accuracy (percent) on the validation images and reports it with ``nni.report_final_result``.
It never sees the test split. An exception inside a trial (for example an architecture that does
not fit the input size) propagates to NNI, which records the trial as failed.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ddapps.evaluation.training import test_accuracy
from ddapps.nas.proxy_data import load_tensors
from ddapps.nas.training import StepBudget, train_steps
from ddapps.synthetic import SyntheticSet
from ddapps.utils.seeding import derive_seed, make_generator


def architecture_seed(seed: int, model: nn.Module) -> int:
    """A seed that depends on ``seed`` and on the architecture only (its module structure)."""
    return derive_seed(seed, "nas-arch", repr(model))


def proxy_accuracy(
    model: nn.Module,
    *,
    synset_path: str,
    val_path: str,
    steps: int,
    batch_size: int = 64,
    seed: int = 0,
    device: str = "cpu",
) -> float:
    """Validation accuracy (percent) of ``model`` after ``steps`` SGD steps on the synthetic set.

    The model is (re)initialized from a generator seeded by ``seed`` and its architecture, so the
    same architecture gets the same weights in every trial and every run.
    """
    from ddapps.nas.nni_space import materialize

    synset = SyntheticSet.load(synset_path)
    val_images, val_labels = load_tensors(val_path)
    images, labels = synset.training_data()
    generator = make_generator(architecture_seed(seed, model))
    materialize(model, generator, device)
    lr = float(synset.lr) if synset.lr is not None else None
    loss = synset.eval_protocol.loss
    train_steps(
        model, images.detach(), labels.detach(), StepBudget(steps=steps, batch_size=batch_size),
        generator=generator, lr=lr, loss=loss, device=device,
    )  # fmt: skip
    return test_accuracy(model, val_images, val_labels, device=device)


def proxy_trial(model: nn.Module, **kwargs: Any) -> float:
    """NNI trial body: :func:`proxy_accuracy`, reported with ``nni.report_final_result``."""
    import nni

    accuracy = proxy_accuracy(model, **kwargs)
    nni.report_final_result(accuracy)
    return accuracy


def make_evaluator(synset_path: str, val_path: str, *, steps: int, **options: Any) -> Any:
    """An NNI ``FunctionalEvaluator`` running :func:`proxy_trial` with these (serializable) arguments.

    ``options`` are :func:`proxy_accuracy`'s other keyword arguments (``batch_size``, ``seed``, ``device``).
    """
    from nni.nas.evaluator import FunctionalEvaluator

    unknown = sorted(set(options) - {"batch_size", "seed", "device"})
    if unknown:
        raise TypeError(f"make_evaluator got unknown option(s) {unknown}")
    StepBudget(steps=steps, batch_size=int(options.get("batch_size", 64)))  # validate before any trial runs
    return FunctionalEvaluator(
        proxy_trial, synset_path=str(synset_path), val_path=str(val_path), steps=int(steps), **options
    )
