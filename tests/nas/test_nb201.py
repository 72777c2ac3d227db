"""The NAS-Bench-201 space (Dong & Yang, ICLR 2020): strings, connectivity, the network, the ground truth."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import pytest
import torch

from ddapps.errors import ConfigError
from ddapps.nas.nb201 import all_archs, build_nb201, format_arch, is_connected, parse_arch
from ddapps.nas.nb201_truth import DEFAULT_TRUTH, TRUTH_COLUMNS, load_truth, truth_path
from ddapps.utils.seeding import make_generator
from tests.conftest import SHARED_DATA

REAL_TRUTH = SHARED_DATA / DEFAULT_TRUTH
EXAMPLE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
HEADER = [*TRUTH_COLUMNS.values(), "ArchitectureString", "UniqueString"]


def _real_arch_strings() -> list[str]:
    with REAL_TRUTH.open(newline="") as f:
        return [row["ArchitectureString"] for row in csv.DictReader(f)]


def _connected_by_paths(ops: tuple[str, ...]) -> bool:
    # Independent of is_connected: list the four node paths 0 -> 3 and the edge (index) each uses.
    edge = {(0, 1): 0, (0, 2): 1, (1, 2): 2, (0, 3): 3, (1, 3): 4, (2, 3): 5}
    paths = [(0, 3), (0, 1, 3), (0, 2, 3), (0, 1, 2, 3)]
    return any(all(ops[edge[a, b]] != "none" for a, b in itertools.pairwise(p)) for p in paths)


def test_parse_format_round_trip_on_every_csv_row() -> None:
    strings = _real_arch_strings()
    parsed = [parse_arch(s) for s in strings]
    assert [format_arch(ops) for ops in parsed] == strings
    assert len(strings) == 15_625 == len(set(parsed))
    assert set(parsed) == set(all_archs())
    assert parse_arch(EXAMPLE) == (
        "nor_conv_3x3",
        "nor_conv_3x3",
        "avg_pool_3x3",
        "skip_connect",
        "nor_conv_3x3",
        "skip_connect",
    )


def test_all_archs_is_the_full_product_in_a_fixed_order() -> None:
    archs = list(all_archs())
    assert len(archs) == 5**6 == len(set(archs))
    assert archs == list(all_archs())
    assert archs[0] == ("none",) * 6 and archs[-1] == ("avg_pool_3x3",) * 6


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|",  # two nodes
        "|nor_conv_3x3~1|+|none~0|none~1|+|none~0|none~1|none~2|",  # wrong source index
        "|conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|",  # unknown op (NNI's name)
        "|none~0|+|none~0|+|none~0|none~1|none~2|",  # node 2 with one input
        "|none~0|+|none~0|none~1|+|none~0|none~1|none~2",  # missing closing bar
        "|none|+|none~0|none~1|+|none~0|none~1|none~2|",  # no ~index
        " |none~0|+|none~0|none~1|+|none~0|none~1|none~2|",  # stray space
    ],
)
def test_parse_arch_rejects_malformed_strings(bad: str) -> None:
    with pytest.raises(ConfigError):
        parse_arch(bad)


def test_format_arch_rejects_bad_tuples() -> None:
    with pytest.raises(ConfigError, match="6 edge ops"):
        format_arch(("none",) * 5)
    with pytest.raises(ConfigError, match="unknown"):
        format_arch(("none",) * 5 + ("max_pool_3x3",))


def test_is_connected_known_cases() -> None:
    assert not is_connected(("none",) * 6)
    assert is_connected("|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
    # node 3's only input is node 2, and node 2 has no non-none input: disconnected.
    assert not is_connected("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|nor_conv_3x3~2|")
    # the same through node 1 -> node 2 -> node 3 is connected.
    assert is_connected("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|nor_conv_3x3~2|")
    assert is_connected(EXAMPLE)


def test_disconnected_count_matches_brute_force_and_the_chance_level_rows() -> None:
    disconnected = {ops for ops in all_archs() if not is_connected(ops)}
    assert disconnected == {ops for ops in all_archs() if not _connected_by_paths(ops)}
    assert len(disconnected) == 341
    # The benchmark lists exactly these cells at chance accuracy (10%) on CIFAR-10.
    truth = load_truth(REAL_TRUTH)
    assert {ops for ops, acc in truth.items() if acc["cifar10"] == 10.0} == disconnected


def test_real_truth_has_every_architecture_and_the_papers_best() -> None:
    truth = load_truth(REAL_TRUTH)
    assert len(truth) == 15_625 and set(truth) == set(all_archs())
    best = max(acc["cifar10"] for acc in truth.values())
    assert round(best, 2) == 94.37  # the README's (and the paper's) best CIFAR-10 accuracy
    assert all(set(acc) == {"cifar10", "cifar100", "imagenet16-120"} for acc in truth.values())


def test_parameter_count_and_function_match_nni_nasbench201() -> None:
    from nni.nas.hub.pytorch import NasBench201  # the ``nas`` extra

    space = NasBench201(stem_out_channels=16, num_modules_per_stack=5, num_labels=10)
    nni_names = {"nor_conv_1x1": "conv_1x1", "nor_conv_3x3": "conv_3x3"}
    labels = ("0_1", "0_2", "1_2", "0_3", "1_3", "2_3")  # NNI's cell/{source}_{target}, our edge order
    cases = {
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|": 1_531_546,
        "|nor_conv_1x1~0|+|nor_conv_1x1~0|nor_conv_1x1~1|+|nor_conv_1x1~0|nor_conv_1x1~1|nor_conv_1x1~2|": 241_306,
        EXAMPLE: 802_426,
        "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_3x3~0|none~1|skip_connect~2|": 344_346,
    }
    x = torch.rand(2, 3, 32, 32, generator=make_generator(0))
    for arch, expected in cases.items():
        ops = parse_arch(arch)
        sample = {f"cell/{label}": nni_names.get(op, op) for label, op in zip(labels, ops)}
        theirs = space.freeze(sample)
        ours = build_nb201(ops, 3, 10, generator=make_generator(1))
        n_ours = sum(p.numel() for p in ours.parameters())
        n_theirs = sum(p.numel() for p in theirs.parameters())
        assert n_ours == n_theirs == expected, arch
        shapes = sorted(tuple(p.shape) for p in ours.parameters())
        assert shapes == sorted(tuple(p.shape) for p in theirs.parameters()), arch
        assert len(list(ours.buffers())) == len(list(theirs.buffers())), arch
        # Same module order: copy our weights into NNI's network by position; both compute the same logits.
        mine, other = ours.state_dict(), theirs.state_dict()
        theirs.load_state_dict({name: value for name, value in zip(other, mine.values())})
        with torch.no_grad():
            assert torch.allclose(ours(x), theirs(x), atol=1e-5), arch  # training mode: batch statistics


def test_same_generator_gives_bitwise_equal_weights() -> None:
    kw = {"channels": 4, "cells_per_stage": 1}
    a = build_nb201(EXAMPLE, 3, 10, generator=make_generator(7), **kw).state_dict()
    b = build_nb201(EXAMPLE, 3, 10, generator=make_generator(7), **kw).state_dict()
    c = build_nb201(EXAMPLE, 3, 10, generator=make_generator(8), **kw).state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_forward_shape_and_features() -> None:
    net = build_nb201(EXAMPLE, 3, 10, channels=4, cells_per_stage=1, generator=make_generator(0))
    x = torch.rand(2, 3, 32, 32, generator=make_generator(1))
    logits = net(x)
    assert logits.shape == (2, 10) and torch.isfinite(logits).all()
    assert net.embed(x).shape == (2, net.feature_dim) == (2, 16)
    assert torch.allclose(net.classifier(net.features(x)), logits)


def test_disconnected_cell_runs_and_ignores_its_input() -> None:
    ops = parse_arch("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|nor_conv_3x3~2|")
    net = build_nb201(ops, 3, 10, channels=4, cells_per_stage=1, generator=make_generator(0)).eval()
    x = torch.rand(3, 3, 32, 32, generator=make_generator(1))
    with torch.no_grad():
        logits = net(x)
    assert logits.shape == (3, 10)
    assert torch.equal(logits, net.classifier.bias.detach().expand(3, 10))  # constant: the input never reaches it
    connected = build_nb201(EXAMPLE, 3, 10, channels=4, cells_per_stage=1, generator=make_generator(0)).eval()
    with torch.no_grad():
        assert not torch.allclose(connected(x)[0], connected(x)[1])


def _write_csv(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_load_truth_on_a_small_csv(tmp_path: Path) -> None:
    other = format_arch(("skip_connect",) * 6)
    path = _write_csv(tmp_path / "t.csv", [["93.5", "70.25", "44.0", EXAMPLE, "u"], ["80", "50", "20.5", other, "v"]])
    truth = load_truth(path)
    assert truth == {
        parse_arch(EXAMPLE): {"cifar10": 93.5, "cifar100": 70.25, "imagenet16-120": 44.0},
        ("skip_connect",) * 6: {"cifar10": 80.0, "cifar100": 50.0, "imagenet16-120": 20.5},
    }


@pytest.mark.parametrize(
    "row, message",
    [
        (["nan", "70", "44", EXAMPLE, "u"], "line 3"),
        (["93", "", "44", EXAMPLE, "u"], "missing value"),
        (["93", "70", "44", "|bogus~0|", "u"], "line 3"),
        (["93", "70", "44", format_arch(("none",) * 6), "u"], "duplicate"),
        (["93", "70"], "missing value"),
    ],
)
def test_load_truth_rejects_bad_rows(tmp_path: Path, row: list[str], message: str) -> None:
    first = ["93", "70", "44", format_arch(("none",) * 6), "u"]
    path = _write_csv(tmp_path / "t.csv", [first, row])
    with pytest.raises(ConfigError, match=message):
        load_truth(path)


def test_load_truth_rejects_a_bad_header(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "t.csv", [["93", EXAMPLE]], header=["CIFAR10TestAccuracy200Epochs", "Arch"])
    with pytest.raises(ConfigError, match="header"):
        load_truth(path)


def test_truth_path_resolution_and_missing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="--truth"):
        truth_path(str(tmp_path / "absent.csv"), None)
    with pytest.raises(ConfigError, match="--truth") as err:
        truth_path(None, str(tmp_path))
    assert str(tmp_path / DEFAULT_TRUTH) in str(err.value) and "DDAPPS_DATA" in str(err.value)
    target = tmp_path / DEFAULT_TRUTH
    target.parent.mkdir(parents=True)
    _write_csv(target, [["93", "70", "44", EXAMPLE, "u"]])
    assert truth_path(None, str(tmp_path)) == target.resolve()
    monkeypatch.setenv("DDAPPS_DATA", str(tmp_path))
    assert truth_path(None, None) == target.resolve()
    assert truth_path(str(target), None) == target.resolve()
