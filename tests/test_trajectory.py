"""Trajectory matching: expert files, MTT, and TESLA's constant-memory gradient."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from ddapps.cli import experts as cli_experts
from ddapps.errors import ConfigError
from ddapps.methods import create_distiller
from ddapps.methods.iterative import DivergenceError
from ddapps.methods.trajectory import ExpertBuffer, ExpertConfig, train_experts
from ddapps.methods.trajectory.mtt import MIN_SYN_LR
from ddapps.methods.trajectory.unroll import match_loss, match_loss_constant_memory, plan_steps
from ddapps.nets import create_net
from ddapps.utils.seeding import make_generator
from tests.conftest import fake_benchmark

# Depth 2: on 8x8 images ConvNet-3's last instance norm sees a 1x1 map and outputs a constant.
NET = {"width": 8, "depth": 2}
EXPERTS = {"num_experts": 3, "epochs": 2, "batch_size": 12, "net_options": NET}
MTT = {
    "iterations": 6,
    "syn_steps": 3,
    "expert_epochs": 1,
    "max_start_epoch": 1,
    "net_options": NET,
    "auto_experts": True,
    "experts": {"num_experts": 1, "epochs": 2, "batch_size": 12},
    "dsa": False,
    "lr_img": 10.0,
    "lr_lr": 1e-6,
}


class Crash(Exception):
    pass


@pytest.fixture(autouse=True)
def _one_thread():
    # These tiny problems are dominated by thread start-up on a shared 2-core machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_expert_file_round_trip(tmp_path: Path) -> None:
    # Prepare
    real = fake_benchmark()
    path = tmp_path / "experts.safetensors"
    # Execute
    trained = train_experts(real, EXPERTS, path, seed=5)
    loaded = ExpertBuffer.load(path)
    # Assert
    assert (loaded.num_experts, loaded.epochs, loaded.net, loaded.net_options) == (3, 2, "convnet", NET)
    assert loaded.meta["seed"] == 5 and loaded.meta["dataset"] == json.loads(json.dumps(real.describe()))
    assert loaded.meta["config"] == json.loads(json.dumps(asdict(ExpertConfig(**EXPERTS))))
    assert len(loaded.test_accuracy) == 3
    net = create_net("convnet", 1, 3, 8, **NET)
    loaded.spec.check(net)
    for e in range(3):
        assert torch.equal(loaded.trajectory(e), trained.trajectory(e))
        assert loaded.trajectory(e).shape == (3, loaded.spec.numel)


def test_snapshots_are_copies_not_views_of_live_weights() -> None:
    buffer = train_experts(fake_benchmark(), EXPERTS | {"num_experts": 1}, seed=0)
    snaps = buffer.trajectory(0)
    assert not torch.equal(snaps[0], snaps[1]) and not torch.equal(snaps[1], snaps[2])


def test_killed_expert_run_resumes_to_the_same_file(tmp_path: Path) -> None:
    # Prepare
    real = fake_benchmark()
    full = train_experts(real, EXPERTS, tmp_path / "full.safetensors", seed=2)
    path = tmp_path / "killed.safetensors"

    def crash(event) -> None:
        if event.expert == 1:
            raise Crash

    # Execute
    with pytest.raises(Crash):
        train_experts(real, EXPERTS, path, seed=2, on_expert=crash)
    assert ExpertBuffer.load(path).num_experts == 1
    resumed = train_experts(real, EXPERTS, path, seed=2)
    # Assert
    assert resumed.num_experts == 3 and ExpertBuffer.load(path).num_experts == 3
    for e in range(3):
        assert torch.equal(ExpertBuffer.load(path).trajectory(e), full.trajectory(e))
    with pytest.raises(ConfigError, match="other settings"):
        train_experts(real, EXPERTS | {"lr_teacher": 0.02}, path, seed=2)


def test_expert_file_rejects_garbage(tmp_path: Path) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    with pytest.raises(ConfigError, match="not a valid safetensors"):
        ExpertBuffer.load(bad)
    with pytest.raises(ConfigError, match="not found"):
        ExpertBuffer.load(tmp_path / "missing.safetensors")


def _tiny_problem(seed: int = 0, dsa: bool = False):
    real = fake_benchmark()
    buffer = train_experts(real, EXPERTS | {"num_experts": 1}, seed=seed)
    net = create_net("convnet", 1, 3, 8, generator=make_generator(0), **NET).double()
    images = real.train.images[[0, 1, 12, 13, 24, 25]].double()
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    from ddapps.augment import DSA

    aug = DSA("color_crop_cutout_flip_scale_rotate", mode="M") if dsa else None
    plan = plan_steps(6, 5, 4, aug, make_generator(seed))
    return net, buffer, images, labels, plan, aug


@pytest.mark.parametrize("dsa", [False, True])
def test_constant_memory_gradient_equals_autograd(dsa: bool) -> None:
    # Prepare: the same steps (batches of 4 of 6 images, same DSA draws) in float64
    net, buffer, images, labels, plan, aug = _tiny_problem(dsa=dsa)
    start, target = buffer.params(0, 0).double(), buffer.params(0, 1).double()
    grads = []
    for match in (match_loss, match_loss_constant_memory):
        x = images.clone().requires_grad_(True)
        lr = torch.tensor(0.05, dtype=torch.float64, requires_grad=True)
        # Execute
        loss = match(net, buffer.spec, start, target, x, labels, lr, plan, aug)
        loss.backward()
        grads.append((loss.detach(), x.grad, lr.grad))
    # Assert
    (l1, gx1, gl1), (l2, gx2, gl2) = grads
    assert torch.allclose(l1, l2, rtol=1e-10)
    assert gx1.abs().sum() > 0 and gl1.abs() > 0
    assert torch.allclose(gx1, gx2, rtol=1e-7, atol=1e-12)
    assert torch.allclose(gl1, gl2, rtol=1e-7, atol=1e-12)


def test_mtt_loss_decreases_and_lr_is_learned() -> None:
    losses: list[float] = []
    synset = create_distiller("mtt", MTT).distill(
        fake_benchmark(), 2, generator=make_generator(0), callbacks=[lambda e: losses.append(e.loss)]
    )
    assert losses[-1] < 0.8 * losses[0]
    assert synset.lr is not None and float(synset.lr) > 0 and float(synset.lr) != 0.01
    assert synset.meta["syn_lr"] == pytest.approx(float(synset.lr))
    assert synset.meta["experts"]["num_experts"] == 1


def test_constant_memory_mode_matches_standard_run() -> None:
    assert create_distiller("mtt", MTT).config.memory == "constant"  # the default
    real = fake_benchmark()
    a = create_distiller("mtt", MTT | {"iterations": 2, "memory": "standard"}).distill(real, 2, generator=make_generator(1))
    b = create_distiller("mtt", MTT | {"iterations": 2, "memory": "constant"}).distill(real, 2, generator=make_generator(1))
    assert torch.allclose(a.images, b.images, atol=1e-4) and torch.allclose(a.lr, b.lr, rtol=1e-4)


def test_syn_lr_is_kept_positive_and_nan_is_divergence() -> None:
    distiller = create_distiller("mtt", MTT)
    params = {"images": torch.zeros(3, 1, 8, 8), "lr": torch.tensor(-0.3)}
    distiller.after_step(params)
    assert float(params["lr"]) == pytest.approx(MIN_SYN_LR)
    with pytest.raises(DivergenceError, match="non-finite"):
        distiller.after_step({"images": torch.zeros(3, 1, 8, 8), "lr": torch.tensor(float("nan"))})
    with pytest.raises(DivergenceError, match="lower lr_img"):
        create_distiller("mtt", MTT | {"iterations": 3, "lr_img": 1e30}).distill(fake_benchmark(), 2)


def test_missing_expert_file_is_a_config_error(tmp_path: Path) -> None:
    real = fake_benchmark()
    with pytest.raises(ConfigError, match="ddapps experts"):
        create_distiller("mtt", {"iterations": 1}).distill(real, 1)
    with pytest.raises(ConfigError, match="ddapps experts"):
        create_distiller("mtt", {"iterations": 1, "expert_file": str(tmp_path / "none.safetensors")}).distill(real, 1)


def test_mtt_uses_and_checks_an_expert_file(tmp_path: Path) -> None:
    real = fake_benchmark()
    path = tmp_path / "e.safetensors"
    train_experts(real, EXPERTS, path, seed=0)
    manual = MTT | {"auto_experts": False, "expert_file": str(path), "iterations": 1}
    synset = create_distiller("mtt", manual).distill(real, 1)
    assert synset.meta["experts"]["file"] == str(path) and synset.meta["experts"]["num_experts"] == 3
    with pytest.raises(ConfigError, match="net"):
        create_distiller("mtt", manual | {"net_options": {"width": 4, "depth": 2}}).distill(real, 1)
    with pytest.raises(ConfigError, match="epochs"):
        create_distiller("mtt", manual | {"max_start_epoch": 2, "expert_epochs": 2}).distill(real, 1)
    with pytest.raises(ConfigError, match="trained on"):
        create_distiller("mtt", manual).distill(fake_benchmark(per_class=10), 1)


def test_bad_options_are_config_errors() -> None:
    for bad in ({"memory": "tiny"}, {"syn_steps": 0}, {"experts": {"nope": 1}}, {"init": "zeros"}):
        with pytest.raises(ConfigError):
            create_distiller("mtt", bad)


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    cli_experts.add_parser(parser.add_subparsers(dest="command"))
    return cli_experts.run(parser.parse_args(argv))


def test_cli_trains_then_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "digits.safetensors"
    argv = ["experts", "--dataset", "digits", "--out", str(out), "--num-experts", "1", "--epochs", "1",
            "--set", 'net_options={"width": 4, "depth": 2}', "--set", "max_train_samples=200", "--quiet"]
    assert _cli(argv) == 0
    assert "1 experts x 1 epochs" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="--resume"):
        _cli(argv)
    assert _cli([*argv[:6], "2", *argv[7:], "--resume"]) == 0
    assert ExpertBuffer.load(out).num_experts == 2
