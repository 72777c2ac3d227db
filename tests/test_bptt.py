"""BPTT (Wang et al., 2018): unrolled inner training, learned per-step learning rates."""

from __future__ import annotations

import pytest
import torch

from ddapps.errors import ConfigError
from ddapps.methods import create_distiller
from ddapps.methods.bptt import BackpropThroughTime, inverse_softplus, step_batches
from ddapps.methods.trajectory.unroll import StepPlan, unroll_sgd
from ddapps.utils.seeding import make_generator
from tests.conftest import fake_benchmark

TINY = BackpropThroughTime.smoke_config


def test_step_batches_are_class_balanced_and_cycle() -> None:
    batches = step_batches(num_classes=3, ipc=2, inner_steps=3, step_ipc=1)
    assert [b.tolist() for b in batches] == [[0, 2, 4], [1, 3, 5], [0, 2, 4]]
    assert step_batches(3, 1, 2, 1)[1].tolist() == [0, 1, 2]  # ipc 1: every step uses the whole set


def test_inverse_softplus() -> None:
    assert torch.nn.functional.softplus(torch.tensor(inverse_softplus(0.02))).item() == pytest.approx(0.02)


def test_unroll_sgd_takes_one_rate_per_step() -> None:
    net = torch.nn.Linear(2, 2)
    from ddapps.methods.trajectory.flat import FlatSpec

    spec = FlatSpec.of(net)
    plan = StepPlan((torch.arange(2), torch.arange(2)), (None, None))
    x, y = torch.randn(2, 2), torch.tensor([0, 1])
    start = spec.flatten(net)
    zero_second = unroll_sgd(net, spec, start, x, y, torch.tensor([0.1, 0.0]), plan)
    one_step = unroll_sgd(net, spec, start, x, y, torch.tensor(0.1), StepPlan(plan.batches[:1], plan.augs[:1]))
    assert torch.allclose(zero_second, one_step)
    with pytest.raises(ConfigError, match="one learning rate per step"):
        unroll_sgd(net, spec, start, x, y, torch.tensor([0.1, 0.1, 0.1]), plan)


def test_learns_its_objective_and_the_rates() -> None:
    # Prepare: noise-initialised images; the loss is the real-data CE after unrolled training.
    real = fake_benchmark()
    losses: list[float] = []
    # a few unrolled steps barely move a normalised ConvNet from random init; a small MLP learns in seconds
    config = TINY | {"iterations": 30, "lr_img": 0.05, "batch_real": 36, "lr_init": 0.1, "net": "mlp",
                     "net_options": {"width": 32}, "lr_decay_every": 1000}
    # Execute
    synset = create_distiller("bptt", config).distill(
        real, 2, generator=make_generator(0), callbacks=[lambda e: losses.append(e.loss)]
    )
    # Assert: the objective falls (fresh random init each iteration, so compare averages)
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5
    assert len(synset.meta["learned_lrs"]) == 4 and synset.lr is None
    assert any(abs(v - 0.1) > 1e-3 for v in synset.meta["learned_lrs"])


def test_learned_eval_lr_is_stored() -> None:
    synset = create_distiller("bptt", TINY | {"eval_lr": "learned"}).distill(fake_benchmark(), 1)
    assert float(synset.lr) == pytest.approx(sum(synset.meta["learned_lrs"]) / 4)


@pytest.mark.parametrize("bad", [{"inner_steps": 0}, {"lr_init": 0}, {"eval_lr": "best"}, {"betas": [0.5]}])
def test_rejects_bad_config(bad: dict) -> None:
    with pytest.raises(ConfigError):
        create_distiller("bptt", bad)
