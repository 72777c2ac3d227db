"""SRe2L and RDED: their teacher checks, soft labels, crops, stitching and rank splitting."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ddapps.distributed import ShardedRDED, ShardedSRe2L
from ddapps.errors import ConfigError
from ddapps.methods import create_distiller
from ddapps.methods.crops import apply_boxes, sample_boxes
from ddapps.methods.rded import stitch
from ddapps.synthetic import SyntheticSet
from ddapps.teacher import make_teacher, save_teacher, train_teacher
from ddapps.utils.seeding import make_generator
from tests.conftest import fake_benchmark

BN = {"width": 8, "norm": "batch"}


@pytest.fixture(scope="module")
def teachers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A batch-norm teacher, an instance-norm one, and one whose class map is reversed (1 epoch each)."""
    real = fake_benchmark()
    folder = tmp_path_factory.mktemp("teachers")
    out = {}
    for key, options in (("bn", BN), ("in", {"width": 8})):
        teacher, _ = train_teacher(real, "convnet", options, epochs=1, generator=make_generator(0), augment=False)
        out[key] = str(save_teacher(folder / f"{key}.safetensors", teacher))
    teacher, _ = train_teacher(real, "convnet", BN, epochs=1, generator=make_generator(0), augment=False)
    flipped = make_teacher(teacher.net, "convnet", BN, "fake", list(real.class_names)[::-1])
    out["flipped"] = str(save_teacher(folder / "flipped.safetensors", flipped))
    return out


def test_teacher_problems_are_one_clear_error(teachers: dict[str, str]) -> None:
    real = fake_benchmark()
    with pytest.raises(ConfigError, match="needs a teacher"):
        create_distiller("rded", {"mipc": 12}).distill(real, 1)
    with pytest.raises(ConfigError, match="class map"):
        create_distiller("rded", {"mipc": 12, "teacher": teachers["flipped"]}).distill(real, 1)
    with pytest.raises(ConfigError, match="no batch norm"):
        create_distiller("sre2l", {"iterations": 1, "teacher": teachers["in"]}).distill(real, 1)
    rded = create_distiller("rded", {"mipc": 12, "teacher": teachers["in"]}).distill(real, 1)  # RDED needs no BN
    assert rded.images.shape == (3, 1, 8, 8)
    with pytest.raises(ConfigError, match="takes images"):
        create_distiller("rded", {"teacher": teachers["bn"]}).distill(fake_benchmark(size=16), 1)
    with pytest.raises(ConfigError, match="beta1"):
        create_distiller("sre2l", {"beta1": 1.0})


def test_set_keeps_classes_and_teacher_soft_labels(teachers: dict[str, str], tmp_path: Path) -> None:
    real = fake_benchmark()
    synset = create_distiller("sre2l", {"iterations": 3, "teacher": teachers["bn"]}).distill(
        real, 2, generator=make_generator(0)
    )
    assert synset.classes is not None and synset.classes.tolist() == [0, 0, 1, 1, 2, 2]
    assert synset.soft_labels and synset.eval_protocol.labels == "teacher soft labels"
    assert 0.0 <= synset.meta["teacher_agreement"] <= 1.0
    again = SyntheticSet.load(synset.save(tmp_path / "s.safetensors"))
    assert torch.equal(again.classes, synset.classes) and torch.equal(again.labels, synset.labels)
    with pytest.raises(Exception, match="only stored beside soft labels"):
        SyntheticSet(
            images=torch.zeros(2, 1, 4, 4), labels=torch.tensor([0, 1]), num_classes=2, classes=torch.tensor([0, 1])
        )


def test_recover_moves_noise_and_clips_to_pixel_range(teachers: dict[str, str]) -> None:
    real = fake_benchmark()
    still = create_distiller("sre2l", {"iterations": 0, "teacher": teachers["bn"]}).distill(real, 1)
    moved = create_distiller("sre2l", {"iterations": 5, "teacher": teachers["bn"]}).distill(real, 1)
    assert not torch.equal(still.images, moved.images)
    low = (0 - real.mean[0]) / real.std[0]
    high = (1 - real.mean[0]) / real.std[0]
    assert moved.images.min() >= low - 1e-5 and moved.images.max() <= high + 1e-5


@pytest.mark.parametrize(
    "cls, name, config",
    [(ShardedSRe2L, "sre2l", {"iterations": 2, "batch_classes": 2}), (ShardedRDED, "rded", {"mipc": 12})],
)
def test_rank_shares_add_up_to_the_single_process_set(teachers: dict[str, str], cls, name, config) -> None:  # type: ignore[no-untyped-def]
    real = fake_benchmark()
    config = config | {"teacher": teachers["bn"]}
    whole = create_distiller(name, config).distill(real, 2, generator=make_generator(5))
    assert torch.equal(cls(config).distill(real, 2, generator=make_generator(5)).images, whole.images)
    # two ranks without a process group: each keeps its own units (others stay zero); they add up
    shares = []
    for rank in range(2):
        sharded = cls(config, rank=rank, world_size=2)
        sharded.combine_units = lambda images: images  # type: ignore[method-assign]
        shares.append(sharded.distill(real, 2, generator=make_generator(5)).images)
    assert not torch.equal(shares[0], whole.images)
    assert torch.equal(shares[0] + shares[1], whole.images)


def test_several_ranks_need_a_saved_teacher() -> None:
    with pytest.raises(ConfigError, match="saved teacher"):
        ShardedRDED({"auto_teacher": True}, rank=0, world_size=2).distill(fake_benchmark(), 1)


def test_crops_whole_box_is_identity_and_flip_mirrors() -> None:
    images = torch.rand(2, 3, 6, 6)
    whole = torch.tensor([[0.0, 0.0, 1.0, 1.0, 0.0], [0.0, 0.0, 1.0, 1.0, 1.0]])
    out = apply_boxes(images, whole, (6, 6))
    torch.testing.assert_close(out[0], images[0])
    torch.testing.assert_close(out[1], images[1].flip(-1))
    boxes = sample_boxes(500, generator=make_generator(0), scale=(0.25, 0.5), ratio=(1.0, 1.0))
    area = boxes[:, 2] * boxes[:, 3]
    assert area.min() >= 0.25 - 1e-6 and area.max() <= 0.5 + 1e-6
    assert (boxes[:, 0] + boxes[:, 2] <= 1 + 1e-6).all() and (boxes[:, 1] + boxes[:, 3] <= 1 + 1e-6).all()


def test_stitch_places_patch_k_of_image_i_in_cell_k() -> None:
    patches = torch.arange(8, dtype=torch.float32).view(8, 1, 1, 1).expand(8, 1, 2, 2)
    images = stitch(patches, n=2, factor=2, size=(4, 4))
    # image 0 gets patches 0, 2, 4, 6 in row-major cells; image 1 gets 1, 3, 5, 7
    assert images[0, 0, ::2, ::2].tolist() == [[0.0, 2.0], [4.0, 6.0]]
    assert images[1, 0, ::2, ::2].tolist() == [[1.0, 3.0], [5.0, 7.0]]
