"""DP distribution matching: clipping bounds sensitivity, the noise is calibrated, meta is recorded."""

from __future__ import annotations

import math

import pytest
import torch

pytest.importorskip("opacus")

import ddapps.dp.mechanism as mechanism  # noqa: E402
from ddapps.dp.accounting import calibrate_noise, epsilon  # noqa: E402
from ddapps.dp.mechanism import clip_rows, private_class_sums  # noqa: E402
from ddapps.dp.noise import SeededNoise  # noqa: E402
from ddapps.errors import ConfigError  # noqa: E402
from ddapps.methods import create_distiller  # noqa: E402
from ddapps.synthetic import SyntheticSet  # noqa: E402
from ddapps.utils.seeding import make_generator  # noqa: E402
from tests.conftest import fake_benchmark  # noqa: E402

SMALL = {"iterations": 4, "batch_real": 6, "net_options": {"width": 8}}


def test_clipping_bounds_each_examples_contribution() -> None:
    # Prepare: a batch, and the same batch plus one example with a huge embedding
    gen = torch.Generator().manual_seed(0)
    feats = 10 * torch.randn(20, 5, generator=gen)
    labels = torch.randint(0, 3, (20,), generator=gen)
    outlier = torch.full((1, 5), 1e6)
    noise = SeededNoise(0)
    for c in range(3):
        # Execute: noiseless class sums with and without the extra example (add/remove adjacency)
        a = private_class_sums(feats, labels, 3, 1.5, 0.0, noise)
        b = private_class_sums(torch.cat([feats, outlier]), torch.cat([labels, torch.tensor([c])]), 3, 1.5, 0.0, noise)
        # Assert: only class c moves, by at most C in L2
        diff = (b - a).norm(dim=1)
        assert diff[c] <= 1.5 + 1e-4 and diff[c] > 1.4
        assert torch.all(diff[torch.arange(3) != c] == 0)
    assert torch.all(clip_rows(feats, 1.5).norm(dim=1) <= 1.5 + 1e-5)


def test_noise_scale_matches_config() -> None:
    sums = private_class_sums(torch.zeros(0, 4000), torch.zeros(0, dtype=torch.long), 5, 2.0, 3.0, SeededNoise(1))
    assert sums.std().item() == pytest.approx(3.0, rel=0.02)


def test_method_uses_calibrated_noise_and_records_meta(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[float] = []
    real_sums = mechanism.private_class_sums

    def spy(feats, labels, k, clip, noise_std, noise):  # type: ignore[no-untyped-def]
        seen.append(noise_std)
        return real_sums(feats, labels, k, clip, noise_std, noise)

    monkeypatch.setattr(mechanism, "private_class_sums", spy)
    real = fake_benchmark(public_stats=True)  # 12 per class: q = 6 / 12
    cfg = SMALL | {"dp_epsilon": 5.0, "dp_delta": 1e-4, "clip_norm": 0.5}
    synset = create_distiller("dp-dm", cfg).distill(real, 2, generator=make_generator(0))
    sigma = calibrate_noise(5.0, 1e-4, 0.5, 4)
    assert seen == [pytest.approx(sigma * 0.5)] * 4
    privacy = synset.meta["privacy"]
    assert privacy["accountant"] == "opacus-rdp" and privacy["sampling"] == "poisson"
    assert privacy["noise_multiplier"] == sigma and privacy["sample_rate"] == 0.5 and privacy["steps"] == 4
    assert privacy["delta"] == 1e-4 and privacy["clip_norm"] == 0.5
    assert privacy["epsilon"] == pytest.approx(epsilon(sigma, 0.5, 4, 1e-4)) and privacy["epsilon"] <= 5.0
    assert privacy["private"] is True and privacy["noise_source"] == "os-urandom"


def test_meta_survives_save_and_load(tmp_path) -> None:  # type: ignore[no-untyped-def]
    synset = create_distiller("dp-dm", SMALL | {"dp_epsilon": math.inf}).distill(fake_benchmark(), 2, generator=make_generator(0))
    synset.save(tmp_path / "s.safetensors")
    privacy = SyntheticSet.load(tmp_path / "s.safetensors").meta["privacy"]
    assert privacy["epsilon"] is None and privacy["noise_multiplier"] == 0.0  # no noise, no guarantee


def test_infinite_epsilon_adds_no_noise(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[float] = []
    real_sums = mechanism.private_class_sums
    monkeypatch.setattr(mechanism, "private_class_sums", lambda *a: seen.append(a[4]) or real_sums(*a))
    create_distiller("dp-dm", SMALL | {"dp_epsilon": math.inf, "init": "real"}).distill(fake_benchmark(), 2)
    assert seen == [0.0] * 4


def test_real_init_refused_when_private() -> None:
    with pytest.raises(ConfigError, match="init='real'"):
        create_distiller("dp-dm", {"init": "real", "dp_epsilon": 1.0})
    assert create_distiller("dp-dm").config.init == "noise"


def test_batch_norm_refused() -> None:
    with pytest.raises(ConfigError, match="batch norm"):
        create_distiller("dp-dm", SMALL | {"net": "convnet_bn"}).distill(fake_benchmark(), 2)


@pytest.mark.parametrize("bad", [{"dp_epsilon": 0.0}, {"dp_delta": 1.0}, {"clip_norm": 0.0}, {"sample_rate": 1.5}])
def test_bad_privacy_options(bad: dict) -> None:
    with pytest.raises(ConfigError):
        create_distiller("dp-dm", bad)


def test_inf_string_accepted() -> None:
    assert create_distiller("dp-dm", {"dp_epsilon": "inf"}).config.dp_epsilon == math.inf
    with pytest.raises(ConfigError):
        create_distiller("dp-dm", {"dp_epsilon": "lots"})


def test_same_seed_gives_different_sets_under_secret_noise() -> None:
    real = fake_benchmark(public_stats=True)
    a, b = (create_distiller("dp-dm", SMALL | {"dp_epsilon": 4.0}).distill(real, 2, generator=make_generator(3)) for _ in range(2))
    assert not torch.equal(a.images, b.images)
    assert a.meta["seed" if "seed" in a.meta else "base_seed"] == b.meta["seed" if "seed" in b.meta else "base_seed"]
    assert a.meta["privacy"]["private"] and a.meta["privacy"]["noise_source"] == "os-urandom"


def test_deterministic_noise_reproduces_and_says_not_private() -> None:
    real = fake_benchmark(public_stats=True)
    cfg = SMALL | {"dp_epsilon": 4.0, "dp_deterministic_noise": True}
    a, b = (create_distiller("dp-dm", cfg).distill(real, 2, generator=make_generator(3)) for _ in range(2))
    assert torch.equal(a.images, b.images)
    assert a.meta["privacy"]["private"] is False and a.meta["privacy"]["epsilon"] is None
    assert a.meta["privacy"]["noise_source"].startswith("seeded")


def test_empty_poisson_batches_with_dsa_do_not_crash() -> None:
    # q = 1 / 12: most classes draw nobody in most iterations; DSA must pass the empty batch through
    cfg = SMALL | {"batch_real": 1, "dsa": True, "dp_epsilon": 4.0, "iterations": 6}
    synset = create_distiller("dp-dm", cfg).distill(fake_benchmark(public_stats=True), 2, generator=make_generator(0))
    assert torch.isfinite(synset.images).all()
