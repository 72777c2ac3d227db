"""Score-based coresets (forgetting, EL2N): a mislabelled image is the hardest of its class."""

from __future__ import annotations

import pytest
import torch

from ddapps.data import from_tensors
from ddapps.errors import ConfigError
from ddapps.methods import create_distiller
from ddapps.utils.seeding import make_generator
from tests.conftest import fake_benchmark


def mislabelled():
    """The fake blobs with one class-0 image labelled 1 (it sits last among class 1's images)."""
    real = fake_benchmark(per_class=12)
    labels = real.train.labels.clone()
    labels[0] = 1
    bench = from_tensors(real.train.images, labels, real.test.images, real.test.labels, normalize=False, num_classes=3)
    return bench, real.train.images[0]


@pytest.mark.parametrize("name", ["forgetting", "el2n"])
def test_hardest_keeps_the_mislabelled_image_and_easiest_does_not(name: str) -> None:
    real, odd = mislabelled()
    options = {"net": "mlp", "feature_epochs": 40, "score_nets": 1}
    hard = create_distiller(name, options).distill(real, 1, generator=make_generator(0))
    easy = create_distiller(name, options | {"keep": "easiest"}).distill(real, 1, generator=make_generator(0))
    assert torch.equal(hard.images[1], odd)  # class 1's pick
    assert not any(torch.equal(img, odd) for img in easy.images)
    assert hard.meta["config"]["keep"] == "hardest" and hard.meta["method"] == name


def test_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="keep"):
        create_distiller("el2n", {"keep": "middle"})
    with pytest.raises(ConfigError, match="features must be 'trained'"):
        create_distiller("forgetting", {"features": "pixels"})
    assert create_distiller("el2n").config.score_nets == 10 and create_distiller("el2n").config.feature_epochs == 20
