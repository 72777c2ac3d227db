"""The batched evaluator trains each network along the trajectory it has alone (to float rounding)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from ddapps.augment import DSA
from ddapps.errors import ConfigError
from ddapps.evaluation import EvalConfig, evaluate_tensors
from ddapps.evaluation.batched import accuracies_batched, can_batch, train_classifiers_batched
from ddapps.evaluation.training import TrainSettings, train_classifier
from ddapps.evaluation.training import test_accuracy as accuracy_one
from ddapps.nets import create_net
from ddapps.utils.precision import use_precision
from ddapps.utils.seeding import make_generator
from tests.conftest import fake_benchmark

IMAGES = torch.randn(24, 1, 16, 16, generator=make_generator(0))
LABELS = torch.arange(4).repeat_interleave(6)
SOFT = torch.randn(24, 4, generator=make_generator(1))


def _nets(name: str, k: int = 3, **options) -> list[nn.Module]:
    return [create_net(name, 1, 4, (16, 16), generator=make_generator(10 + i), **options) for i in range(k)]


def _both(nets, labels, settings, augment=None, relabel=None):
    """Train copies of ``nets`` one by one and together; return both lists."""
    alone = copy.deepcopy(nets)
    for i, net in enumerate(alone):
        train_classifier(net, IMAGES, labels, settings, generator=make_generator(100 + i), augment=augment,
                         relabel=relabel)  # fmt: skip
    together = train_classifiers_batched(
        copy.deepcopy(nets), IMAGES, labels, settings, generators=[make_generator(100 + i) for i in range(len(nets))],
        augment=augment, relabel=relabel,
    )  # fmt: skip
    return alone, together


def _assert_same_weights(alone, together, rel: float = 1e-4) -> None:
    for a, b in zip(alone, together):
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys()
        for name in sa:
            scale = max(1.0, float(sa[name].float().abs().max()))
            assert torch.allclose(sa[name].float(), sb[name].float(), atol=rel * scale, rtol=0), name


@pytest.mark.parametrize("norm", ["instance", "batch", "none"])
def test_convnets_with_dsa_follow_their_own_trajectories(norm) -> None:
    nets = _nets("convnet", width=8, depth=2, norm=norm)
    settings = TrainSettings(epochs=4, batch_size=10)  # three batches an epoch, the last one short
    alone, together = _both(nets, LABELS, settings, augment=DSA("color_crop_cutout_scale_rotate"))
    _assert_same_weights(alone, together)
    # the networks really differ from each other (a mix-up of generators would not pass the check above)
    assert not torch.allclose(alone[0].state_dict()["classifier.weight"], alone[1].state_dict()["classifier.weight"])


@pytest.mark.parametrize("loss,labels", [("cross_entropy", SOFT), ("mse", LABELS), ("mse", SOFT)])
def test_soft_labels_and_the_mse_protocol(loss, labels) -> None:
    settings = TrainSettings(epochs=3, batch_size=16, loss=loss, temperature=2.0 if loss == "cross_entropy" else 1.0)
    alone, together = _both(_nets("convnet", width=8, depth=2), labels, settings)
    _assert_same_weights(alone, together)


def test_a_teacher_relabels_each_networks_augmented_batch() -> None:
    teacher = create_net("convnet", 1, 4, (16, 16), generator=make_generator(5), width=8, depth=1).eval()
    settings = TrainSettings(epochs=3, batch_size=12)
    alone, together = _both(_nets("convnet", width=8, depth=2), LABELS, settings, augment=DSA("crop_scale"),
                            relabel=teacher)  # fmt: skip
    _assert_same_weights(alone, together)


@pytest.mark.parametrize("name", ["mlp", "lenet", "resnet18", "vgg11", "alexnet"])
def test_every_architecture_batches(name) -> None:
    nets = [create_net(name, 1, 4, (16, 16), generator=make_generator(10 + i)) for i in range(2)]
    alone, together = _both(nets, LABELS, TrainSettings(epochs=2, batch_size=12))
    _assert_same_weights(alone, together, rel=1e-3)


def test_batched_testing_equals_testing_each_network() -> None:
    nets = _nets("convnet", width=8, depth=2, norm="batch")
    for net in nets:
        train_classifier(net, IMAGES, LABELS, TrainSettings(epochs=2, batch_size=12), generator=make_generator(3))
    one_by_one = [accuracy_one(net, IMAGES, LABELS, batch_size=7) for net in nets]
    assert accuracies_batched(nets, IMAGES, LABELS, batch_size=7) == one_by_one
    assert len(set(one_by_one)) > 1 or one_by_one[0] not in (0.0, 100.0)


def test_the_protocol_gives_the_same_accuracies_batched_or_not() -> None:
    benchmark = fake_benchmark(num_classes=4, per_class=10, size=16, seed=3)
    images, labels = benchmark.train.images[:12], benchmark.train.labels[:12]
    config = EvalConfig(net_options={"width": 8, "depth": 2}, n_eval=3, epochs=5, batched=True)
    batched = evaluate_tensors(images, labels, benchmark, config, seed=4)
    sequential = evaluate_tensors(
        images, labels, benchmark, EvalConfig(**{**config.__dict__, "batched": False}), seed=4
    )
    assert batched.protocol["batched"] is True and sequential.protocol["batched"] is False
    assert EvalConfig().batches_on("cpu") is False and EvalConfig().batches_on("cuda") is True
    assert batched.accuracies == pytest.approx(
        sequential.accuracies, abs=100 / 16 + 1e-9
    )  # at most one of 16 test images
    single = evaluate_tensors(images, labels, benchmark, EvalConfig(**{**config.__dict__, "n_eval": 1}), seed=4)
    assert single.protocol["batched"] is False and single.accuracies == [sequential.accuracies[0]]


def test_bf16_autocast_runs_batched_and_stays_close() -> None:
    settings = TrainSettings(epochs=2, batch_size=12)
    with use_precision("bf16"):
        alone, together = _both(_nets("convnet", width=8, depth=2), LABELS, settings)
    _assert_same_weights(alone, together, rel=2e-2)


def test_mixed_architectures_and_generator_counts_are_refused() -> None:
    mixed = [*_nets("convnet", 1, width=8, depth=2), *_nets("convnet", 1, width=16, depth=2)]
    assert not can_batch(mixed) and not can_batch(_nets("convnet", 1, width=8))
    with pytest.raises(ConfigError, match="one architecture"):
        train_classifiers_batched(mixed, IMAGES, LABELS, TrainSettings(epochs=1), generators=[make_generator(0)] * 2)
    with pytest.raises(ConfigError, match="generators"):
        train_classifiers_batched(
            _nets("mlp", 2), IMAGES, LABELS, TrainSettings(epochs=1), generators=[make_generator(0)]
        )
