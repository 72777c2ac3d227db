"""DP gradient matching (``dp-dc``, PSG): accounting, per-example clipping, determinism."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("opacus")

import ddapps.methods.dp_gradient_matching as dp_dc  # noqa: E402
from ddapps.dp.accounting import calibrate_noise, epsilon  # noqa: E402
from ddapps.dp.noise import SeededNoise  # noqa: E402
from ddapps.errors import ConfigError  # noqa: E402
from ddapps.methods import create_distiller  # noqa: E402
from ddapps.utils.seeding import make_generator  # noqa: E402
from tests.conftest import fake_benchmark  # noqa: E402

SMALL = {"iterations": 3, "batch_real": 6, "batch_train": 8, "outer_loop": 2, "inner_loop": 1, "net_options": {"width": 8}}


def test_recorded_epsilon_is_the_accountants_for_the_runs_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare: spy on the noise of every class sum
    seen: list[float] = []
    real_sum = dp_dc.clipped_gradient_sum
    monkeypatch.setattr(dp_dc, "clipped_gradient_sum", lambda g, c, std, gen: seen.append(std) or real_sum(g, c, std, gen))
    cfg = SMALL | {"dp_epsilon": 4.0, "dp_delta": 1e-4, "clip_norm": 0.5}
    # Execute: 3 iterations x 2 outer steps on 3 classes of 12 images (q = 6 / 12)
    synset = create_distiller("dp-dc", cfg).distill(fake_benchmark(public_stats=True), 2, generator=make_generator(0))
    # Assert: 6 accountant steps, one noisy sum per class per step, epsilon = Opacus' figure
    privacy = synset.meta["privacy"]
    sigma = calibrate_noise(4.0, 1e-4, 0.5, 6)
    assert privacy["steps"] == 6 and privacy["sample_rate"] == 0.5 and privacy["noise_multiplier"] == sigma
    assert privacy["epsilon"] == pytest.approx(epsilon(sigma, 0.5, 6, 1e-4)) and privacy["epsilon"] <= 4.0
    assert privacy["accountant"] == "opacus-rdp" and privacy["delta"] == 1e-4 and privacy["clip_norm"] == 0.5
    assert seen == [pytest.approx(sigma * 0.5)] * (6 * 3)


def _prepared(clip_norm: float):  # type: ignore[no-untyped-def]
    distiller = create_distiller("dp-dc", SMALL | {"dp_epsilon": "inf", "clip_norm": clip_norm})
    real = fake_benchmark()
    distiller.setup(real, 2, make_generator(0))
    return distiller, real


def test_per_example_gradients_are_each_examples_own_gradient() -> None:
    distiller, real = _prepared(1.0)
    x = real.train.images[:3]
    rows = distiller.per_example_gradients(x, 0)
    for i in range(3):
        loss = F.cross_entropy(distiller.net(x[i : i + 1]), torch.zeros(1, dtype=torch.long))
        flat = torch.cat([g.flatten() for g in torch.autograd.grad(loss, distiller.net_params)])
        assert torch.allclose(rows[i], flat, atol=1e-5)


def test_clipping_bounds_one_examples_contribution() -> None:
    # Prepare: a class batch, and the same batch plus one example with a huge gradient
    clip = 0.05
    distiller, real = _prepared(clip)
    x = real.train.images[real.train.class_indices(1)[:6]]
    outlier = 50.0 * torch.ones(1, *x.shape[1:])
    assert distiller.per_example_gradients(outlier, 1).norm() > 10 * clip  # clipping is active
    scale = distiller.private_run.sample_rate * float(distiller.private_run.class_sizes[1])
    # Execute: noiseless privatised gradients with and without the outlier (add/remove adjacency)
    distiller.real_indices(1, make_generator(0))  # a matching step's generator (unused: no noise)
    a = torch.cat([g.flatten() for g in distiller.real_gradients(x, 1)])
    b = torch.cat([g.flatten() for g in distiller.real_gradients(torch.cat([x, outlier]), 1)])
    # Assert: the unnormalised sum moves by exactly C, not by the outlier's own gradient norm
    moved = float((b - a).norm()) * scale
    assert moved == pytest.approx(clip, rel=1e-3)


def test_noise_is_added_with_the_calibrated_scale() -> None:
    total = dp_dc.clipped_gradient_sum(torch.zeros(0, 5000), 2.0, 3.0, SeededNoise(1))
    assert total.std().item() == pytest.approx(3.0, rel=0.05)


def test_secret_noise_differs_between_runs_with_the_same_seed() -> None:
    real = fake_benchmark(public_stats=True)
    a, b = (create_distiller("dp-dc", SMALL | {"dp_epsilon": 2.0}).distill(real, 2, generator=make_generator(5)) for _ in range(2))
    assert not torch.equal(a.images, b.images)
    assert a.meta["privacy"]["private"] is True and a.meta["privacy"]["epsilon"] <= 2.0


def test_deterministic_noise_repeats_and_is_flagged_not_private() -> None:
    real = fake_benchmark(public_stats=True)
    cfg = SMALL | {"dp_epsilon": 2.0, "dp_deterministic_noise": True}
    a, b = (create_distiller("dp-dc", cfg).distill(real, 2, generator=make_generator(5)) for _ in range(2))
    c = create_distiller("dp-dc", SMALL | {"dp_epsilon": "inf", "dp_deterministic_noise": True}).distill(
        real, 2, generator=make_generator(5)
    )
    assert torch.equal(a.images, b.images) and not torch.equal(a.images, c.images)
    assert a.meta["privacy"]["private"] is False and a.meta["privacy"]["epsilon"] is None
    assert 0 < a.meta["privacy"]["nominal_epsilon"] <= 2.0
    assert c.meta["privacy"]["epsilon"] is None and c.meta["config"]["dp_epsilon"] == "inf"


def test_refusals() -> None:
    with pytest.raises(ConfigError, match="init='real'"):
        create_distiller("dp-dc", {"init": "real", "dp_epsilon": 1.0})
    with pytest.raises(ConfigError, match="batch norm"):
        create_distiller("dp-dc", SMALL | {"net": "convnet_bn"}).distill(fake_benchmark(), 2)
    with pytest.raises(ConfigError, match="dp_epsilon"):
        create_distiller("dp-dc", {"dp_epsilon": -1.0})
    assert create_distiller("dp-dc", {"dp_epsilon": math.inf, "init": "real"}).config.init == "real"
