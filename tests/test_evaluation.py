"""The evaluation protocol: seeded, uses a set's learned lr and loss, cross-architecture, real subsets."""

from __future__ import annotations

import pytest
import torch

from ddapps.errors import ConfigError
from ddapps.evaluation import EvalConfig, evaluate_cross_architecture, evaluate_real, evaluate_synset
from ddapps.evaluation.training import TrainSettings, train_classifier
from ddapps.nets import create_net
from ddapps.synthetic import EvalProtocol, SyntheticSet
from tests.conftest import fake_benchmark

FAST = EvalConfig(n_eval=2, epochs=30, dsa=False, net="mlp")


def real_set(real, ipc: int = 3) -> SyntheticSet:
    idx = torch.cat([real.train.class_indices(c)[:ipc] for c in range(real.num_classes)])
    return SyntheticSet(images=real.train.images[idx], labels=real.train.labels[idx], num_classes=real.num_classes,
                        meta={"method": "t", "ipc": ipc})


def test_protocol_learns_and_is_seeded() -> None:
    real = fake_benchmark()
    a = evaluate_synset(real_set(real), real, FAST, seed=1)
    b = evaluate_synset(real_set(real), real, FAST, seed=1)
    assert a.accuracies == b.accuracies and len(a.accuracies) == 2
    assert a.mean > 100 / 3 + 20  # well above chance on separable blobs
    assert a.protocol["epochs"] == 30 and a.protocol["lr"] == 0.01


def test_default_epochs_follow_the_papers() -> None:
    assert EvalConfig(dsa=True).resolved_epochs() == 1000
    assert EvalConfig(dsa=False).resolved_epochs() == 300
    with pytest.raises(ConfigError):
        EvalConfig(n_eval=0)


def test_learned_lr_and_mse_protocol_are_used() -> None:
    real = fake_benchmark()
    synset = real_set(real)
    synset.lr = torch.tensor(0.05)
    synset.eval_protocol = EvalProtocol(loss="mse")
    result = evaluate_synset(synset, real, FAST)
    assert result.protocol["lr"] == pytest.approx(0.05) and result.protocol["loss"] == "mse"


def test_soft_labels_train() -> None:
    real = fake_benchmark()
    hard = real_set(real)
    soft = SyntheticSet(images=hard.images, labels=torch.nn.functional.one_hot(hard.labels, 3).float() * 5,
                        num_classes=3, meta=hard.meta)
    assert evaluate_synset(soft, real, FAST).mean > 50


def test_lr_decays_once_after_half() -> None:
    net = create_net("mlp", 1, 3, 8, generator=torch.Generator().manual_seed(0))
    real = fake_benchmark()
    seen = []
    original = torch.optim.SGD.step

    def spy(self, *args, **kwargs):
        seen.append(self.param_groups[0]["lr"])
        return original(self, *args, **kwargs)

    torch.optim.SGD.step = spy
    try:
        train_classifier(net, real.train.images, real.train.labels, TrainSettings(epochs=4, batch_size=1000),
                         generator=torch.Generator().manual_seed(0))
    finally:
        torch.optim.SGD.step = original
    assert seen == pytest.approx([0.01, 0.01, 0.01, 0.001])


def test_cross_architecture_and_real_subsets() -> None:
    real = fake_benchmark()
    results = evaluate_cross_architecture(real_set(real), real, ["mlp", "lenet"], FAST)
    assert [r.net for r in results] == ["mlp", "lenet"]
    full = evaluate_real(real, None, FAST)
    subset = evaluate_real(real, torch.tensor([0, 12, 24]), FAST)
    assert full.mean >= 0 and subset.mean >= 0 and len(full.accuracies) == 2


def test_incompatible_set_is_refused() -> None:
    real = fake_benchmark()
    other = SyntheticSet(images=torch.zeros(3, 1, 4, 4), labels=torch.arange(3), num_classes=3)
    with pytest.raises(ConfigError, match="shape"):
        evaluate_synset(other, real, FAST)
