"""Conformance: every registered method, on tiny fake data, honours the Distiller contract.

Modelled on torchvision's DatasetTestCase: one body of checks that every method must pass.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ddapps.errors import ConfigError
from ddapps.methods import METHODS, CheckpointSpec, create_distiller, list_methods
from ddapps.synthetic import SyntheticSet
from ddapps.teacher import save_teacher, train_teacher
from ddapps.utils.seeding import make_generator
from tests.conftest import fake_benchmark

PRIVATE = {name for name in list_methods() if METHODS.get(name).differentially_private}
# DP methods: seeded noise, so the contract's determinism checks apply (their secret default is
# tested in tests/privacy and tests/dp), and public normalisation constants, which they require
TINY = {
    name: METHODS.get(name).smoke_config | ({"dp_deterministic_noise": True} if name in PRIVATE else {})
    for name in list_methods()
}
ITERATIVE = [name for name in list_methods() if METHODS.get(name).is_iterative()]
TEACHER_METHODS = {name for name in list_methods() if METHODS.get(name).accepts("teacher")}
_TEACHER: dict[str, object] = {}


@pytest.fixture(autouse=True, scope="session")
def _teacher_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    _TEACHER["dir"] = tmp_path_factory


def tiny_teacher() -> str:
    """SRe2L/RDED's teacher: a ConvNet with batch norm trained 1 epoch on the fake data (once a session)."""
    if "path" not in _TEACHER:
        factory = _TEACHER["dir"]
        assert isinstance(factory, pytest.TempPathFactory)
        teacher, _ = train_teacher(
            fake_benchmark(), "convnet", {"width": 8, "norm": "batch"}, epochs=1, generator=make_generator(0),
            augment=False,
        )  # fmt: skip
        _TEACHER["path"] = str(save_teacher(factory.mktemp("teacher") / "teacher.safetensors", teacher))
    return str(_TEACHER["path"])


def config_for(name: str) -> dict:
    """The tiny config of ``name``; teacher methods get the session's saved teacher."""
    extra = {"teacher": tiny_teacher(), "auto_teacher": False} if name in TEACHER_METHODS else {}
    return TINY[name] | extra


def data_for(name: str):
    return fake_benchmark(public_stats=name in PRIVATE)


def distill(name: str, ipc: int = 2, seed: int = 0, **kwargs):
    real = data_for(name)
    return create_distiller(name, config_for(name)).distill(real, ipc, generator=make_generator(seed), **kwargs)


def pixels(synset: SyntheticSet) -> torch.Tensor:
    """The training images of a set (decoded when it is factorized)."""
    return synset.training_data()[0]


@pytest.mark.parametrize("name", list_methods())
def test_returns_synthetic_set_of_right_shape(name: str) -> None:
    synset = distill(name)
    images, labels = synset.training_data()
    assert isinstance(synset, SyntheticSet)
    assert images.dtype == torch.float32 and images.shape[1:] == (1, 8, 8)
    assert torch.bincount(synset.hard_labels(), minlength=3).tolist() == [2, 2, 2]
    assert synset.meta["method"] == name and synset.meta["ipc"] == 2
    assert torch.isfinite(images).all()
    if name in TEACHER_METHODS:  # relabelled by the teacher: soft labels, counted, and the teacher recorded
        assert synset.soft_labels and synset.labels.shape == (6, 3)
        assert synset.stored_floats() == images.numel() + synset.labels.numel()
        assert len(synset.meta["teacher_hash"]) == 64


@pytest.mark.parametrize("name", list_methods())
def test_same_seed_same_result(name: str) -> None:
    a, b = distill(name, seed=3), distill(name, seed=3)
    assert torch.equal(pixels(a), pixels(b)) and torch.equal(a.labels, b.labels)


@pytest.mark.parametrize("name", ["random", *sorted(TEACHER_METHODS), *ITERATIVE])
def test_different_seed_differs(name: str) -> None:
    assert not torch.equal(pixels(distill(name, seed=1)), pixels(distill(name, seed=2)))


@pytest.mark.parametrize("name", ITERATIVE)
def test_warm_start_is_used(name: str) -> None:
    real = data_for(name)
    # a DP method takes only a private release as its warm start
    meta = {"privacy": {"private": True}} if name in PRIVATE else {}
    init = SyntheticSet(images=torch.zeros(3, 1, 8, 8), labels=torch.arange(3), num_classes=3, meta=meta)
    cold = create_distiller(name, TINY[name] | {"iterations": 0}).distill(real, 2, init=init, generator=make_generator(0))
    if cold.factorization is not None:  # factorized: the stored units differ from a cold start's
        plain = create_distiller(name, TINY[name] | {"iterations": 0}).distill(real, 2, generator=make_generator(0))
        assert not torch.equal(pixels(cold), pixels(plain))
        return
    # class c's first image is the warm-start image (zeros); the second comes from the real data
    assert torch.equal(cold.images[0::2], torch.zeros(3, 1, 8, 8))
    assert not torch.equal(cold.images[1::2], torch.zeros(3, 1, 8, 8))


@pytest.mark.parametrize("name", ITERATIVE)
def test_checkpoint_resume_equals_uninterrupted(name: str, tmp_path: Path) -> None:
    full = distill(name, checkpoint=CheckpointSpec(str(tmp_path / "a.safetensors"), every=2))

    # simulate a crash after the checkpoint at iteration 2: a callback raises at iteration 3
    class Crash(Exception):
        pass

    def crash(event) -> None:
        if event.iteration == 3:
            raise Crash

    ckpt = CheckpointSpec(str(tmp_path / "b.safetensors"), every=2)
    with pytest.raises(Crash):
        distill(name, checkpoint=ckpt, callbacks=[crash])
    resumed = distill(name, checkpoint=CheckpointSpec(ckpt.path, every=2, resume=True))
    assert torch.equal(pixels(resumed), pixels(full))


@pytest.mark.parametrize("name", ITERATIVE)
def test_resume_refuses_other_run(name: str, tmp_path: Path) -> None:
    ckpt = str(tmp_path / "c.safetensors")
    distill(name, seed=0, checkpoint=CheckpointSpec(ckpt, every=2))
    with pytest.raises(ConfigError, match="different run"):
        distill(name, seed=1, checkpoint=CheckpointSpec(ckpt, every=2, resume=True))


@pytest.mark.parametrize("name", list_methods())
def test_rejects_bad_arguments(name: str) -> None:
    real = data_for(name)  # 12 images per class
    distiller = create_distiller(name, config_for(name))
    with pytest.raises(ConfigError, match="smallest class"):
        distiller.distill(real, 13)
    with pytest.raises(ConfigError, match="positive integer"):
        distiller.distill(real, 0)
    with pytest.raises(ConfigError, match="unknown option"):
        create_distiller(name, {"no_such_option": 1})


def test_unknown_method_lists_choices() -> None:
    with pytest.raises(ConfigError, match="dm"):
        create_distiller("nope")


def test_registry_refuses_duplicates() -> None:
    with pytest.raises(ValueError, match="already registered"):
        METHODS.register("dm")(object)  # type: ignore[arg-type]
