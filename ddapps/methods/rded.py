"""RDED: realistic and diverse patches selected by a teacher, stitched, relabelled.

Sun, Shi, Yu & Lin, "On the Diversity and Realism of Distilled Dataset: An Efficient Dataset
Distillation Paradigm", CVPR 2024.

No optimisation: for every class ``c`` draw ``mipc`` real images of the class and from each
``num_crop`` random resized square crops (area ``U(crop_scale_min, 1)``) at the size of one patch,
``H/factor x W/factor``. The teacher scores each crop's *realism* as ``-CE(f(p), c)`` (a patch is
zero-padded, i.e. set to the mean colour, to the full image size before scoring when
``factor > 1``); each image keeps its best crop, and the ``ipc * factor**2`` best images of the
class are kept. *Diversity*: ``factor x factor`` of them, from different real images, are stitched
into each stored image (patch ``k`` of stored image ``i`` is the ``(k * ipc + i)``-th best), so
one stored image carries ``factor**2`` views of the class at the storage of one. *Relabel*: the
teacher's soft labels of the stored images
(:meth:`~ddapps.methods.teacher_based.TeacherDistiller.finish`).

Defaults are the paper's ImageNet ones (its scripts: ``factor`` 2, ``num_crop`` 5, ``mipc`` 300;
CIFAR uses ``factor`` 1); crops are ``RandomResizedCrop``'s default area range (0.08, 1) with
aspect ratio 1. With fewer than ``ipc * factor**2`` images in a class, crops (not images) are
ranked, so one image may give several patches. Classes are independent units:
:mod:`ddapps.distributed` splits them over ranks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm

from ddapps.data import Benchmark
from ddapps.methods.base import METHODS, DistillRequest
from ddapps.methods.crops import apply_boxes, sample_boxes
from ddapps.methods.teacher_based import SMOKE_TEACHER, TeacherConfig, TeacherDistiller, warm_slots
from ddapps.synthetic import SyntheticSet
from ddapps.teacher import Teacher
from ddapps.utils.seeding import derive_seed, draw_seed, make_generator
from ddapps.validation import check_fields, check_positive, check_rate


@dataclass(frozen=True)
class RDEDConfig(TeacherConfig):
    """RDED selection hyper-parameters; defaults are the paper's ImageNet ones."""

    factor: int = 2
    num_crop: int = 5
    mipc: int = 300
    crop_scale_min: float = 0.08

    def __post_init__(self) -> None:
        super().__post_init__()
        check_fields(self, check_positive, "factor", "num_crop", "mipc")
        check_rate("crop_scale_min", self.crop_scale_min)


@METHODS.register("rded")
class RealisticDiverseDistillation(TeacherDistiller):
    """RDED (Sun et al., CVPR 2024); see the module docstring."""

    name = "rded"
    config_class = RDEDConfig
    config: RDEDConfig
    smoke_config = {"mipc": 12, **SMOKE_TEACHER}

    def _distill(self, request: DistillRequest) -> SyntheticSet:
        real, ipc = request.real, request.ipc
        base_seed = draw_seed(request.generator)
        teacher = self.get_teacher(real)
        images = torch.zeros(real.num_classes * ipc, real.channels, *real.image_size)
        warm = warm_slots(request.init, real.num_classes)
        for c in tqdm(range(real.num_classes), desc=self.name, disable=not self.progress):
            if not self.owns_unit(c):
                continue
            gen = make_generator(derive_seed(base_seed, "rded", c))
            kept = warm.get(c, images[:0])[:ipc]
            fresh = self.class_images(teacher, real, c, ipc - kept.shape[0], gen) if kept.shape[0] < ipc else kept[:0]
            images[c * ipc : (c + 1) * ipc] = torch.cat([kept, fresh])
        images = self.combine_units(images)
        return self.finish(real, ipc, images, teacher, base_seed=base_seed)

    @torch.no_grad()
    def class_images(self, teacher: Teacher, real: Benchmark, c: int, n: int, generator: torch.Generator) -> Tensor:
        """``n`` stitched images of class ``c`` (CPU)."""
        cfg = self.config
        f = cfg.factor
        height, width = real.image_size
        patch = (max(1, height // f), max(1, width // f))
        idx = real.train.class_indices(c)
        pick = idx[torch.randperm(idx.numel(), generator=generator)[: cfg.mipc]]
        m = pick.numel()
        boxes = sample_boxes(
            m * cfg.num_crop, generator=generator, scale=(cfg.crop_scale_min, 1.0), ratio=(1.0, 1.0),
            aspect=width / height,
        )  # fmt: skip
        source = real.train.images[pick].repeat(cfg.num_crop, 1, 1, 1)  # crop j of image i at row j * m + i
        crops = torch.cat(
            [
                apply_boxes(source[s : s + cfg.relabel_batch].to(self.device), boxes[s : s + cfg.relabel_batch], patch)
                for s in range(0, source.shape[0], cfg.relabel_batch)
            ]
        )
        ce = self.realism_loss(teacher, crops, c, (height, width)).view(cfg.num_crop, m)
        need = n * f * f
        if m >= need:  # the paper: each image's best crop, then the best images
            best = ce.argmin(dim=0)
            scores, rows = ce[best, torch.arange(m)], best * m + torch.arange(m)
        else:  # too few images: rank every crop
            scores, rows = ce.reshape(-1), torch.arange(ce.numel())
        chosen = crops[rows[scores.argsort(stable=True)[:need]].to(crops.device)]
        return stitch(chosen, n, f, (height, width)).to("cpu", torch.float32)

    def realism_loss(self, teacher: Teacher, patches: Tensor, c: int, size: tuple[int, int]) -> Tensor:
        """The teacher's cross-entropy ``CE(f(p), c)`` of each patch (zero-padded to ``size``), on CPU."""
        ph, pw = patches.shape[-2:]
        top, left = (size[0] - ph) // 2, (size[1] - pw) // 2
        padded = F.pad(patches, (left, size[1] - pw - left, top, size[0] - ph - top))
        logits = teacher.logits(padded, batch_size=self.config.relabel_batch).float()
        target = torch.full((logits.shape[0],), c, device=logits.device)
        return F.cross_entropy(logits, target, reduction="none").to("cpu")


def stitch(patches: Tensor, n: int, factor: int, size: tuple[int, int]) -> Tensor:
    """``[n * factor**2, C, h, w]`` patches -> ``[n, C, H, W]``: patch ``k * n + i`` fills cell ``k``
    (row-major) of image ``i``; cells split ``H`` and ``W`` as evenly as possible."""
    height, width = size
    rows = [len(t) for t in torch.arange(height).tensor_split(factor)]
    cols = [len(t) for t in torch.arange(width).tensor_split(factor)]
    out = patches.new_zeros(n, patches.shape[1], height, width)
    k, top = 0, 0
    for h in rows:
        left = 0
        for w in cols:
            part = patches[k * n : (k + 1) * n]
            if part.shape[-2:] != (h, w):
                part = F.interpolate(part, size=(h, w), mode="bilinear", align_corners=False)
            out[:, :, top : top + h, left : left + w] = part
            left += w
            k += 1
        top += h
    return out
