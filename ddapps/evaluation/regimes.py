"""Label regimes of evaluation: what a network trained on a set learns from besides its images.

* ``stored`` -- the set's own labels and loss (:class:`~ddapps.synthetic.EvalProtocol`), the default.
* ``hard`` -- one class index per image (``argmax`` of soft labels), under the set's loss.
* ``soft`` -- fixed soft labels: the teacher's logits on the stored images, computed once and
  stored with the set (:func:`soft_label_set`), so their ``N x K`` floats count in
  ``stored_floats``; trained with the KD loss at temperature ``T``.
* ``kd`` -- full knowledge distillation: the teacher runs online on every augmented view and
  its logits are the targets (FKD, Shen & Xing, ECCV 2022, as SRe2L, Yin et al., NeurIPS 2023,
  and RDED, Sun et al., CVPR 2024, evaluate); the loss is
  ``T^2 KL(softmax(t / T) || softmax(s / T))`` (Hinton et al., arXiv 1503.02531). The images are
  all that is stored, but training needs the teacher: the card reports its parameters.

DD-Ranking (Li et al., 2025) shows that much of the published gain of recent methods comes from
soft labels and augmentation rather than from the images; evaluating every set and its baselines
under each regime separates the two (:mod:`ddapps.bench.card`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import torch
from torch import Tensor

from ddapps.errors import ConfigError
from ddapps.synthetic import EvalProtocol, SyntheticSet
from ddapps.teacher import Teacher, check_class_map, check_teacher

LABEL_REGIMES = ("stored", "hard", "soft", "kd")
TEACHER_REGIMES = ("soft", "kd")
DEFAULT_TEMPERATURE = 1.0
"""``T`` of the soft and kd regimes: 1, DD-Ranking's evaluator default. Under the protocol's SGD (lr 0.01,
100 epochs) on digits, a DM IPC-10 set with a ConvNet teacher's fixed soft labels reached 65.4% at T = 1
and 9.6% (chance) at T = 4 (one seed); DD-Ranking's SRe2L CIFAR-10 configuration uses T = 30 with AdamW."""


@dataclass(frozen=True)
class LabelRegime:
    """A label regime (one of :data:`LABEL_REGIMES`), its teacher (``soft``, ``kd``) and temperature."""

    name: str = "stored"
    teacher: Teacher | None = None
    temperature: float = DEFAULT_TEMPERATURE

    def __post_init__(self) -> None:
        if self.name not in LABEL_REGIMES:
            raise ConfigError(f"unknown label regime {self.name!r}; choose one of: {', '.join(LABEL_REGIMES)}")
        if self.name in TEACHER_REGIMES and self.teacher is None:
            raise ConfigError(f"the {self.name} label regime needs a teacher (ddapps teacher --dataset D --out T)")
        if not self.temperature > 0:
            raise ConfigError(f"temperature must be > 0, got {self.temperature}")

    def describe(self) -> dict[str, object]:
        """The regime for a results file: name, temperature and teacher hash where they apply."""
        if self.name not in TEACHER_REGIMES:
            return {"labels": self.name}
        assert self.teacher is not None
        return {"labels": self.name, "temperature": self.temperature, "teacher_hash": self.teacher.hash}

    def targets(
        self, images: Tensor, labels: Tensor, loss: str, class_names: list[str], device: torch.device | str
    ) -> tuple[Tensor, str, float, Callable[[Tensor], Tensor] | None]:
        """``(labels, loss, temperature, relabel)`` to train ``images`` with under this regime.

        ``class_names`` are the benchmark's: a teacher with another class map is refused.
        """
        if self.name == "stored":
            return labels, loss, 1.0, None
        if self.name == "hard":
            return (labels.argmax(dim=1) if labels.is_floating_point() else labels), loss, 1.0, None
        teacher = self.teacher
        assert teacher is not None
        check_class_map(teacher.class_names, class_names)
        teacher.net.to(device).eval()
        if self.name == "soft":
            return teacher.logits(images), "cross_entropy", self.temperature, None
        hard = labels.argmax(dim=1) if labels.is_floating_point() else labels  # only its length is used
        return hard, "cross_entropy", self.temperature, teacher.logits


def soft_label_set(synset: SyntheticSet, teacher: Teacher) -> SyntheticSet:
    """``synset`` with fixed soft labels: ``teacher``'s logits on its images, stored (and counted) once.

    The set records ``meta["teacher_hash"]``; a set already made with another teacher is refused.
    """
    if synset.images is None:
        raise ConfigError(
            "fixed soft labels need plain images (a factorized set decodes to more images than it stores)"
        )
    check_teacher(synset, teacher, required=False)
    protocol = EvalProtocol(
        loss="cross_entropy",
        labels="teacher soft labels (fixed)",
        lr=synset.eval_protocol.lr,
        note=f"logits of teacher {teacher.hash[:12]} ({teacher.net_name}) on the stored images",
    )
    meta = dict(synset.meta) | {"teacher_hash": teacher.hash, "label_regime": "soft"}
    return replace(synset, labels=teacher.logits(synset.images), eval_protocol=protocol, meta=meta)


def stored_bytes(synset: SyntheticSet) -> int:
    """Bytes of everything a set stores to be trained on: images or factors, labels, learned lr."""
    tensors = [synset.labels, *synset.factors.values()]
    tensors += [t for t in (synset.images, synset.lr) if t is not None]
    return sum(t.numel() * t.element_size() for t in tensors)


def regime_bytes(synset: SyntheticSet, regime: str) -> int:
    """Bytes the set stores when it is trained under ``regime``.

    ``stored``: as it is; ``hard`` and ``kd``: its labels replaced by one int64 class per stored
    unit (kd also needs the teacher, reported apart); ``soft``: by ``float32 [n, K]`` teacher logits
    for each of the ``n`` images it trains on (a factorized set decodes to more than it stores).
    """
    if regime not in LABEL_REGIMES:
        raise ConfigError(f"unknown label regime {regime!r}; choose one of: {', '.join(LABEL_REGIMES)}")
    base = stored_bytes(synset)
    if regime == "stored":
        return base
    without_labels = base - synset.labels.numel() * synset.labels.element_size()
    if regime == "soft":
        return without_labels + int(synset.training_data()[0].shape[0]) * synset.num_classes * 4
    return without_labels + int(synset.labels.shape[0]) * 8
