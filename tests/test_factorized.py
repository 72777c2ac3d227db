"""Factorized methods (idc, haba, lowrank): storage budget, decoders, determinism, resume, matchers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from ddapps.errors import ConfigError
from ddapps.factorization import decode_hallucinator, decode_multiformation, hallucinator_numel, packed_columns
from ddapps.methods import METHODS, CheckpointSpec, create_distiller
from ddapps.synthetic import SyntheticSet
from ddapps.utils.seeding import make_generator
from tests.conftest import fake_benchmark

FACTORIZED = ["idc", "haba", "lowrank"]
MTT_SMOKE = METHODS.get("mtt").smoke_config


def run(name: str, real=None, ipc: int = 2, seed: int = 0, overrides=None, **kwargs) -> SyntheticSet:
    config = METHODS.get(name).smoke_config | (overrides or {})
    real = real if real is not None else fake_benchmark()
    return create_distiller(name, config).distill(real, ipc, generator=make_generator(seed), **kwargs)


@pytest.mark.parametrize("shape", [(1, 8), (3, 32)])
@pytest.mark.parametrize("ipc", [1, 10])
@pytest.mark.parametrize("name", FACTORIZED)
def test_storage_within_budget(name: str, ipc: int, shape: tuple[int, int]) -> None:
    channels, size = shape
    real = fake_benchmark(channels=channels, size=size)
    overrides = {"iterations": 0, "matcher": "dsa" if name == "idc" else "dm"}
    if name == "haba":
        overrides |= {"n_hallucinators": 5, "hidden": 3, "base_scale": None}
    if name == "lowrank":
        overrides |= {"rank": 2}
    synset = run(name, real, ipc, overrides=overrides)
    budget = real.num_classes * ipc * channels * size * size
    images, labels = synset.training_data()
    assert synset.images is None and synset.factorization is not None
    assert synset.stored_floats() == synset.meta["stored_floats"] <= budget == synset.meta["budget_floats"]
    assert images.shape == (real.num_classes * synset.meta["images_per_class"], channels, size, size)
    assert torch.bincount(labels).tolist() == [synset.meta["images_per_class"]] * real.num_classes
    assert synset.meta["ipc"] == ipc and synset.meta["images_per_class"] >= ipc


@pytest.mark.parametrize("name", FACTORIZED)
def test_seeded_determinism_and_round_trip(name: str, tmp_path: Path) -> None:
    a, b, c = run(name, seed=3), run(name, seed=3), run(name, seed=4)
    assert all(torch.equal(a.factors[k], b.factors[k]) for k in a.factors)
    assert not torch.equal(a.training_data()[0], c.training_data()[0])
    loaded = SyntheticSet.load(a.save(tmp_path / "s.safetensors"))
    assert torch.equal(loaded.training_data()[0], a.training_data()[0])


class Interrupted(Exception):
    """Raised by :func:`interrupt_at` to simulate a crash."""


def interrupt_at(iteration: int):
    def callback(event) -> None:
        if event.iteration == iteration:
            raise Interrupted(iteration)

    return callback


@pytest.mark.parametrize("name", FACTORIZED)
def test_resume_equals_uninterrupted(name: str, tmp_path: Path) -> None:
    full = run(name, checkpoint=CheckpointSpec(str(tmp_path / "a.safetensors"), every=2))
    path = str(tmp_path / "b.safetensors")
    with pytest.raises(Interrupted):
        run(name, checkpoint=CheckpointSpec(path, every=2), callbacks=[interrupt_at(3)])
    resumed = run(name, checkpoint=CheckpointSpec(path, every=2, resume=True))
    assert all(torch.equal(resumed.factors[k], full.factors[k]) for k in full.factors)


@pytest.mark.parametrize("name", FACTORIZED)
def test_warm_start_fills_first_units(name: str) -> None:
    init = SyntheticSet(images=torch.zeros(3, 1, 8, 8), labels=torch.arange(3), num_classes=3)
    synset = run(name, overrides={"iterations": 0}, init=init)
    images, _ = synset.training_data()
    per_class = synset.meta["images_per_class"]
    per_unit = per_class // synset.meta["units_per_class"]
    first = images.reshape(3, per_class, 1, 8, 8)[:, :per_unit]
    assert torch.equal(first, torch.zeros_like(first))  # a zero image encodes (and decodes) to zero
    assert not torch.equal(images, torch.zeros_like(images))


def test_idc_real_init_tiles_downsampled_images() -> None:
    real = fake_benchmark()
    distiller = create_distiller("idc", {"iterations": 0})
    tiled = distiller.initial_units(real, 1, 2, make_generator(5))
    small = F.interpolate(real.train.sample_class(1, 8, make_generator(5)), size=(4, 4), mode="area")
    decoded, labels = decode_multiformation({"images": tiled}, torch.tensor([1, 1]), {"factor": 2})
    expected = F.interpolate(small, size=(8, 8), mode="bilinear", align_corners=False)
    assert torch.allclose(decoded, expected, atol=1e-6) and labels.tolist() == [1] * 8


def test_lowrank_svd_init_is_exact_for_low_rank_images() -> None:
    gen = make_generator(0)
    images = torch.randn(4, 3, 8, 2, generator=gen) @ torch.randn(4, 3, 2, 8, generator=gen)
    factors = create_distiller("lowrank", {"iterations": 0}).encode(images, _layout(rank=2))
    assert factors["A"].shape == (4, 3, 8, 2) and torch.allclose(factors["A"] @ factors["B"], images, atol=1e-4)


def _layout(rank: int):
    from ddapps.methods.factorized import Layout

    return Layout(units=1, per_unit=1, config={"rank": rank})


def test_hallucinator_decoder_is_identity_with_zero_decoder_and_differentiable() -> None:
    config = {"n_hallucinators": 3, "channels": 2, "hidden": 4, "kernel": 3, "image_size": [8, 8]}
    numel = hallucinator_numel(2, 4, 3, 3)
    bases = torch.randn(5, 2, 4, 4, requires_grad=True)
    weights = torch.zeros(5, packed_columns(numel, 5), requires_grad=True)
    images, labels = decode_hallucinator({"bases": bases, "hallucinators": weights}, torch.arange(5), config)
    upsampled = F.interpolate(bases, size=(8, 8), mode="bilinear", align_corners=False)
    assert images.shape == (15, 2, 8, 8) and labels.tolist() == [i for i in range(5) for _ in range(3)]
    assert torch.equal(images[1::3], upsampled)
    (images * torch.randn(images.shape, generator=make_generator(1))).sum().backward()
    assert bases.grad.abs().sum() > 0 and weights.grad.abs().sum() > 0


@pytest.mark.parametrize("matcher", ["dc", "dsa"])
def test_lowrank_with_gradient_matching(matcher: str) -> None:
    synset = run("lowrank", overrides={"matcher": matcher, "matcher_options": {"batch_real": 6, "outer_loop": 2}})
    assert synset.meta["matcher"] == matcher and torch.isfinite(synset.training_data()[0]).all()


def test_lowrank_with_mtt_learns_lr() -> None:
    options = {k: v for k, v in MTT_SMOKE.items() if k not in ("iterations", "net_options")}
    synset = run("lowrank", overrides={"matcher": "mtt", "matcher_options": options})
    assert synset.lr is not None and float(synset.lr) > 0


def test_factorized_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown matcher"):
        create_distiller("lowrank", {"matcher": "kip"})
    with pytest.raises(ConfigError, match="unknown option"):
        create_distiller("haba", {"matcher": "dm", "matcher_options": {"nope": 1}})
    with pytest.raises(ConfigError, match="exceed"):
        run("lowrank", ipc=1, overrides={"rank": 8, "iterations": 0})
    with pytest.raises(ConfigError, match="does not divide"):
        run("idc", overrides={"factor": 3, "iterations": 0})
