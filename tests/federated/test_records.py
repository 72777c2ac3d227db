"""SyntheticSet <-> Flower records (a pure round trip), label mapping, byte counts."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("flwr")

from flwr.app import Array, ArrayRecord, ConfigRecord, RecordDict  # noqa: E402

from ddapps.errors import SyntheticSetError  # noqa: E402
from ddapps.federated.records import (  # noqa: E402
    SYNSET_ARRAYS,
    SYNSET_META,
    config_record,
    record_bytes,
    records_to_synset,
    synset_to_records,
)
from ddapps.federated.synsets import to_global, to_local, union  # noqa: E402
from ddapps.synthetic import SyntheticSet  # noqa: E402


def _synset(soft: bool = False) -> SyntheticSet:
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(6, 1, 4, 4, generator=gen)
    labels = torch.randn(6, 3, generator=gen) if soft else torch.tensor([0, 0, 1, 1, 2, 2])
    meta = {"method": "dm", "ipc": 2, "privacy": {"epsilon": 1.5, "delta": 1e-5}}
    return SyntheticSet(images=images, labels=labels, num_classes=3, lr=torch.tensor(0.02), meta=meta)


@pytest.mark.parametrize("soft", [False, True])
def test_round_trip_is_exact(soft: bool) -> None:
    # Prepare
    synset = _synset(soft)
    # Execute
    back = records_to_synset(synset_to_records(synset))
    # Assert
    assert torch.equal(back.images, synset.images) and torch.equal(back.labels, synset.labels)
    assert back.labels.dtype == synset.labels.dtype and back.num_classes == 3
    assert float(back.lr) == pytest.approx(0.02) and back.meta == synset.meta


def test_conversion_has_no_side_effects() -> None:
    synset = _synset()
    before = synset.images.clone()
    content = synset_to_records(synset)
    content[SYNSET_ARRAYS]["images"] = Array(torch.zeros(1, 1, 4, 4).numpy())
    assert torch.equal(synset.images, before)


def test_malformed_replies_are_rejected() -> None:
    good = synset_to_records(_synset())
    with pytest.raises(SyntheticSetError, match="needs records"):
        records_to_synset(RecordDict({SYNSET_ARRAYS: good[SYNSET_ARRAYS]}))
    extra = synset_to_records(_synset())
    extra[SYNSET_ARRAYS]["payload"] = Array(torch.zeros(2).numpy())
    with pytest.raises(SyntheticSetError, match="unexpected"):
        records_to_synset(extra)
    nan = synset_to_records(_synset())
    nan[SYNSET_ARRAYS]["images"] = Array(torch.full((6, 1, 4, 4), float("nan")).numpy())
    with pytest.raises(SyntheticSetError, match="NaN"):
        records_to_synset(nan)
    bad_meta = synset_to_records(_synset())
    bad_meta[SYNSET_META]["meta"] = "{not json"
    with pytest.raises(SyntheticSetError, match="JSON"):
        records_to_synset(bad_meta)


def test_record_bytes_is_the_sum_of_count_bytes() -> None:
    content = synset_to_records(_synset())
    expected = content[SYNSET_ARRAYS].count_bytes() + content[SYNSET_META].count_bytes()
    assert record_bytes(content) == expected
    assert record_bytes(content) > 6 * 16 * 4  # at least the float32 pixels
    arrays = ArrayRecord({"w": Array(torch.zeros(10, dtype=torch.float32).numpy())})
    assert record_bytes(RecordDict({"a": arrays})) == arrays.count_bytes() >= 40 + 1


def test_config_record_drops_values_flower_cannot_count() -> None:
    record = config_record({"a": 1, "b": "", "c": None, "d": "x"})
    assert dict(record) == {"a": 1, "d": "x"}
    assert isinstance(record, ConfigRecord) and record.count_bytes() == 8 + 1 + 1 + 1


def test_label_mapping_round_trip_and_union() -> None:
    local = SyntheticSet(images=torch.ones(4, 1, 2, 2), labels=torch.tensor([0, 0, 1, 1]), num_classes=2)
    wide = to_global(local, [3, 7], 10, client={"partition_id": 1})
    assert wide.num_classes == 10 and wide.labels.tolist() == [3, 3, 7, 7]
    assert wide.meta["classes"] == [3, 7] and wide.meta["client"]["partition_id"] == 1
    back = to_local(wide, [3, 7])
    assert back is not None and back.labels.tolist() == [0, 0, 1, 1]
    soft = SyntheticSet(images=torch.ones(2, 1, 2, 2), labels=torch.tensor([[2.0, 1.0], [0.0, 3.0]]), num_classes=2)
    wide_soft = to_global(soft, [1, 2], 4)
    assert wide_soft.labels.tolist() == [[1.0, 2.0, 1.0, 1.0], [0.0, 0.0, 3.0, 0.0]]
    images, labels = union([wide, to_global(local, [0, 1], 10)])
    assert images.shape[0] == 8 and labels.tolist() == [3, 3, 7, 7, 0, 0, 1, 1]


def test_uint8_upload_is_lossless_for_8_bit_pixels_and_a_quarter_of_the_bytes() -> None:
    mean, std = (0.1307,), (0.3081,)
    gen = torch.Generator().manual_seed(1)
    pixels = torch.randint(0, 256, (6, 1, 4, 4), generator=gen).float() / 255.0
    raw = SyntheticSet(images=(pixels - mean[0]) / std[0], labels=torch.tensor([0, 0, 1, 1, 2, 2]), num_classes=3)
    plain, packed = synset_to_records(raw), synset_to_records(raw, "uint8", (mean, std))
    back = records_to_synset(packed)
    assert torch.allclose(back.images, raw.images, atol=1e-5) and back.images.dtype == torch.float32
    assert 4 * packed[SYNSET_ARRAYS]["images"].numpy().nbytes == plain[SYNSET_ARRAYS]["images"].numpy().nbytes
    wide = SyntheticSet(images=raw.images * 10, labels=raw.labels, num_classes=3)  # beyond the pixel range: clipped
    clipped = records_to_synset(synset_to_records(wide, "uint8", (mean, std))).images
    assert float(clipped.max()) == pytest.approx((1 - mean[0]) / std[0], abs=1e-5)
    assert float(clipped.min()) == pytest.approx(-mean[0] / std[0], abs=1e-5)


def test_float16_upload_halves_the_images_and_bad_encodings_are_refused() -> None:
    synset = _synset()
    half = synset_to_records(synset, "float16")
    assert half[SYNSET_ARRAYS]["images"].numpy().nbytes == synset.images.numel() * 2
    assert torch.allclose(records_to_synset(half).images, synset.images, atol=2e-3)
    forged = synset_to_records(synset, "float16")
    forged[SYNSET_META]["images_encoding"] = "uint8"  # says uint8, carries float16 and no pixel stats
    with pytest.raises(SyntheticSetError, match="must be uint8"):
        records_to_synset(forged)
    packed = synset_to_records(synset, "uint8", ((0.5,), (0.5,)))
    packed[SYNSET_META]["pixel_std"] = "[0.0]"
    with pytest.raises(SyntheticSetError, match="pixel_std must be finite"):
        records_to_synset(packed)
    from ddapps.errors import ConfigError

    with pytest.raises(ConfigError, match="uint8 uploads need"):
        synset_to_records(synset, "uint8")
    with pytest.raises(ConfigError, match="unknown upload dtype"):
        synset_to_records(synset, "int4")
