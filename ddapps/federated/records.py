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
"""

from __future__ import annotations

import json
from typing import Any, Mapping

import torch
from flwr.app import Array, ArrayRecord, ConfigRecord, RecordDict

from ddapps.errors import SyntheticSetError
from ddapps.synthetic import SCHEMA_VERSION, SyntheticSet

SYNSET_ARRAYS = "synset"
SYNSET_META = "synset-meta"
_NO_FACTORIZATION = "none"  # not "": Flower's ConfigRecord.count_bytes() rejects empty strings


def synset_to_records(synset: SyntheticSet) -> RecordDict:
    """``synset`` as ``{"synset": ArrayRecord, "synset-meta": ConfigRecord}`` (no side effects)."""
    s = synset.detach()
    tensors = s.flat_tensors()
    arrays = ArrayRecord({k: Array(v.numpy()) for k, v in tensors.items()})
    meta = ConfigRecord(
        {
            "schema_version": SCHEMA_VERSION,
            "num_classes": s.num_classes,
            "factorization": s.factorization or _NO_FACTORIZATION,
            "eval_protocol": json.dumps(s.eval_protocol.as_dict(), allow_nan=False, sort_keys=True),
            "factorization_config": json.dumps(s.factorization_config, allow_nan=False, sort_keys=True),
            "meta": json.dumps(s.meta, allow_nan=False, sort_keys=True),
        }
    )
    return RecordDict({SYNSET_ARRAYS: arrays, SYNSET_META: meta})


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
