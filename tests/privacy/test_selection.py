"""Hyper-parameter selection for DP runs touches only public images outside the private pool."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("opacus")

from ddapps.data import load_dataset  # noqa: E402
from ddapps.errors import ConfigError  # noqa: E402
from ddapps.privacy.audit import AuditConfig  # noqa: E402
from ddapps.privacy.selection import SELECTED_ON, SelectionConfig, public_part, select  # noqa: E402
from ddapps.utils.seeding import derive_seed, make_generator  # noqa: E402


def test_public_part_is_disjoint_from_the_audit_pool() -> None:
    real = load_dataset("digits", public_stats=True)
    public = public_part(real, exclude=600, size=300, seed=3)
    pool = torch.randperm(len(real.train), generator=make_generator(derive_seed(3, "pool")))[:600]
    pool_images = real.train.images[pool].flatten(1)
    # no public image equals a pool image (digits has no exact duplicates across these indices)
    d = torch.cdist(public.train.images.flatten(1), pool_images)
    assert len(public.train) == 300 and float(d.min()) > 0
    with pytest.raises(ConfigError, match="public-size"):
        public_part(real, exclude=1200, size=300, seed=0)


def test_selection_picks_the_best_validation_point_and_says_so() -> None:
    real = load_dataset("digits", public_stats=True)
    pipeline = AuditConfig(targets=("dp-dm",), ipc=5, batch_real=16, distill_net_options={"width": 8},
                           net_options={"width": 32}, epochs=60)  # fmt: skip
    config = SelectionConfig(epsilons=(10.0,), lr_imgs=(1e-3, 100.0), iterations=(20,), exclude=600, public_size=400,
                             pipeline=pipeline)  # fmt: skip
    result = select(real, config)
    assert result["selected_on"] == SELECTED_ON and len(result["rows"]) == 2
    by_lr = {r["lr_img"]: r["val_acc"] for r in result["rows"]}
    chosen = result["selected"]["10.0"]
    assert chosen["val_acc_mean"] == max(by_lr.values()) and by_lr[chosen["lr_img"]] == chosen["val_acc_mean"]
    assert by_lr[100.0] > by_lr[1e-3]  # a step size that cannot move noise loses to one that learns


def test_select_command_writes_the_choice(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from ddapps.cli import main

    out = tmp_path / "sel"
    code = main(["privacy", "select", "--dataset", "digits", "--epsilons", "10", "--lr-imgs", "100",
                 "--iterations-grid", "5", "--exclude", "600", "--public-size", "300", "--ipc", "3",
                 "--batch-real", "8", "--distill-width", "8", "--width", "16", "--epochs", "5", "--quiet",
                 "--out", str(out)])  # fmt: skip
    doc = json.loads((out / "results.json").read_text())
    assert code == 0 and doc["selected"]["10.0"]["lr_img"] == 100.0 and "public" in doc["selected_on"]
    assert (out / "config.json").is_file() and "Chosen per epsilon" in (out / "report.md").read_text()
