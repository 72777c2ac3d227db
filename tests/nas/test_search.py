"""NNI wiring: the proxy evaluator inside NasExperiment's sequential engine (no web server)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from ddapps.methods import create_distiller
from ddapps.nas.proxy_data import save_tensors
from ddapps.nas.space import SpaceSpec
from ddapps.utils.seeding import make_generator
from tests.conftest import fake_benchmark

pytest.importorskip("pytorch_lightning")
nni = pytest.importorskip("nni")

from nni.nas.nn.pytorch import LayerChoice, ModelSpace  # noqa: E402

from ddapps.nas.evaluator import make_evaluator, proxy_scores  # noqa: E402
from ddapps.nas.nni_space import make_model_space  # noqa: E402
from ddapps.nas.search import SearchConfig, run_search  # noqa: E402

TINY = SpaceSpec(name="tiny", depth=(1, 2), width=(4, 8), norm=("none", "instance"), act=("relu",), pool=("avg",))


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    bench = fake_benchmark()
    synset = create_distiller("random", {}).distill(bench, 2, generator=make_generator(0))
    syn = synset.save(tmp_path / "synset.safetensors")
    val = save_tensors(tmp_path / "val.safetensors", bench.test.images, bench.test.labels)
    return {"synset_path": str(syn), "val_path": str(val)}


def test_model_space_matches_the_spec() -> None:
    space = make_model_space(SpaceSpec(), 1, 10, (28, 28))
    simplified = space.simplify()
    assert sorted(simplified) == ["act", "depth", "norm", "pool", "width"]
    sizes = [len(m.values) for m in simplified.values()]
    assert torch.tensor(sizes).prod().item() == 720


def test_evaluator_reports_final_result_in_sequential_experiment(files, tmp_path, nni_home) -> None:
    evaluator = make_evaluator(files["synset_path"], files["val_path"], steps=3, batch_size=4)
    space = make_model_space(TINY, 1, 3, (8, 8))
    config = SearchConfig(strategy="grid", max_trials=8, top_k=2)
    result = run_search(space, evaluator, config, tmp_path / "nni")
    assert len(result.trials) == TINY.size == 8
    assert all(t["status"] == "trained" and t["metric"] is not None for t in result.trials)
    assert len({tuple(sorted(t["sample"].items())) for t in result.trials}) == 8  # grid: each arch once
    # The metric NNI recorded is what the evaluator computed and reported (deterministic per arch).
    best = result.top[0]
    frozen = space.freeze(best["sample"])
    direct = proxy_scores(frozen, **{k: v for k, v in evaluator.arguments.items()}).accuracy["synset"]
    assert direct == pytest.approx(best["metric"])
    assert best["metric"] == max(t["metric"] for t in result.trials)
    assert not (Path.home() / "nni-experiments" / result.experiment_id).exists()


def test_regularized_evolution_is_reproducible(files, tmp_path, nni_home) -> None:
    evaluator = make_evaluator(files["synset_path"], files["val_path"], steps=2, batch_size=4)
    config = SearchConfig(
        strategy="regularized-evolution", max_trials=5, population_size=3, sample_size=2, mutation_prob=0.5, seed=1
    )
    runs = [run_search(make_model_space(TINY, 1, 3, (8, 8)), evaluator, config, tmp_path / f"nni{i}") for i in range(2)]
    assert [t["sample"] for t in runs[0].trials] == [t["sample"] for t in runs[1].trials]
    assert [t["metric"] for t in runs[0].trials] == [t["metric"] for t in runs[1].trials]


class KernelSpace(ModelSpace):
    """A user-defined space where a 11x11 kernel does not fit 8x8 images: that choice crashes."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = LayerChoice(
            {"k3": nn.Conv2d(1, 4, 3, padding=1), "k11": nn.Conv2d(1, 4, 11), "k5": nn.Conv2d(1, 4, 5, padding=2)},
            label="kernel",
        )
        self.head = nn.Sequential(nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(x))


def test_crashing_architecture_is_a_failed_trial_and_search_continues(files, tmp_path, nni_home) -> None:
    evaluator = make_evaluator(files["synset_path"], files["val_path"], steps=2, batch_size=4)
    result = run_search(KernelSpace(), evaluator, SearchConfig(strategy="grid", max_trials=3), tmp_path / "nni")
    by_kernel = {t["sample"]["kernel"]: t for t in result.trials}
    assert set(by_kernel) == {"k3", "k11", "k5"}
    assert by_kernel["k11"]["status"] == "failed" and by_kernel["k11"]["metric"] is None
    assert by_kernel["k3"]["status"] == by_kernel["k5"]["status"] == "trained"
    assert result.failed == 1
    assert {t["sample"]["kernel"] for t in result.top} == {"k3", "k5"}


def test_the_remote_engine_is_configured_from_a_machines_file(tmp_path) -> None:
    import json

    from ddapps.errors import ConfigError
    from ddapps.nas.search import experiment_config

    key = tmp_path / "id_test"
    key.write_text("not a real key")
    machines = tmp_path / "machines.json"
    machines.write_text(
        json.dumps([{"host": "10.0.0.5", "user": "me", "ssh_key_file": str(key), "python_path": "/opt/venv/bin"}])
    )
    config = SearchConfig(strategy="random", engine="remote", machines=str(machines), trial_concurrency=4)
    exp = experiment_config(config, tmp_path / "nni")
    assert exp.training_service.platform == "remote" and exp.trial_concurrency == 4
    assert [m.host for m in exp.training_service.machine_list] == ["10.0.0.5"]
    with pytest.raises(ConfigError, match="needs a machines file"):
        SearchConfig(engine="remote")
    machines.write_text('{"host": "x"}')
    with pytest.raises(ConfigError, match="--machines"):
        experiment_config(config, tmp_path / "nni")


def test_training_service_intermediates_come_back_in_the_trials_report_order() -> None:
    """NNI's manager may hand a trial's intermediates back out of order; the sequence number rules."""
    from types import SimpleNamespace

    import nni

    from ddapps.nas.search import _intermediates_in_report_order, sample_key

    class Sampled:
        def __init__(self, sample: dict) -> None:
            self.sample = sample

    def metric(seq: int, value: object, kind: str = "PERIODICAL") -> SimpleNamespace:
        return SimpleNamespace(type=kind, sequence=seq, data=value)

    params = SimpleNamespace(parameters=nni.trace(Sampled)({"op": "conv"}))
    trial = SimpleNamespace(trialJobId="t1", hyperParameters=[params])
    stored = {"t1": [metric(2, 0.47), metric(0, 50.0), metric(0, 50.0, "FINAL"), metric(1, {"default": 33.3})]}
    experiment = SimpleNamespace(get_job_metrics=lambda: stored, list_trial_jobs=lambda: [trial])
    assert _intermediates_in_report_order(experiment) == {sample_key({"op": "conv"}): [50.0, 33.3, 0.47]}
