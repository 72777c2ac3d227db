"""What SRe2L and RDED share: a saved teacher, units of work that parallelise, teacher relabelling.

Both methods work from a classifier trained on the real data (SRe2L's "squeeze": Yin, Xing & Shen,
NeurIPS 2023; RDED: Sun et al., CVPR 2024). ``teacher=PATH`` names a teacher saved by
``ddapps teacher`` (:mod:`ddapps.teacher`); with ``auto_teacher=True`` one is trained first from
``teacher_net``/``teacher_options`` for ``teacher_epochs`` (and written to ``teacher`` when it is
given, so later runs reuse it). The teacher's class map must be the data's and its input shape the
images'.

Both label the stored images with the teacher ("relabel"): the set's labels are the teacher's
logits ``float32 [N, K]`` on each stored image (counted by
:meth:`~ddapps.synthetic.SyntheticSet.stored_floats`), the set records ``meta["teacher_hash"]``,
and the evaluation protocol trains on their softmax. The papers' FKD relabelling (a fresh crop
and its teacher label at every epoch; Shen & Xing, ECCV 2022) needs the teacher at evaluation time
and is the evaluation's online-KD regime, not stored here.

The work is a list of independent *units* (SRe2L: one batch of classes at one image slot; RDED:
one class), each with its own generator derived from the run's seed: :meth:`owns_unit` and
:meth:`combine_units` let :mod:`ddapps.distributed` split them over ranks with a result that does
not depend on the number of ranks.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ddapps.data import Benchmark
from ddapps.errors import ConfigError
from ddapps.methods.base import Distiller, DistillerConfig
from ddapps.nets import batch_norm_layers
from ddapps.synthetic import EvalProtocol, SyntheticSet
from ddapps.teacher import Teacher, load_teacher, save_teacher, train_teacher
from ddapps.utils.seeding import derive_seed, make_generator
from ddapps.validation import check_positive

SMOKE_TEACHER: dict[str, Any] = {
    "auto_teacher": True, "teacher_net": "convnet", "teacher_options": {"width": 8, "norm": "batch"},
    "teacher_epochs": 1,
}  # fmt: skip
"""Smoke runs train a tiny batch-norm ConvNet teacher for one epoch."""


@dataclass(frozen=True)
class TeacherConfig(DistillerConfig):
    """Where the teacher comes from (see the module docstring)."""

    teacher: str | None = None
    auto_teacher: bool = False
    teacher_net: str = "resnet18"
    teacher_options: dict[str, Any] = field(default_factory=dict)
    teacher_epochs: int = 50
    teacher_seed: int = 0
    relabel_batch: int = 256

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive("teacher_epochs", self.teacher_epochs)
        check_positive("relabel_batch", self.relabel_batch)
        if not isinstance(self.auto_teacher, bool):
            raise ConfigError(f"auto_teacher must be true or false, got {self.auto_teacher!r}")


class TeacherDistiller(Distiller):
    """Base of the methods that distil with a trained teacher (SRe2L, RDED)."""

    config: TeacherConfig
    needs_batch_norm = False
    """True when the method reads the teacher's batch-norm statistics (SRe2L's recover)."""

    # ------------------------------------------------------------ the teacher
    def get_teacher(self, real: Benchmark) -> Teacher:
        """The configured teacher, checked against ``real``, in eval mode on ``self.device``."""
        cfg = self.config
        classes = list(real.class_names)
        path = Path(cfg.teacher) if cfg.teacher else None
        if path is not None and (path.is_file() or not cfg.auto_teacher):
            teacher = load_teacher(path, expect_classes=classes)
            if cfg.auto_teacher and (teacher.net_name, teacher.net_options) != (cfg.teacher_net, cfg.teacher_options):
                raise ConfigError(
                    f"teacher file {path} holds a {teacher.net_name} {teacher.net_options}, not the "
                    f"{cfg.teacher_net} {cfg.teacher_options} auto_teacher asks for; remove it or point teacher elsewhere"
                )
        elif cfg.auto_teacher:
            generator = make_generator(derive_seed(cfg.teacher_seed, "teacher", real.name))
            teacher, _ = train_teacher(
                real, cfg.teacher_net, cfg.teacher_options, epochs=cfg.teacher_epochs,
                generator=generator, device=self.device, val_select=False,
            )  # fmt: skip
            if path is not None:
                save_teacher(path, teacher)
        else:
            raise ConfigError(
                f"{self.name} needs a teacher: run `ddapps teacher --dataset ... --out FILE` and pass "
                "--set teacher=FILE (or --set auto_teacher=true to train one first)"
            )
        self.check_teacher_fits(teacher, real)
        teacher.net.to(self.device).eval().requires_grad_(False)
        return teacher

    def check_teacher_fits(self, teacher: Teacher, real: Benchmark) -> None:
        """:class:`ConfigError` when the teacher cannot serve this method on ``real``."""
        shape = tuple(getattr(teacher.net, "input_shape", ()))
        expected = (real.channels, *real.image_size)
        if shape and shape != expected:
            raise ConfigError(
                f"teacher {teacher.net_name} takes images {list(shape)}, the data's are {list(expected)}; "
                "train a teacher at this image size"
            )
        if self.needs_batch_norm and not batch_norm_layers(teacher.net):
            raise ConfigError(
                f"{self.name} matches the teacher's batch-norm statistics but teacher {teacher.net_name} "
                f"{teacher.net_options} has no batch norm; use a BN teacher (e.g. resnet18)"
            )

    def relabel(self, teacher: Teacher, images: Tensor) -> Tensor:
        """The teacher's logits ``float32 [N, K]`` on ``images`` (CPU)."""
        logits = teacher.logits(images.to(self.device), batch_size=self.config.relabel_batch)
        return logits.to("cpu", torch.float32).clone()  # a normal tensor, not an inference-mode one

    def finish(self, real: Benchmark, ipc: int, images: Tensor, teacher: Teacher, **meta: Any) -> SyntheticSet:
        """The set: ``images`` with the teacher's soft labels and ``meta["teacher_hash"]``."""
        protocol = EvalProtocol(
            labels="teacher soft labels",
            note=f"labels are the logits of teacher {teacher.hash[:12]} ({teacher.net_name}) on the stored images",
        )
        synset = self.make_synset(
            real, ipc, images, eval_protocol=protocol, teacher_hash=teacher.hash,
            teacher={"net": teacher.net_name, "net_options": teacher.net_options, "dataset": teacher.dataset},
            **meta,
        )  # fmt: skip
        soft = self.relabel(teacher, synset.images)  # type: ignore[arg-type]
        # how often the teacher's top class is the class the image was made for (kept in ``classes``)
        synset.meta["teacher_agreement"] = float((soft.argmax(dim=1) == synset.labels).float().mean())
        return dataclasses.replace(synset, labels=soft, classes=synset.labels)

    # ------------------------------------------------------ parallel units
    def owns_unit(self, unit: int) -> bool:
        """Whether this process computes unit ``unit`` (all of them unless split over ranks)."""
        return True

    def combine_units(self, images: Tensor) -> Tensor:
        """The images of every unit, given this process's (other rows zero); the input as-is here."""
        return images


def warm_slots(init: SyntheticSet | None, num_classes: int) -> dict[int, Tensor]:
    """Class -> the warm-start images of that class (they take the first image slots)."""
    if init is None or init.images is None:
        return {}
    labels = init.hard_labels()
    found: dict[int, Tensor] = {}
    for c in range(num_classes):
        chosen = init.images[labels == c].detach().cpu().float()
        if chosen.numel():
            found[c] = chosen
    return found
