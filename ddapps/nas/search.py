"""Architecture search with NNI 3.0 strategies through ``NasExperiment``.

Strategies: ``random`` (uniform sampling without duplicates), ``regularized-evolution`` (aging
evolution, Real et al., AAAI 2019: tournament of ``sample_size`` from a population of
``population_size``, mutation of each axis with ``mutation_prob``; defaults are NNI's), ``grid``
(every architecture, shuffled) and ``tpe`` (NNI's Tree-structured Parzen Estimator tuner as a NAS
strategy, Bergstra et al., NeurIPS 2011; maximizing the proxy accuracy). By default the experiment runs on NNI's *sequential* engine: trials
run one after another in this process, no NNI manager or web server is started, and a trial that
raises is recorded as failed while the search goes on (``continue_on_failure``). ``engine="local"``
uses NNI's local training service instead (trials as subprocesses, ``trial_concurrency`` in
parallel, the web UI on ``port``, which NNI binds on all interfaces). ``engine="remote"`` runs the
trials on the SSH machines listed in the JSON file ``machines`` (NNI's ``RemoteMachineConfig``
fields: ``host``, ``user``, ``ssh_key_file`` or ``password``, ``python_path``, ...); the evaluator's
data files must exist at the same paths there (a shared filesystem).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from ddapps.errors import ConfigError

STRATEGIES = ("random", "regularized-evolution", "grid", "tpe")
ENGINES = ("sequential", "local", "remote")


@dataclass(frozen=True)
class SearchConfig:
    """How to search: strategy, trial budget, engine and where NNI keeps its files."""

    strategy: str = "regularized-evolution"
    max_trials: int = 20
    engine: str = "sequential"
    population_size: int = 100
    sample_size: int = 25
    mutation_prob: float = 0.05
    top_k: int = 3
    seed: int = 0
    trial_concurrency: int = 1
    port: int = 8080
    machines: str | None = None
    """JSON file of the remote engine's machines (a list of NNI ``RemoteMachineConfig`` dicts)."""

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"unknown strategy {self.strategy!r}; choose one of: {', '.join(STRATEGIES)}")
        if self.engine not in ENGINES:
            raise ConfigError(f"unknown engine {self.engine!r}; choose one of: {', '.join(ENGINES)}")
        if self.max_trials < 1 or self.top_k < 1 or self.trial_concurrency < 1:
            raise ConfigError("max_trials, top_k and trial_concurrency must be >= 1")
        if not 1 <= self.sample_size <= self.population_size:
            raise ConfigError("sample_size must be between 1 and population_size")
        if not 0.0 <= self.mutation_prob <= 1.0:
            raise ConfigError(f"mutation_prob must be in [0, 1], got {self.mutation_prob}")
        if (self.engine == "remote") != (self.machines is not None):
            raise ConfigError("the remote engine needs a machines file (--machines), and only it takes one")
        if self.engine == "sequential" and self.trial_concurrency != 1:
            raise ConfigError("the sequential engine runs one trial at a time (trial_concurrency 1)")


@dataclass
class SearchResult:
    """Every trial (sample, status, metric) in submission order and the exported top-k samples."""

    trials: list[dict[str, Any]]
    top: list[dict[str, Any]]
    seconds: float
    experiment_id: str
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        return sum(t["status"] == "failed" for t in self.trials)


def make_strategy(config: SearchConfig) -> Any:
    """The NNI strategy object named by ``config.strategy``, seeded by ``config.seed``."""
    from nni.nas import strategy as nni_strategy

    seed = config.seed & 0xFFFFFFFF  # numpy RandomState seeds are 32-bit
    factories: dict[str, Callable[[], Any]] = {
        "random": lambda: nni_strategy.Random(dedup=True, seed=seed),
        "grid": lambda: nni_strategy.GridSearch(shuffle=True, seed=seed),
        "tpe": lambda: nni_strategy.TPE(optimize_mode="maximize", seed=seed),
        "regularized-evolution": lambda: nni_strategy.RegularizedEvolution(
            population_size=config.population_size, sample_size=config.sample_size,
            mutation_prob=config.mutation_prob, dedup=True, seed=seed,
        ),
    }  # fmt: skip
    return factories[config.strategy]()


def experiment_config(config: SearchConfig, workdir: str | Path, name: str | None = None) -> Any:
    """The ``NasExperimentConfig``: sequential in-process engine, or the local training service."""
    from nni.nas.experiment import NasExperimentConfig

    if config.engine == "sequential":
        exp_config = NasExperimentConfig("sequential", "simplified")
        exp_config.execution_engine.continue_on_failure = True
    else:
        exp_config = NasExperimentConfig("ts", "simplified", config.engine)
        exp_config.trial_concurrency = config.trial_concurrency
        if config.engine == "remote":
            exp_config.training_service.machine_list = remote_machines(config.machines)
    exp_config.max_trial_number = config.max_trials
    exp_config.experiment_working_directory = str(Path(workdir).resolve())
    exp_config.experiment_name = name or f"ddapps-nas-{config.strategy}"
    return exp_config


START_ATTEMPTS = 3
"""Times a local-engine experiment is started before its error is raised (NNI's web server can miss
its three one-second start-up checks on a loaded machine, and then the experiment fails to start)."""


def remote_machines(path: str | None) -> list[Any]:
    """NNI ``RemoteMachineConfig`` objects from a JSON list of machine dicts; ConfigError when malformed."""
    import json

    from nni.experiment.config.training_services.remote import RemoteMachineConfig

    try:
        machines = json.loads(Path(str(path)).read_text())
        if not isinstance(machines, list) or not machines or not all(isinstance(m, dict) for m in machines):
            raise ValueError("expected a non-empty JSON list of machine objects")
        return [RemoteMachineConfig(**m) for m in machines]
    except (OSError, ValueError, TypeError) as err:
        raise ConfigError(f"--machines {path}: {err}") from None


def run_experiment(
    model_space: Any,
    evaluator: Any,
    strategy: Callable[[], Any],
    config: SearchConfig,
    workdir: str | Path,
    name: str | None = None,
) -> SearchResult:
    """Run one ``NasExperiment`` with a fresh ``strategy()`` on ``config``'s engine; collect every trial.

    Each trial row holds the sample, NNI's status, the final metric and the intermediate results.
    On the local engine an experiment whose web server fails to answer (a ``requests`` error before
    any trial ran) is started again, up to :data:`START_ATTEMPTS` times.
    """
    import requests
    from nni.nas.experiment import NasExperiment

    for attempt in range(1, START_ATTEMPTS + 1):
        experiment = NasExperiment(model_space, evaluator, strategy(), experiment_config(config, workdir, name))
        start = time.perf_counter()
        try:
            experiment.run(port=config.port)
            seconds = time.perf_counter() - start
            models = list(experiment.strategy.list_models(sort=False))
            ordered = {} if config.engine == "sequential" else _intermediates_in_report_order(experiment)
            trials = [
                {"trial": i, "sample": dict(m.sample or {}), "status": _status(m), "metric": m.metric,
                 "intermediates": ordered.get(sample_key(m.sample or {}),
                                              [float(v) for v in m.metrics.intermediates])}
                for i, m in enumerate(models)
            ]  # fmt: skip
            top = [{"sample": dict(m.sample), "metric": m.metric} for m in experiment.export_top_models(config.top_k)]
            return SearchResult(trials, top, seconds, experiment.id, asdict(config))
        except requests.RequestException:
            if config.engine == "sequential" or attempt == START_ATTEMPTS:
                raise
        finally:
            experiment.stop()
    raise AssertionError("unreachable")


def sample_key(sample: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """A hashable, order-free key of an NNI architecture sample."""
    return tuple(sorted((str(k), str(v)) for k, v in sample.items()))


def _intermediates_in_report_order(experiment: Any) -> dict[tuple[tuple[str, str], ...], list[float]]:
    """Each trial's intermediate results in the order the trial reported them, keyed by its sample.

    Under a training service NNI's engine hands intermediates back in the order its manager stored or
    received them, which is not always the order a trial reported them (seen on a loaded machine:
    two values of one trial swapped). The manager's records carry the trial's own sequence number;
    this sorts by it.
    """
    import nni

    metrics = experiment.get_job_metrics()
    ordered = {}
    for trial in experiment.list_trial_jobs():
        if len(trial.hyperParameters or []) != 1:
            continue
        model = nni.load(nni.dump(trial.hyperParameters[0].parameters))
        rows = [m for m in metrics.get(trial.trialJobId, []) if m.type == "PERIODICAL"]
        values = [
            m.data["default"] if isinstance(m.data, dict) else m.data for m in sorted(rows, key=lambda m: m.sequence)
        ]
        ordered[sample_key(dict(getattr(model, "sample", None) or {}))] = [float(v) for v in values]
    return ordered


def run_search(model_space: Any, evaluator: Any, config: SearchConfig, workdir: str | Path) -> SearchResult:
    """Run one NAS experiment over ``model_space`` (any NNI ``ModelSpace``) and collect its trials.

    ``evaluator`` is an NNI evaluator (e.g. :func:`ddapps.nas.evaluator.make_evaluator`); NNI's
    checkpoints and logs go under ``workdir``.
    """
    return run_experiment(model_space, evaluator, lambda: make_strategy(config), config, workdir)


def _status(model: Any) -> str:
    status = model.status
    return str(getattr(status, "value", status))
