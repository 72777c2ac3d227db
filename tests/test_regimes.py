"""Label regimes: hard, fixed soft labels (bytes counted) and online KD, each with and without DSA."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from ddapps.errors import ConfigError
from ddapps.evaluation import EvalConfig, LabelRegime, evaluate_synset, soft_label_set, stored_bytes
from ddapps.evaluation.training import protocol_loss
from ddapps.synthetic import SyntheticSet
from ddapps.teacher import train_teacher
from ddapps.utils.seeding import make_generator
from tests.conftest import fake_benchmark


@pytest.fixture(scope="module")
def setup():
    real = fake_benchmark()
    teacher, _ = train_teacher(real, "mlp", {"width": 16}, epochs=20, batch_size=8, generator=make_generator(0))
    idx = torch.cat([real.train.class_indices(c)[:2] for c in range(3)])
    synset = SyntheticSet(
        images=real.train.images[idx], labels=real.train.labels[idx], num_classes=3, meta={"dataset": real.describe()}
    )
    return real, teacher, synset


@pytest.mark.parametrize("dsa", [False, True])
@pytest.mark.parametrize("name", ["hard", "soft", "kd"])
def test_each_regime_trains_and_is_recorded(setup, name, dsa):
    real, teacher, synset = setup
    config = EvalConfig(net="mlp", n_eval=1, epochs=15, dsa=dsa)
    regime = LabelRegime(name, teacher=teacher if name != "hard" else None, temperature=2.0)
    result = evaluate_synset(synset, real, config, regime=regime)
    assert result.protocol["labels"] == name and result.mean > 100 / 3
    assert result.protocol["dsa_strategy"] != "none" if dsa else result.protocol["dsa_strategy"] == "none"
    if name == "hard":
        assert result.protocol["temperature"] == 1.0 and "teacher_hash" not in result.protocol
    else:
        assert result.protocol["temperature"] == 2.0 and result.protocol["teacher_hash"] == teacher.hash


def test_kd_runs_the_teacher_on_every_augmented_view(setup):
    real, teacher, synset = setup
    seen = []
    spy = dataclasses.replace(teacher, net=torch.nn.Sequential(_Record(seen), teacher.net))
    config = EvalConfig(net="mlp", n_eval=1, epochs=3, dsa=True, batch_size=4)
    evaluate_synset(synset, real, config, regime=LabelRegime("kd", teacher=spy))
    assert len(seen) == 3 * 2  # 6 images, batch 4: two batches per epoch
    stored = {tuple(x.flatten().tolist()) for x in synset.images}
    assert any(tuple(x.flatten().tolist()) not in stored for batch in seen for x in batch)  # augmented views


class _Record(torch.nn.Module):
    def __init__(self, seen: list) -> None:
        super().__init__()
        self.seen = seen

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.clone())
        return x


def test_soft_labels_are_stored_and_their_bytes_counted(setup):
    real, teacher, synset = setup
    soft = soft_label_set(synset, teacher)
    n, k = 6, 3
    assert soft.labels.shape == (n, k) and soft.meta["teacher_hash"] == teacher.hash
    assert soft.stored_floats() == synset.stored_floats() + n * k
    assert stored_bytes(soft) == stored_bytes(synset) - n * 8 + n * k * 4  # int64 labels -> float32 logits
    torch.testing.assert_close(soft.labels, teacher.logits(synset.images))


def test_temperature_loss_is_kd_kl_up_to_a_constant():
    gen = make_generator(0)
    s, t = torch.randn(5, 4, generator=gen, requires_grad=True), torch.randn(5, 4, generator=gen)
    temp = 3.0
    ours = protocol_loss(s, t, "cross_entropy", 4, temp)
    kl = temp**2 * F.kl_div((s / temp).log_softmax(1), (t / temp).softmax(1), reduction="batchmean")
    p = (t / temp).softmax(1)
    entropy = -(p * p.log()).sum(1).mean()
    torch.testing.assert_close(ours, kl + temp**2 * entropy)
    plain = -(t.softmax(1) * s.log_softmax(1)).sum(1).mean()
    assert torch.equal(protocol_loss(s, t, "cross_entropy", 4), plain)  # T = 1 is the old soft CE, bit for bit


def test_regime_errors_are_one_config_error(setup):
    real, teacher, synset = setup
    with pytest.raises(ConfigError, match="needs a teacher"):
        LabelRegime("kd")
    with pytest.raises(ConfigError, match="unknown label regime"):
        LabelRegime("fuzzy")
    other = dataclasses.replace(synset, meta={"teacher_hash": "f" * 64})
    with pytest.raises(ConfigError, match="made with teacher ffff"):
        evaluate_synset(other, real, EvalConfig(net="mlp", n_eval=1, epochs=1), regime=LabelRegime("kd", teacher))
    shuffled = dataclasses.replace(teacher, class_names=["2", "1", "0"])
    with pytest.raises(ConfigError, match="class map differs"):
        evaluate_synset(synset, real, EvalConfig(net="mlp", n_eval=1, epochs=1), regime=LabelRegime("soft", shuffled))


def test_kd_without_augmentation_equals_fixed_soft_labels(setup):
    real, teacher, synset = setup  # the teacher's online outputs on unaugmented images are the stored soft labels
    config = EvalConfig(net="mlp", n_eval=2, epochs=5, dsa=False)
    soft = evaluate_synset(synset, real, config, regime=LabelRegime("soft", teacher))
    kd = evaluate_synset(synset, real, config, regime=LabelRegime("kd", teacher))
    assert soft.accuracies == kd.accuracies
