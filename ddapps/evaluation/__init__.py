"""Evaluation: the standard protocol (train fresh nets on a set, test once) and its variants."""

from ddapps.evaluation.protocol import (
    EvalConfig,
    EvalResult,
    evaluate_cross_architecture,
    evaluate_real,
    evaluate_synset,
    evaluate_tensors,
)
from ddapps.evaluation.regimes import LABEL_REGIMES, LabelRegime, regime_bytes, soft_label_set, stored_bytes
from ddapps.evaluation.training import TrainSettings, embed_all, test_accuracy, train_classifier

__all__ = [
    "EvalConfig",
    "EvalResult",
    "LABEL_REGIMES",
    "LabelRegime",
    "TrainSettings",
    "embed_all",
    "evaluate_cross_architecture",
    "evaluate_real",
    "evaluate_synset",
    "evaluate_tensors",
    "regime_bytes",
    "soft_label_set",
    "stored_bytes",
    "test_accuracy",
    "train_classifier",
]
