"""One scorer: a search trial, an NNI study trial and the in-process study give an architecture the same score."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ddapps.errors import DataError
from ddapps.methods import create_distiller
from ddapps.nas.nb201 import NB201Net, parse_arch
from ddapps.nas.proxy_data import save_tensors
from ddapps.nas.scoring import DataProxy, load_data_proxy, save_data_proxy, score_architecture
from ddapps.nas.study_engine import InProcessScorer
from ddapps.nas.training import StepBudget
from ddapps.utils.seeding import make_generator
from tests.conftest import fake_benchmark

pytest.importorskip("pytorch_lightning")
pytest.importorskip("nni")

from ddapps.nas.evaluator import make_evaluator  # noqa: E402
from ddapps.nas.nb201_space import NB201Space, ops_to_sample, sample_to_ops  # noqa: E402
from ddapps.nas.search import SearchConfig, run_search  # noqa: E402
from ddapps.nas.study_engine import NNIScorer  # noqa: E402

ARCHS = [
    parse_arch("|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|"),
    parse_arch("|nor_conv_1x1~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"),
]
BUDGET = StepBudget(steps=6, batch_size=4)


@pytest.fixture
def study(tmp_path: Path) -> dict:
    bench = fake_benchmark(num_classes=3, per_class=10, channels=3, size=8)
    synset = create_distiller("random", {}).distill(bench, 2, generator=make_generator(1))
    path = synset.save(tmp_path / "synset.safetensors")
    images, labels = synset.training_data()
    data = {
        "distilled:random": DataProxy(images.detach(), labels.detach()),
        "random-subset": DataProxy(bench.train.images[::5], bench.train.labels[::5], lr=0.05),
    }
    val = (bench.test.images, bench.test.labels)
    val_path = save_tensors(tmp_path / "val.safetensors", *val)
    return {"bench": bench, "data": data, "val": val, "synset_path": str(path), "val_path": str(val_path)}


def _build(arch: tuple[str, ...]) -> NB201Net:
    return NB201Net(arch, 3, 3, channels=2, cells_per_stage=1)


def test_a_search_trial_scores_an_architecture_as_the_study_does(study, tmp_path, nni_home) -> None:
    evaluator = make_evaluator({"distilled:random": study["synset_path"]}, study["val_path"], steps=BUDGET.steps,
                               batch_size=BUDGET.batch_size, seed=5)  # fmt: skip
    space = NB201Space(3, 3, channels=2, cells_per_stage=1)
    result = run_search(space, evaluator, SearchConfig(strategy="random", max_trials=3, seed=2), tmp_path / "nni")
    assert len(result.trials) == 3 and all(t["status"] == "trained" for t in result.trials)
    for trial in result.trials:
        arch = sample_to_ops(trial["sample"])
        mine = score_architecture(_build(arch), {"distilled:random": study["data"]["distilled:random"]}, BUDGET,
                                  seed=5, val=study["val"])  # fmt: skip
        assert trial["metric"] == mine.accuracy["distilled:random"]  # bitwise: one scorer
    other_seed = score_architecture(_build(arch), study["data"], BUDGET, seed=6, val=study["val"])
    assert other_seed.accuracy != mine.accuracy or other_seed.seconds != mine.seconds


def _in_process(study: dict, archs: list, seed: int) -> list:
    firsts: list[float] = []
    scores = InProcessScorer(_build, BUDGET, ceiling=True)(seed, archs, study["data"], study["val"], firsts.append)
    assert len(firsts) == 1 and firsts[0] > 0
    return scores


def test_the_study_scores_alike_in_process_and_on_nni_sequential_engine(study, tmp_path, nni_home) -> None:
    space = NB201Space(3, 3, channels=2, cells_per_stage=1)
    scorer = NNIScorer(space, BUDGET, tmp_path / "nni", ceiling=True, to_sample=ops_to_sample)
    firsts: list[float] = []
    on_nni = scorer(3, ARCHS, study["data"], study["val"], firsts.append)
    here = _in_process(study, ARCHS, 3)
    assert len(firsts) == 1
    for a, b in zip(on_nni, here):
        assert a.accuracy == b.accuracy and a.ceiling == b.ceiling
        assert set(a.seconds) == set(study["data"])
    assert on_nni[0].accuracy != on_nni[0].ceiling or on_nni[1].accuracy != on_nni[1].ceiling  # two inits differ


@pytest.mark.slow
def test_the_study_runs_on_nni_local_training_service_with_parallel_trials(study, tmp_path, nni_home) -> None:
    space = NB201Space(3, 3, channels=2, cells_per_stage=1)
    scorer = NNIScorer(space, BUDGET, tmp_path / "nni", ceiling=True, to_sample=ops_to_sample, engine="local",
                       concurrency=2, port=8791)  # fmt: skip
    on_nni = scorer(3, ARCHS, study["data"], study["val"], lambda s: None)
    here = _in_process(study, ARCHS, 3)
    assert [s.accuracy for s in on_nni] == [s.accuracy for s in here]
    assert [s.ceiling for s in on_nni] == [s.ceiling for s in here]


def test_proxy_files_round_trip_soft_labels_and_lr_and_refuse_garbage(tmp_path) -> None:
    soft = torch.softmax(torch.randn(4, 3, generator=make_generator(0)), 1)
    data = DataProxy(torch.rand(4, 3, 8, 8), soft, lr=0.03, loss="mse", setup_seconds=2.5)
    back = load_data_proxy(save_data_proxy(tmp_path / "p.safetensors", data))
    assert torch.equal(back.images, data.images) and torch.equal(back.labels, soft)
    assert (back.lr, back.loss, back.setup_seconds) == (0.03, "mse", 2.5)
    (tmp_path / "bad.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(DataError, match="not a valid proxy data file"):
        load_data_proxy(tmp_path / "bad.safetensors")
    with pytest.raises(DataError, match="not found"):
        load_data_proxy(tmp_path / "missing.safetensors")
