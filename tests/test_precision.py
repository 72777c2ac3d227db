"""bf16 autocast (``--precision``) in distillation losses and evaluation training."""

from __future__ import annotations

import json

import pytest
import torch

from ddapps.cli import main
from ddapps.errors import ConfigError
from ddapps.evaluation import TrainSettings, train_classifier
from ddapps.methods import create_distiller
from ddapps.nets import create_net
from ddapps.utils.precision import autocast, current_precision, use_precision
from ddapps.utils.seeding import make_generator

DM_TINY = {"iterations": 2, "batch_real": 8, "net_options": {"width": 16}}


def _dm(tiny, precision: str):
    with use_precision(precision):
        return create_distiller("dm", DM_TINY).distill(tiny, ipc=2, generator=make_generator(0))


def test_bf16_dm_is_finite_and_differs_from_fp32(tiny):
    fp32, bf16 = _dm(tiny, "fp32"), _dm(tiny, "bf16")
    assert torch.isfinite(bf16.images).all()
    assert bf16.images.dtype == torch.float32
    assert not torch.equal(fp32.images, bf16.images)
    assert (fp32.meta["precision"], bf16.meta["precision"]) == ("fp32", "bf16")


def test_bf16_is_deterministic(tiny):
    assert torch.equal(_dm(tiny, "bf16").images, _dm(tiny, "bf16").images)


def test_precision_scope_and_validation():
    assert current_precision() == "fp32"
    with use_precision("bf16"):
        assert current_precision() == "bf16"
        with autocast("cpu"):
            assert torch.mm(torch.ones(2, 2), torch.ones(2, 2)).dtype == torch.bfloat16
    assert current_precision() == "fp32"
    with pytest.raises(ConfigError, match="unknown precision"):
        with use_precision("fp8"):
            pass


def test_bf16_evaluation_training_runs(tiny):
    net = create_net("convnet", 1, 3, 8, generator=make_generator(0), width=8)
    with use_precision("bf16"):
        train_classifier(net, tiny.train.images, tiny.train.labels, TrainSettings(epochs=1, batch_size=16),
                         generator=make_generator(1))
    assert all(torch.isfinite(p).all() and p.dtype == torch.float32 for p in net.parameters())


def test_cli_distill_records_precision(tmp_path):
    out = tmp_path / "run"
    code = main(["distill", "--dataset", "digits", "--method", "dm", "--ipc", "1", "--iterations", "1",
                 "--set", "batch_real=4", "--set", 'net_options={"width": 8}', "--n-eval", "0",
                 "--precision", "bf16", "--quiet", "--out", str(out)])
    assert code == 0
    assert json.loads((out / "results.json").read_text())["config"]["precision"] == "bf16"
