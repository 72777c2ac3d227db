"""The evaluation card: DD-Ranking's scores, every regime on a tiny set, bytes, outputs and the command."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

from ddapps.bench.card import CardSettings, baseline_ipc, run_card
from ddapps.bench.card_report import score_card, write_card
from ddapps.bench.card_scores import ars, lrs, normalized_exp, per_seed_lrs
from ddapps.cli import main
from ddapps.errors import ConfigError
from ddapps.synthetic import SyntheticSet
from ddapps.teacher import save_teacher, train_teacher
from ddapps.utils.seeding import make_generator
from tests.conftest import fake_benchmark


def test_dd_ranking_scores_follow_the_formulas():
    assert normalized_exp(-1) == pytest.approx(0) and normalized_exp(1) == pytest.approx(1)
    assert lrs(ior=1.0, hlr=-1.0) == pytest.approx(1) and lrs(ior=-1.0, hlr=1.0) == pytest.approx(0)
    assert lrs(0.2, 0.1) == pytest.approx((math.exp(0.05) - math.exp(-1)) / (math.e - math.exp(-1)))
    assert ars(0.3, -0.3) == pytest.approx(normalized_exp(0))
    # percent accuracies in, fractions inside: IOR 20 points, HLR 10 points
    assert per_seed_lrs([60.0], [40.0], [50.0], [60.0]) == pytest.approx([lrs(0.2, 0.1)])


def test_settings_are_checked():
    with pytest.raises(ConfigError, match="keep 'random'"):
        CardSettings(baselines=("herding",))
    with pytest.raises(ConfigError, match="subset of"):
        CardSettings(regimes=("fuzzy",))
    with pytest.raises(ConfigError, match="n_eval >= 2"):
        CardSettings(n_eval=1)
    with pytest.raises(ConfigError, match="unknown network"):
        CardSettings(nets=("nope",))


@pytest.fixture(scope="module")
def tiny_card():
    real = fake_benchmark()
    real = dataclasses.replace(real, val=real.train.subset(torch.arange(0, 36, 6)))
    teacher, _ = train_teacher(real, "mlp", {"width": 16}, epochs=10, batch_size=8, generator=make_generator(0))
    idx = torch.cat([real.train.class_indices(c)[:2] for c in range(3)])
    soft = torch.nn.functional.one_hot(real.train.labels[idx], 3).float() * 3  # a set with its own soft labels
    synset = SyntheticSet(images=real.train.images[idx], labels=soft, num_classes=3, meta={"method": "t", "ipc": 2})
    settings = CardSettings(
        baselines=("random", "el2n"), nets=("mlp",), n_eval=2, eval_epochs=3, real_epochs=1, budget="smoke"
    )
    card = run_card(synset, real, settings, teacher=teacher)
    card |= {"set": {"method": "t", "ipc": 2, "path": "x", "distill_seconds": None}, "dataset": real.describe()}
    card["teacher"] = {"net_name": "mlp", "net_options": {}, "hash": teacher.hash, "parameters": 1, "origin": "test"}
    return real, synset, score_card(card)


def test_every_regime_with_and_without_augmentation(tiny_card):
    _, _, card = tiny_card
    assert card["regimes"] == ["stored", "hard", "soft", "kd"]  # the set's own soft labels come first
    cells = {(c["regime"], c["augment"], c["row"]) for c in card["cells"]}
    assert cells == {(r, a, row) for r in card["regimes"] for a in (True, False) for row in ("set", "random", "el2n")}
    assert all(len(c["accuracy"]["values"]) == 2 for c in card["cells"])
    assert all(c["gain_over_random"]["mean"] == 0 for c in card["cells"] if c["row"] == "random")
    kd = [r for r in card["results"] if r["regime"] == "kd"]
    assert all(r["protocol"]["labels"] == "kd" and r["protocol"]["temperature"] == 1.0 for r in kd)
    set_scores = {s["regime"]: s for s in card["scores"] if s["row"] == "set"}
    assert "lrs" in set_scores["soft"] and "lrs" not in set_scores["hard"] and "ars" in set_scores["hard"]
    assert 0 <= set_scores["kd"]["lrs"]["mean"] <= 1


def test_score_coresets_choose_their_end_on_validation(tiny_card):
    _, _, card = tiny_card
    choice = card["baseline_meta"]["el2n"]["keep_choice"]
    assert choice["selected_on"] == "validation" and set(choice["val_accuracies"]) == {"hardest", "easiest"}
    means = {k: sum(v) / len(v) for k, v in choice["val_accuracies"].items()}
    assert means[choice["keep"]] == max(means.values())
    assert card["baseline_meta"]["random"]["keep_choice"] is None


def test_score_coresets_follow_the_paper_rule_without_a_validation_split():
    from ddapps.bench.card import select_baselines

    real = fake_benchmark()
    settings = CardSettings(baselines=("random", "el2n"), nets=("mlp",), n_eval=2, eval_epochs=1, budget="smoke")
    chosen = select_baselines(dataclasses.replace(real, val=None), 1, settings, "cpu")
    assert chosen["el2n"][0].meta["keep_choice"]["keep"] == "hardest"
    fixed = select_baselines(real, 1, dataclasses.replace(settings, coreset_keep="easiest"), "cpu")
    assert fixed["el2n"][0].meta["keep_choice"] == {"keep": "easiest", "selected_on": "fixed by coreset_keep"}
    with pytest.raises(ConfigError, match="coreset_keep"):
        CardSettings(coreset_keep="middle")


def test_soft_label_bytes_are_counted(tiny_card):
    real, synset, card = tiny_card
    assert baseline_ipc(synset, real) == 2
    by = {(c["regime"], c["row"]): c["stored_bytes"] for c in card["cells"]}
    images = 6 * 64 * 4
    assert by[("hard", "random")] == images + 6 * 8 and by[("kd", "set")] == images + 6 * 8
    assert by[("soft", "random")] == by[("soft", "set")] == images + 6 * 3 * 4
    assert by[("stored", "set")] == images + 6 * 3 * 4 and by[("stored", "random")] == images + 6 * 8


def test_outputs_are_written(tiny_card, tmp_path):
    _, _, card = tiny_card
    write_card(tmp_path, card, "ddapps card x")
    data = json.loads((tmp_path / "card.json").read_text())
    assert data["scores"] and (tmp_path / "card.png").stat().st_size > 1000
    text = (tmp_path / "card.md").read_text()
    assert "Nothing on this card was chosen by test accuracy" in text and "| mlp | el2n |" in text


def test_command_checks_the_teacher_then_writes_the_card(tmp_path, capsys):
    real = fake_benchmark()
    args = ["--dataset", "digits", "--budget", "smoke", "--baselines", "random", "--nets", "mlp", "--quiet"]
    assert main(["distill", "--dataset", "digits", "--method", "random", "--ipc", "1", "--n-eval", "0",
                 "--out", str(tmp_path / "set"), "--quiet"]) == 0  # fmt: skip
    wrong, _ = train_teacher(real, "mlp", {"width": 8}, epochs=1, generator=make_generator(0))
    save_teacher(tmp_path / "wrong.safetensors", wrong)
    capsys.readouterr()
    synset = str(tmp_path / "set" / "synset.safetensors")
    assert main(["card", synset, *args, "--teacher", str(tmp_path / "wrong.safetensors"), "--out", str(tmp_path)]) == 2
    assert "has 3 classes, the data has 10" in capsys.readouterr().err
    assert main(["card", synset, *args, "--regimes", "hard,kd", "--out", str(tmp_path / "card")]) == 0
    assert "kd: gain over random" in capsys.readouterr().out
    assert {"card.md", "card.json", "card.png", "teacher.safetensors"} <= {p.name for p in (tmp_path / "card").iterdir()}


@pytest.mark.parametrize("budget", ["small", "paper", "smoke"])
def test_budgets_hold_teacher_and_card_settings(budget):
    from ddapps.bench.card import settings_from_budget
    from ddapps.budgets import get_budget

    assert {"net", "net_options", "epochs"} <= set(get_budget(budget).section("teacher"))
    assert settings_from_budget(budget).n_eval >= 2


def test_several_sets_share_one_card_and_its_baselines():
    real = fake_benchmark()
    idx = torch.cat([real.train.class_indices(c)[:2] for c in range(3)])
    first = SyntheticSet(images=real.train.images[idx], labels=real.train.labels[idx], num_classes=3)
    second = SyntheticSet(images=real.train.images[idx + 1], labels=real.train.labels[idx + 1], num_classes=3)
    settings = CardSettings(
        regimes=("hard",), baselines=("random",), nets=("mlp",), n_eval=2, eval_epochs=2, budget="smoke"
    )
    card = score_card(run_card({"a": first, "b": second}, real, settings))
    assert card["set_rows"] == ["a", "b"]
    rows = [r["row"] for r in card["results"]]
    assert sorted(set(rows)) == ["a", "b", "random"] and rows.count("random") == rows.count("a") == 2
    assert {s["row"] for s in card["scores"]} == {"a", "b"}
    with pytest.raises(ConfigError, match="same image bytes"):
        run_card({"a": first, "b": SyntheticSet(images=real.train.images[:3], labels=torch.arange(3), num_classes=3)},
                 real, settings)  # fmt: skip
    with pytest.raises(ConfigError, match="baseline's name"):
        run_card({"random": first}, real, settings)


def test_command_takes_several_sets(tmp_path, capsys):
    args = ["--dataset", "digits", "--budget", "smoke", "--baselines", "random", "--nets", "mlp", "--quiet",
            "--regimes", "hard", "--augment", "none"]  # fmt: skip
    for method in ("random", "herding"):
        assert main(["distill", "--dataset", "digits", "--method", method, "--ipc", "1", "--n-eval", "0",
                     "--out", str(tmp_path / method), "--quiet"]) == 0  # fmt: skip
    capsys.readouterr()
    sets = [str(tmp_path / "random"), str(tmp_path / "herding")]
    assert main(["card", *sets, *args, "--baselines", "kcenter,random", "--out", str(tmp_path / "card")]) == 0
    out = capsys.readouterr().out
    data = json.loads((tmp_path / "card" / "card.json").read_text())
    assert data["set_rows"] == ["random-set", "herding"] and set(data["sets"]) == set(data["set_rows"])
    assert "random-set mlp hard: gain over random" in out and "herding mlp hard: gain over random" in out
    assert "* Set `herding`:" in (tmp_path / "card" / "card.md").read_text()
