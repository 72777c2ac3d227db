"""``SyntheticSet``: the one object every distillation method returns and every application consumes.

A synthetic set holds the stored images (or the parameters of a factorization and its decoder's
name), hard (``int64 [N]``) or soft (``float32 [N, K]``) labels, an optional learned learning rate,
the ZCA transform the images live in, and two typed fields that drive behaviour: the
:class:`EvalProtocol` (the loss, label mode and learning rate the set is meant to be trained with)
and the decoder's ``factorization_config``. ``meta`` is JSON provenance only (method, config,
dataset, ipc, seed, normalization, DSA strategy); nothing reads it to decide what to do.

Schema 2 stores ``eval_protocol`` and ``factorization_config`` beside ``meta`` in the header;
schema-1 files (where both lived inside ``meta``) still load and are migrated on reading.

On disk it is one ``.safetensors`` file: tensors as safetensors, metadata as JSON in the
safetensors header (a readable ``.json`` copy is written beside it). Loading parses only
safetensors and JSON -- it never unpickles or executes anything -- and validates every field, so a
truncated, malformed or hostile file raises :class:`~ddapps.errors.SyntheticSetError`.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import Tensor
from torch.utils.data import TensorDataset

from ddapps.errors import SyntheticSetError
from ddapps.factorization import DECODERS, stored_floats
from ddapps.utils.atomic import atomic_path, write_json

SCHEMA_VERSION = 2
READABLE_SCHEMAS = (1, 2)
EVAL_LOSSES = ("cross_entropy", "mse")
_MAX_TENSORS = 64
_MAX_META_BYTES = 8 * 2**20


@dataclass(frozen=True)
class EvalProtocol:
    """How a synthetic set is meant to be trained on.

    Attributes:
        loss: ``"cross_entropy"`` (data-matching methods) or ``"mse"`` against the labels, as the
            kernel methods evaluate (KIP, Nguyen et al., ICLR 2021; FRePo, Zhou et al., NeurIPS 2022).
        labels: how the labels were made (``"hard"``, ``"centered one-hot"``, ``"learned"`` ...).
        lr: the learning rate the protocol trains with when the set has no learned ``lr``.
        note: a sentence for the report.
    """

    loss: str = "cross_entropy"
    labels: str = "hard"
    lr: float | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if self.loss not in EVAL_LOSSES:
            raise SyntheticSetError(f"eval_protocol loss must be one of {', '.join(EVAL_LOSSES)}, got {self.loss!r}")
        if not isinstance(self.labels, str) or not isinstance(self.note, str):
            raise SyntheticSetError("eval_protocol labels and note must be strings")
        if self.lr is not None and (
            isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)) or not 0 < self.lr < math.inf
        ):
            raise SyntheticSetError(f"eval_protocol lr must be a positive finite number or null, got {self.lr!r}")

    def as_dict(self) -> dict[str, Any]:
        """The JSON form stored in the file's header."""
        return {"loss": self.loss, "labels": self.labels, "lr": self.lr, "note": self.note}

    @classmethod
    def from_dict(cls, value: Any) -> "EvalProtocol":
        """Parse the header's JSON object; unknown keys or wrong types raise SyntheticSetError."""
        if not isinstance(value, dict):
            raise SyntheticSetError("eval_protocol must be a JSON object")
        unknown = sorted(set(value) - {"loss", "labels", "lr", "note"})
        if unknown:
            raise SyntheticSetError(f"unknown eval_protocol field(s) {unknown}")
        return cls(**value)


@dataclass
class SyntheticSet:
    """A distilled training set.

    Attributes:
        images: ``float32 [N, C, H, W]`` stored images, or ``None`` when ``factorization`` is set.
        labels: labels of the stored units: ``int64 [N]`` (hard) or ``float32 [N, K]`` (soft).
        num_classes: number of classes ``K``.
        lr: learned learning rate for training on this set (scalar tensor), if the method learns one.
        factors: stored parameters of a factorized set (empty for plain images).
        factorization: name of the decoder in :data:`ddapps.factorization.DECODERS`, or ``None``.
        zca: ``{"mean": [D], "matrix": [D, D]}`` when the images live in ZCA-whitened space.
        meta: JSON-able provenance (method, config, dataset, ipc, seed, normalization, dsa ...).
        eval_protocol: how the set is meant to be trained on (:class:`EvalProtocol`).
        factorization_config: the decoder's options (JSON-able), for factorized sets.
        classes: ``int64 [N]`` the class each stored unit was made for, beside soft labels whose top
            class can differ (a teacher's labels: SRe2L, RDED); ``None`` otherwise.
    """

    images: Tensor | None
    labels: Tensor
    num_classes: int
    lr: Tensor | None = None
    factors: dict[str, Tensor] = field(default_factory=dict)
    factorization: str | None = None
    zca: dict[str, Tensor] | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    eval_protocol: EvalProtocol = field(default_factory=EvalProtocol)
    factorization_config: dict[str, Any] = field(default_factory=dict)
    classes: Tensor | None = None

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ views
    @property
    def soft_labels(self) -> bool:
        """True when labels are a float distribution/score per class."""
        return self.labels.is_floating_point()

    @property
    def ipc(self) -> int | None:
        """Images per class the set was distilled at (from metadata)."""
        value = self.meta.get("ipc")
        return int(value) if value is not None else None

    def training_data(self) -> tuple[Tensor, Tensor]:
        """``(images, labels)`` to train on: decoded through the factorization if there is one."""
        if self.factorization is None:
            assert self.images is not None
            return self.images, self.labels
        decoder = DECODERS.get(self.factorization)
        return decoder(self.factors, self.labels, self.factorization_config)

    @property
    def training_lr(self) -> float | None:
        """The learning rate to train on this set with: its learned ``lr``, else the protocol's."""
        return float(self.lr) if self.lr is not None else self.eval_protocol.lr

    def hard_labels(self) -> Tensor:
        """Class index per stored unit: ``classes`` when set, else the labels (argmax of soft labels)."""
        if self.classes is not None:
            return self.classes
        return self.labels.argmax(dim=1) if self.soft_labels else self.labels

    def stored_floats(self) -> int:
        """Honest storage count: every float the set stores (images/factors and soft labels)."""
        return stored_floats(self.images, self.factors, self.labels)

    def to_dataset(self) -> TensorDataset:
        """A plain ``TensorDataset(images, labels)`` for ordinary PyTorch training loops."""
        images, labels = self.training_data()
        return TensorDataset(images.detach().clone(), labels.detach().clone())

    def detach(self) -> "SyntheticSet":
        """A copy whose tensors are detached, contiguous CPU float32/int64 tensors."""

        def cpu(t: Tensor) -> Tensor:
            return t.detach().to("cpu").contiguous().clone()

        return replace(
            self,
            images=None if self.images is None else cpu(self.images),
            labels=cpu(self.labels),
            lr=None if self.lr is None else cpu(self.lr).reshape(()),
            factors={k: cpu(v) for k, v in self.factors.items()},
            zca=None if self.zca is None else {k: cpu(v) for k, v in self.zca.items()},
            classes=None if self.classes is None else cpu(self.classes),
            meta=json.loads(json.dumps(self.meta)),
            factorization_config=json.loads(json.dumps(self.factorization_config)),
        )

    # ------------------------------------------------------------- validation
    def validate(self) -> None:
        """Raise :class:`SyntheticSetError` unless every field is consistent and finite."""
        if not isinstance(self.eval_protocol, EvalProtocol):
            raise SyntheticSetError("eval_protocol must be an EvalProtocol")
        if not isinstance(self.factorization_config, dict):
            raise SyntheticSetError("factorization_config must be a dict")
        if not isinstance(self.num_classes, int) or self.num_classes < 1:
            raise SyntheticSetError(f"num_classes must be a positive int, got {self.num_classes!r}")
        if (self.images is None) == (self.factorization is None):
            raise SyntheticSetError("a synthetic set needs either images or a factorization, not both")
        if self.factorization is not None and self.factorization not in DECODERS:
            raise SyntheticSetError(
                f"unknown factorization {self.factorization!r}; known: {', '.join(DECODERS.names())}"
            )
        units = self._check_images_and_factors()
        labels = self.labels
        if labels.is_floating_point():
            if labels.ndim != 2 or labels.shape != (units, self.num_classes):
                raise SyntheticSetError(
                    f"soft labels must have shape [{units}, {self.num_classes}], got {list(labels.shape)}"
                )
            _check_finite("labels", labels)
        else:
            if labels.dtype != torch.int64 or labels.shape != (units,):
                raise SyntheticSetError(
                    f"hard labels must be int64 of shape [{units}], got {labels.dtype} {list(labels.shape)}"
                )
            if units and (int(labels.min()) < 0 or int(labels.max()) >= self.num_classes):
                raise SyntheticSetError(f"labels must lie in [0, {self.num_classes})")
        if self.classes is not None:
            self._check_classes(units)
        if self.lr is not None:
            if self.lr.numel() != 1 or not math.isfinite(float(self.lr)) or float(self.lr) <= 0:
                raise SyntheticSetError("learned lr must be one positive finite number")
        if self.zca is not None:
            mean, matrix = self.zca.get("mean"), self.zca.get("matrix")
            if mean is None or matrix is None or matrix.ndim != 2 or matrix.shape != (mean.numel(),) * 2:
                raise SyntheticSetError("zca must hold 'mean' [D] and 'matrix' [D, D]")

    def _check_classes(self, units: int) -> None:
        classes = self.classes
        assert classes is not None
        if not self.labels.is_floating_point():
            raise SyntheticSetError("classes is only stored beside soft labels (hard labels are the classes)")
        if classes.dtype != torch.int64 or classes.shape != (units,):
            raise SyntheticSetError(
                f"classes must be int64 of shape [{units}], got {classes.dtype} {list(classes.shape)}"
            )
        if units and (int(classes.min()) < 0 or int(classes.max()) >= self.num_classes):
            raise SyntheticSetError(f"classes must lie in [0, {self.num_classes})")

    def _check_images_and_factors(self) -> int:
        if self.images is not None:
            if not self.images.is_floating_point() or self.images.ndim != 4:
                raise SyntheticSetError(
                    f"images must be a float tensor [N, C, H, W], got {self.images.dtype} {list(self.images.shape)}"
                )
            _check_finite("images", self.images)
            return int(self.images.shape[0])
        if not self.factors:
            raise SyntheticSetError("a factorized set needs at least one factor tensor")
        sizes = {int(t.shape[0]) for t in self.factors.values() if t.ndim > 0}
        for key, t in self.factors.items():
            if not t.is_floating_point():
                raise SyntheticSetError(f"factor {key!r} must be a float tensor")
            _check_finite(f"factor {key!r}", t)
        if len(sizes) != 1:
            raise SyntheticSetError("all factors must share their first (unit) dimension")
        return sizes.pop()

    # -------------------------------------------------------------------- I/O
    def flat_tensors(self) -> dict[str, Tensor]:
        """Every tensor under its file key (``labels``, ``images``, ``lr``, ``classes``, ``factor.*``, ``zca.*``).

        The one flat layout shared by the safetensors file and Flower records.
        """
        tensors: dict[str, Tensor] = {"labels": self.labels}
        if self.images is not None:
            tensors["images"] = self.images
        if self.lr is not None:
            tensors["lr"] = self.lr.reshape(1).float()
        if self.classes is not None:
            tensors["classes"] = self.classes
        for key, value in self.factors.items():
            tensors[f"factor.{key}"] = value
        if self.zca is not None:
            tensors["zca.mean"], tensors["zca.matrix"] = self.zca["mean"], self.zca["matrix"]
        return tensors

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the set atomically to ``path`` (``.safetensors``) plus a readable ``.json`` copy."""
        from safetensors.torch import save_file

        target = Path(path)
        if target.suffix != ".safetensors":
            target = target.with_suffix(".safetensors")
        s = self.detach()
        tensors = s.flat_tensors()
        header = {
            "schema_version": SCHEMA_VERSION,
            "num_classes": s.num_classes,
            "factorization": s.factorization,
            "factorization_config": s.factorization_config,
            "eval_protocol": s.eval_protocol.as_dict(),
            "stored_floats": s.stored_floats(),
            "meta": s.meta,
        }
        with atomic_path(target) as tmp:
            save_file(tensors, str(tmp), metadata={"ddapps": json.dumps(header, allow_nan=False)})
        write_json(target.with_suffix(".json"), header)
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "SyntheticSet":
        """Read a set written by :meth:`save`; any defect raises :class:`SyntheticSetError`."""
        from safetensors import SafetensorError, safe_open

        source = Path(path)
        if source.is_dir():
            source = source / "synset.safetensors"
        if not source.is_file():
            raise SyntheticSetError(f"synthetic set file not found: {source}")
        try:
            with safe_open(str(source), framework="pt") as handle:
                raw_meta = (handle.metadata() or {}).get("ddapps")
                keys = list(handle.keys())
                if len(keys) > _MAX_TENSORS:
                    raise SyntheticSetError(f"{source}: too many tensors ({len(keys)})")
                tensors = {k: handle.get_tensor(k) for k in keys}
        except SyntheticSetError:
            raise
        except (SafetensorError, OSError, ValueError, RuntimeError, MemoryError) as err:
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise SyntheticSetError(f"{source} is not a valid safetensors file ({reason})") from None
        header = _parse_header(source, raw_meta)
        try:
            return cls.from_flat(tensors, header)
        except SyntheticSetError as err:
            raise SyntheticSetError(f"{source}: {err}") from None

    @classmethod
    def from_flat(cls, tensors: Mapping[str, Tensor], header: Mapping[str, Any]) -> "SyntheticSet":
        """The set from :meth:`flat_tensors` and a header of any readable schema (file or Flower records).

        Only the known tensor names are accepted and every field is validated: a malformed or hostile
        input raises :class:`SyntheticSetError`.
        """
        allowed = {"images", "labels", "lr", "classes", "zca.mean", "zca.matrix"}
        unknown = [k for k in tensors if k not in allowed and not k.startswith("factor.")]
        if unknown:
            raise SyntheticSetError(f"unexpected tensors {unknown}")
        if "labels" not in tensors:
            raise SyntheticSetError("missing tensor 'labels'")
        has_zca = "zca.mean" in tensors or "zca.matrix" in tensors
        num_classes = header.get("num_classes")
        if not isinstance(num_classes, int):
            raise SyntheticSetError("metadata field num_classes must be an integer")
        factorization = header.get("factorization")
        if factorization is not None and not isinstance(factorization, str):
            raise SyntheticSetError("metadata field factorization must be a string or null")
        meta = header.get("meta", {})
        if not isinstance(meta, dict):
            raise SyntheticSetError("metadata field meta must be an object")
        typed = typed_fields(header, meta)
        return cls(
            images=tensors.get("images"),
            labels=tensors["labels"],
            num_classes=num_classes,
            lr=tensors["lr"].reshape(()) if "lr" in tensors else None,
            factors={k[len("factor.") :]: v for k, v in tensors.items() if k.startswith("factor.")},
            factorization=factorization,
            zca=_zca(tensors) if has_zca else None,
            classes=tensors.get("classes"),
            **typed,
        )


def _zca(tensors: Mapping[str, Tensor]) -> dict[str, Tensor]:
    if "zca.mean" not in tensors or "zca.matrix" not in tensors:
        raise SyntheticSetError("zca must hold 'mean' [D] and 'matrix' [D, D]")
    return {"mean": tensors["zca.mean"], "matrix": tensors["zca.matrix"]}


def typed_fields(header: Mapping[str, Any], meta: Mapping[str, Any]) -> dict[str, Any]:
    """``meta``, ``eval_protocol`` and ``factorization_config`` from a header of any readable schema.

    Schema 1 kept the protocol and the decoder's options inside ``meta``; they move out here, so a
    schema-1 file loads as the same set a schema-2 file of it would give.
    """
    meta = dict(meta)
    if header.get("schema_version") == 1:
        protocol = meta.pop("eval_protocol", {})
        config = meta.pop("factorization_config", {})
    else:
        protocol = header.get("eval_protocol", {})
        config = header.get("factorization_config", {})
    if not isinstance(config, dict):
        raise SyntheticSetError("metadata field factorization_config must be an object")
    return {"meta": meta, "eval_protocol": EvalProtocol.from_dict(protocol), "factorization_config": config}


def _parse_header(source: Path, raw: str | None) -> dict[str, Any]:
    from ddapps.utils.json_header import parse_json_header

    missing = "has no ddapps metadata (not written by ddapps?)"
    header = parse_json_header(
        source, raw, what="metadata", missing=missing, max_bytes=_MAX_META_BYTES, error=SyntheticSetError
    )
    version = header.get("schema_version")
    if isinstance(version, bool) or version not in READABLE_SCHEMAS:
        raise SyntheticSetError(
            f"{source}: unsupported schema_version {version!r} (this ddapps reads {READABLE_SCHEMAS})"
        )
    return header


def _check_finite(name: str, t: Tensor) -> None:
    if not bool(torch.isfinite(t).all()):
        raise SyntheticSetError(f"{name} contain NaN or Inf values")


def warm_start_record(init: SyntheticSet) -> dict[str, Any]:
    """What ``meta["warm_start"]`` says of a warm start: its method, size and privacy record."""
    record: dict[str, Any] = {"method": init.meta.get("method"), "ipc": init.ipc}
    privacy = init.meta.get("privacy")
    if isinstance(privacy, dict):
        record["privacy"] = {k: privacy.get(k) for k in ("private", "epsilon", "delta")}
    return record
