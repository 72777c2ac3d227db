"""Schema 2 keeps the evaluation protocol and the decoder's options as typed fields; schema-1 files
(both inside ``meta``) written by the previous release still load as the same sets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from ddapps.errors import SyntheticSetError
from ddapps.synthetic import SCHEMA_VERSION, EvalProtocol, SyntheticSet

DATA = Path(__file__).parent / "data"


def test_old_factorized_file_loads_with_its_decoder_options_as_a_field(tmp_path: Path) -> None:
    old_header = json.loads((DATA / "schema1_idc_factorized.json").read_text())
    synset = SyntheticSet.load(DATA / "schema1_idc_factorized.safetensors")
    assert synset.factorization == "multiformation"
    assert synset.factorization_config == old_header["meta"]["factorization_config"]
    assert "factorization_config" not in synset.meta and "eval_protocol" not in synset.meta
    assert synset.eval_protocol == EvalProtocol()
    images, labels = synset.training_data()
    factor = old_header["meta"]["factorization_config"]["factor"]
    assert images.shape[0] == labels.shape[0] == synset.factors["images"].shape[0] * factor**2
    # Re-saved, it is a schema-2 file that decodes to the same training images.
    again = SyntheticSet.load(synset.save(tmp_path / "new.safetensors"))
    header = json.loads((tmp_path / "new.json").read_text())
    assert header["schema_version"] == SCHEMA_VERSION == 2 and header["factorization_config"] == {"factor": factor}
    assert torch.equal(again.training_data()[0], images)


def test_old_kernel_file_keeps_its_mse_protocol_and_soft_labels() -> None:
    old_header = json.loads((DATA / "schema1_kip_soft.json").read_text())
    synset = SyntheticSet.load(DATA / "schema1_kip_soft.safetensors")
    old = old_header["meta"]["eval_protocol"]
    assert synset.eval_protocol.loss == old["loss"] == "mse"
    assert synset.eval_protocol.labels == old["labels"] and synset.eval_protocol.lr == old["lr"]
    assert synset.training_lr == old["lr"] and synset.soft_labels


def test_the_protocol_is_validated_on_load(tmp_path: Path) -> None:
    tensors = {"images": torch.zeros(2, 1, 4, 4), "labels": torch.tensor([0, 1])}
    for protocol, match in [
        ({"loss": "hinge"}, "loss"),
        ({"lr": -1.0}, "lr"),
        ({"loss": "mse", "exec": "x"}, "unknown eval_protocol"),
        ("mse", "JSON object"),
    ]:
        header = {"schema_version": 2, "num_classes": 2, "factorization": None, "eval_protocol": protocol, "meta": {}}
        path = tmp_path / "bad.safetensors"
        save_file(tensors, str(path), metadata={"ddapps": json.dumps(header)})
        with pytest.raises(SyntheticSetError, match=match):
            SyntheticSet.load(path)


def test_meta_is_provenance_only() -> None:
    from ddapps.methods import METHODS, create_distiller
    from ddapps.utils.seeding import make_generator
    from tests.conftest import fake_benchmark

    real = fake_benchmark(num_classes=2, per_class=4, channels=1, size=4)
    for name in ("dm", "kip", "idc"):
        synset = create_distiller(name, METHODS.get(name).smoke_config).distill(real, 1, generator=make_generator(0))
        assert not {"eval_protocol", "factorization_config"} & set(synset.meta), name
