"""A DP release holds nothing computed from the private data except through the mechanism.

The file's header and tensors are compared between neighbouring datasets with the noise made
deterministic (so that only the data differs): replacing one record must change the images and
nothing else; removing one changes at most the size-derived fields listed in ``SIZE_DERIVED``
(class sizes are public by assumption, as the dataset size is in DP-SGD).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

pytest.importorskip("opacus")

from ddapps.cli import main  # noqa: E402
from ddapps.data import from_tensors, load_dataset  # noqa: E402
from ddapps.errors import ConfigError  # noqa: E402
from ddapps.methods import create_distiller  # noqa: E402
from ddapps.utils.seeding import make_generator  # noqa: E402
from tests.conftest import fake_benchmark  # noqa: E402

SMALL = {"iterations": 3, "batch_real": 6, "net_options": {"width": 8}, "dp_epsilon": 3.0}
ALLOWED_TENSORS = {"images", "labels"}
SIZE_DERIVED = {
    "meta.dataset.n_train",  # the record count
    "meta.privacy.sample_rate",  # q = batch_real / smallest class
    "meta.privacy.noise_multiplier",  # calibrated for q
    "meta.privacy.epsilon",
    "meta.privacy.nominal_epsilon",
}


def _release(real: Any, tmp: Path, name: str, method: str = "dp-dm", **extra: Any) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    from safetensors import safe_open

    cfg = SMALL | {"dp_deterministic_noise": True} | extra
    synset = create_distiller(method, cfg).distill(real, 2, generator=make_generator(1))
    path = synset.save(tmp / f"{name}.safetensors")
    with safe_open(str(path), "pt") as f:
        header = json.loads(f.metadata()["ddapps"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    return header, tensors


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out |= _flatten(v, f"{prefix}.{k}" if prefix else k)
        return out
    return {prefix: d}


def _neighbours(change: str) -> tuple[Any, Any]:
    base = fake_benchmark(per_class=14, public_stats=True)
    x, y = base.train.images.clone(), base.train.labels.clone()
    x = x * 0.5 + 0.5  # back to [0, 1] (public constants 0.5 / 0.5)
    if change == "replace":
        x2, y2 = x.clone(), y.clone()
        x2[5] = torch.rand_like(x2[5], generator=torch.Generator().manual_seed(9))
    else:  # remove one record of class 2 (not the smallest after removal: all start at 14)
        keep = torch.ones(len(y), dtype=torch.bool)
        keep[-1] = False
        x2, y2 = x[keep], y[keep]
    mk = lambda a, b: from_tensors(a, b, name="fake", num_classes=3, public_stats=True)  # noqa: E731
    return mk(x, y), mk(x2, y2)


@pytest.mark.parametrize("method", ["dp-dm", "dp-dc"])
def test_replacing_one_record_changes_only_the_images(tmp_path: Path, method: str) -> None:
    d, d2 = _neighbours("replace")
    extra = {"outer_loop": 2, "inner_loop": 1, "batch_train": 8} if method == "dp-dc" else {}
    h1, t1 = _release(d, tmp_path, "a", method, **extra)
    h2, t2 = _release(d2, tmp_path, "b", method, **extra)
    assert set(t1) == ALLOWED_TENSORS == set(t2)
    assert torch.equal(t1["labels"], t2["labels"])  # labels are fixed by the class order, not the data
    assert not torch.equal(t1["images"], t2["images"])  # the mechanism's output does depend on the data
    assert _flatten(h1) == _flatten(h2)  # header: byte-for-byte the same metadata


def test_removing_one_record_changes_only_size_derived_fields(tmp_path: Path) -> None:
    d, d2 = _neighbours("remove")
    f1, f2 = (_flatten(_release(b, tmp_path, n)[0]) for b, n in ((d, "a"), (d2, "b")))
    differing = {k for k in f1.keys() | f2.keys() if f1.get(k) != f2.get(k)}
    assert "meta.dataset.n_train" in differing
    assert differing <= SIZE_DERIVED


def test_release_has_no_timing_and_no_private_statistics() -> None:
    synset = create_distiller("dp-dm", SMALL).distill(fake_benchmark(public_stats=True), 2, generator=make_generator(0))
    assert "distill_seconds" not in synset.meta and synset.zca is None
    assert synset.meta["dataset"]["stats_source"] == "public"
    assert synset.meta["normalization"] == {"mean": [0.5], "std": [0.5]}


def test_zca_and_data_fitted_statistics_are_refused() -> None:
    with pytest.raises(ConfigError, match="ZCA"):
        create_distiller("dp-dm", SMALL).distill(load_dataset("digits", zca=True, public_stats=True), 2)
    with pytest.raises(ConfigError, match="computed from the private images"):
        create_distiller("dp-dm", SMALL).distill(fake_benchmark(), 2)  # mean/std fitted on the data
    # without noise there is no guarantee to protect: both are allowed
    create_distiller("dp-dm", SMALL | {"dp_epsilon": math.inf}).distill(fake_benchmark(), 2)


def test_warm_starts_must_be_private_releases_and_are_recorded() -> None:
    real = fake_benchmark(public_stats=True)
    raw = create_distiller("random").distill(real, 2)  # real images
    with pytest.raises(ConfigError, match="warm start"):
        create_distiller("dp-dm", SMALL).distill(real, 2, init=raw)
    earlier = create_distiller("dp-dm", SMALL).distill(real, 2, generator=make_generator(0))
    refined = create_distiller("dp-dm", SMALL).distill(real, 2, init=earlier, generator=make_generator(1))
    assert refined.meta["warm_start"]["method"] == "dp-dm"
    assert refined.meta["warm_start"]["privacy"]["private"] is True
    seeded = create_distiller("dp-dm", SMALL | {"dp_deterministic_noise": True}).distill(real, 2)
    with pytest.raises(ConfigError, match="warm start"):  # a seeded-noise set is not private either
        create_distiller("dp-dm", SMALL).distill(real, 2, init=seeded)
    dm = create_distiller("dm", {"iterations": 2, "net_options": {"width": 8}}).distill(real, 2, init=raw)
    assert dm.meta["warm_start"] == {"method": "random", "ipc": 2}


def test_cli_refuses_dp_with_zca_before_loading(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["distill", "--dataset", "nosuch-folder-dataset", "--method", "dp-dm", "--zca", "--ipc", "2",
                 "--out", str(tmp_path / "o")])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("ddapps: error:") and "ZCA" in err[0]
    assert not (tmp_path / "o").exists()
