"""Pure conversions between ddapps objects and Flower records, and byte counts of records.

A :class:`~ddapps.synthetic.SyntheticSet` travels as two records of one ``RecordDict``:

* ``ArrayRecord`` ``"synset"``: the tensors under the names of the ``.safetensors`` file format
  (``images``, ``labels``, ``lr``, ``factor.<key>``, ``zca.mean``, ``zca.matrix``);
* ``ConfigRecord`` ``"synset-meta"``: ``schema_version``, ``num_classes``, ``factorization``
  (``"none"`` for none), and three JSON strings: the typed ``eval_protocol`` and
  ``factorization_config``, and the provenance ``meta``.

:func:`records_to_synset` accepts only those names and rebuilds the set through the validating
``SyntheticSet`` constructor, so a malformed reply raises
:class:`~ddapps.errors.SyntheticSetError` instead of reaching training. Bytes are counted with
Flower's own ``count_bytes()`` of each record (payload plus keys).

**Image encoding** (``upload_dtype`` of the run). ``float32`` sends the images as they are;
``float16`` halves them; ``uint8`` sends 8-bit pixels: each image is mapped back from the
normalised space to ``[0, 1]`` with the dataset's public per-channel ``mean``/``std``, clipped and
rounded to 256 levels (lossless for raw 8-bit data such as a ``subset`` upload; a distilled image
loses what lies outside the pixel range and below 1/255). The meta record then carries
``images_encoding`` and, for ``uint8``, ``pixel_mean``/``pixel_std``; the receiver decodes to
float32 before validation. Quantising a release is post-processing: a DP guarantee is unchanged.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

import torch
from flwr.app import Array, ArrayRecord, ConfigRecord, RecordDict

from ddapps.errors import ConfigError, SyntheticSetError
from ddapps.federated.settings import UPLOAD_DTYPES
from ddapps.synthetic import SCHEMA_VERSION, SyntheticSet

SYNSET_ARRAYS = "synset"
SYNSET_META = "synset-meta"
_NO_FACTORIZATION = "none"  # not "": Flower's ConfigRecord.count_bytes() rejects empty strings


def synset_to_records(
    synset: SyntheticSet, encoding: str = "float32", stats: tuple[Sequence[float], Sequence[float]] | None = None
) -> RecordDict:
    """``synset`` as ``{"synset": ArrayRecord, "synset-meta": ConfigRecord}`` (no side effects).

    ``encoding`` is one of :data:`UPLOAD_DTYPES`; ``uint8`` needs the dataset's ``stats``
    (per-channel ``(mean, std)`` of the normalisation) and a set of plain images (no ZCA, no
    factorisation)."""
    s = synset.detach()
    tensors = s.flat_tensors()
    fields: dict[str, str] = {}
    if encoding != "float32":
        if "images" not in tensors:
            raise ConfigError(f"a {encoding} upload needs a set with images")
        tensors["images"], fields = _encode(tensors["images"], encoding, stats, s)
    arrays = ArrayRecord({k: Array(v.numpy()) for k, v in tensors.items()})
    values: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "num_classes": s.num_classes,
        "factorization": s.factorization or _NO_FACTORIZATION,
        "eval_protocol": json.dumps(s.eval_protocol.as_dict(), allow_nan=False, sort_keys=True),
        "factorization_config": json.dumps(s.factorization_config, allow_nan=False, sort_keys=True),
        "meta": json.dumps(s.meta, allow_nan=False, sort_keys=True),
    }
    meta = ConfigRecord(values | fields)
    return RecordDict({SYNSET_ARRAYS: arrays, SYNSET_META: meta})


def _encode(
    images: torch.Tensor, encoding: str, stats: tuple[Sequence[float], Sequence[float]] | None, s: SyntheticSet
) -> tuple[torch.Tensor, dict[str, str]]:
    if encoding == "float16":
        return images.to(torch.float16), {"images_encoding": encoding}
    if encoding != "uint8":
        raise ConfigError(f"unknown upload dtype {encoding!r}; choose one of: {', '.join(UPLOAD_DTYPES)}")
    if stats is None or s.zca is not None or s.factorization is not None:
        raise ConfigError("uint8 uploads need the dataset's mean/std and plain images (no ZCA, no factorisation)")
    mean, std = (torch.tensor([float(v) for v in values]).view(1, -1, 1, 1) for values in stats)
    pixels = (images * std + mean).clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8)
    return pixels, {"images_encoding": encoding, "pixel_mean": json.dumps(list(map(float, stats[0]))),
                    "pixel_std": json.dumps(list(map(float, stats[1])))}  # fmt: skip


def _decode(tensors: dict[str, torch.Tensor], meta: ConfigRecord) -> None:
    encoding = str(meta.get("images_encoding", "float32"))
    if encoding == "float32":
        return  # as sent; SyntheticSet validates it
    images = tensors.get("images")
    expected = {"float16": torch.float16, "uint8": torch.uint8}.get(encoding)
    if expected is None or images is None or images.dtype != expected:
        raise SyntheticSetError(f"synthetic-set images must be {encoding} as images_encoding says")
    if encoding == "float16":
        tensors["images"] = images.float()
    elif encoding == "uint8":
        try:
            mean, std = (
                torch.tensor(json.loads(str(meta[k])), dtype=torch.float32) for k in ("pixel_mean", "pixel_std")
            )
        except (KeyError, ValueError, TypeError) as err:
            raise SyntheticSetError(f"uint8 synthetic-set images need pixel_mean and pixel_std ({err})") from None
        if mean.ndim != 1 or mean.shape != std.shape or images.ndim != 4 or images.shape[1] != mean.numel():
            raise SyntheticSetError("pixel_mean/pixel_std must hold one value per image channel")
        if not bool(torch.isfinite(mean).all() and torch.isfinite(std).all() and (std > 0).all()):
            raise SyntheticSetError("pixel_std must be finite and > 0")
        tensors["images"] = (images.float() / 255.0 - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)


def records_to_synset(content: RecordDict) -> SyntheticSet:
    """Rebuild the set written by :func:`synset_to_records`; any defect is a SyntheticSetError."""
    arrays = content.array_records.get(SYNSET_ARRAYS)
    meta = content.config_records.get(SYNSET_META)
    if arrays is None or meta is None:
        raise SyntheticSetError(f"a synthetic-set reply needs records {SYNSET_ARRAYS!r} and {SYNSET_META!r}")
    num_classes = meta.get("num_classes")
    factorization = meta.get("factorization", _NO_FACTORIZATION)
    if not isinstance(factorization, str):
        raise SyntheticSetError("synthetic-set metadata needs a str factorization")
    header: dict[str, Any] = {
        "schema_version": meta.get("schema_version"),
        "num_classes": num_classes,
        "factorization": None if factorization == _NO_FACTORIZATION else factorization,
    }
    if header["schema_version"] != SCHEMA_VERSION:
        raise SyntheticSetError(f"unsupported synthetic-set schema_version {header['schema_version']!r}")
    for key in ("meta", "eval_protocol", "factorization_config"):
        try:
            header[key] = json.loads(str(meta.get(key, "{}")))
        except json.JSONDecodeError as err:
            raise SyntheticSetError(f"synthetic-set {key} is not valid JSON ({err.msg})") from None
    tensors = {k: torch.from_numpy(v.numpy().copy()) for k, v in arrays.items()}
    _decode(tensors, meta)
    return SyntheticSet.from_flat(tensors, header)


def state_to_arrays(state: Mapping[str, torch.Tensor]) -> ArrayRecord:
    """A model ``state_dict`` as an ArrayRecord (CPU copies)."""
    return ArrayRecord({k: Array(v.detach().cpu().contiguous().numpy()) for k, v in state.items()})


def arrays_to_state(arrays: ArrayRecord) -> dict[str, torch.Tensor]:
    """An ArrayRecord back to a ``state_dict`` of (writable) tensors."""
    return {k: torch.from_numpy(v.numpy().copy()) for k, v in arrays.items()}


def record_bytes(content: RecordDict) -> int:
    """Bytes of a message's content: the sum of ``count_bytes()`` over its records."""
    return int(sum(record.count_bytes() for record in content.values()))


def config_record(values: Mapping[str, Any]) -> ConfigRecord:
    """A ConfigRecord from a flat mapping, dropping ``None`` and empty strings and lists.

    Dropped keys read back as their defaults; Flower's ``ConfigRecord.count_bytes()`` raises on
    empty strings and lists, so they must not be sent.
    """
    return ConfigRecord({k: v for k, v in values.items() if v is not None and v != "" and v != []})
