"""``ddapps card``: the honest evaluation card of one or more synthetic sets.

The card answers the usual critiques of dataset-distillation results (DD-Ranking, Li et al.,
arXiv 2505.13300): it evaluates the set *and* real-image baselines -- random, herding, k-center,
forgetting scores and EL2N, selected at the set's stored image bytes -- under every label regime
(:mod:`ddapps.evaluation.regimes`: hard labels, fixed soft labels, online knowledge distillation;
plus the set's own labels when they are not hard), each with and without DSA augmentation, on one
or more architectures, over ``n_eval`` paired evaluation seeds. Several sets of equal image bytes
(e.g. DM, DSA, SRe2L and RDED at one IPC) share one card: the baselines are selected and evaluated
once, every row under the same seeds. From its own accuracies it computes
the gain over random per regime and DD-Ranking's LRS and ARS (:mod:`ddapps.bench.card_scores`).
Bytes stored and compute spent (distillation, selection, teacher) are reported beside each row.

Nothing is chosen on the test split: evaluation trains every network for a fixed number of epochs
and scores it once on test; the only choice made (the teacher's epoch) uses a validation split
carved from the training data, which the baselines never select from.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from ddapps.budgets import get_budget
from ddapps.data import Benchmark
from ddapps.errors import ConfigError
from ddapps.evaluation import (
    EvalConfig,
    EvalResult,
    LabelRegime,
    evaluate_real,
    evaluate_synset,
    regime_bytes,
    stored_bytes,
)
from ddapps.evaluation.regimes import DEFAULT_TEMPERATURE, LABEL_REGIMES, TEACHER_REGIMES
from ddapps.methods import METHODS, create_distiller
from ddapps.methods.coreset_scores import KEEP
from ddapps.nets import net_options
from ddapps.synthetic import SyntheticSet
from ddapps.teacher import Teacher, check_teacher, epochs_for, load_teacher, train_and_save_teacher
from ddapps.utils.seeding import derive_seed, make_generator
from ddapps.validation import check_choice

BASELINES = ("random", "herding", "kcenter", "forgetting", "el2n")
SET_ROW = "set"
CORESET_KEEP_CHOICES = ("validation", *KEEP)
"""How score-based coresets (forgetting, EL2N) choose which end of their ranking to keep: the papers'
``hardest``, Sorscher et al.'s ``easiest`` for tiny budgets, or ``validation``: both selections are
trained on (hard labels, DSA, the card's epochs and seeds) and scored on the validation split carved
from the training data; the better one becomes the baseline (the paper rule when there is no
validation split)."""


@dataclass(frozen=True)
class CardSettings:
    """What the card evaluates. ``budget`` names the baselines' selection budget and the evaluation
    lengths (its ``card`` section); ``None`` values there mean the protocol's defaults."""

    regimes: tuple[str, ...] = ("hard", "soft", "kd")
    augment: tuple[bool, ...] = (True, False)
    baselines: tuple[str, ...] = BASELINES
    nets: tuple[str, ...] = ("convnet",)
    n_eval: int = 5
    eval_epochs: int | None = 100
    real_epochs: int | None = 2
    real_min_steps: int = 0
    temperature: float = DEFAULT_TEMPERATURE
    budget: str = "small"
    seed: int = 0
    net_options: dict[str, Any] = field(default_factory=dict)
    coreset_keep: str = "validation"

    def __post_init__(self) -> None:
        check_choice("coreset_keep", self.coreset_keep, CORESET_KEEP_CHOICES)
        unknown = sorted(set(self.regimes) - set(LABEL_REGIMES))
        if unknown or not self.regimes:
            raise ConfigError(f"regimes must be a non-empty subset of {', '.join(LABEL_REGIMES)}, got {unknown}")
        if "random" not in self.baselines:
            raise ConfigError("the card measures gains over random: keep 'random' among the baselines")
        for name in self.baselines:
            METHODS.get(name)
        for net in self.nets:
            net_options(net)  # unknown network: ConfigError naming the choices
        if self.n_eval < 2:
            raise ConfigError(f"an interval needs n_eval >= 2 evaluation seeds, got {self.n_eval}")
        if not self.augment:
            raise ConfigError("augment must hold True, False or both")

    @property
    def needs_teacher(self) -> bool:
        return any(r in TEACHER_REGIMES for r in self.regimes)


def baseline_ipc(synset: SyntheticSet, benchmark: Benchmark) -> int:
    """Real images per class holding the set's stored image floats (at least 1)."""
    per_image = benchmark.channels * benchmark.image_size[0] * benchmark.image_size[1]
    stored = sum(t.numel() for t in synset.factors.values()) if synset.images is None else synset.images.numel()
    return max(1, stored // (per_image * benchmark.num_classes))


def select_baselines(
    benchmark: Benchmark, ipc: int, settings: CardSettings, device: torch.device | str
) -> dict[str, tuple[SyntheticSet, float]]:
    """Each baseline's real-image set at ``ipc`` per class, with the seconds its selection took
    (a score-based coreset's choice of ``keep`` included, recorded in its ``meta["keep_choice"]``)."""
    budget = get_budget(settings.budget)
    chosen = {}
    for name in settings.baselines:
        start = time.perf_counter()
        overrides = budget.overrides(name, ipc)
        generator_seed = derive_seed(settings.seed, "card", name)
        if METHODS.get(name).accepts("keep") and "keep" not in overrides:
            synset = _keep_by_validation(name, overrides, benchmark, ipc, settings, generator_seed, device)
        else:
            distiller = create_distiller(name, overrides, device=device)
            synset = distiller.distill(benchmark, ipc, generator=make_generator(generator_seed))
        chosen[name] = (synset, time.perf_counter() - start)
    return chosen


def _keep_by_validation(
    name: str,
    overrides: dict[str, Any],
    benchmark: Benchmark,
    ipc: int,
    settings: CardSettings,
    generator_seed: int,
    device: torch.device | str,
) -> SyntheticSet:
    """The score-based coreset kept per ``settings.coreset_keep`` (see :data:`CORESET_KEEP_CHOICES`)."""
    rule, val = settings.coreset_keep, benchmark.val

    def kept(keep: str) -> SyntheticSet:
        distiller = create_distiller(name, overrides | {"keep": keep}, device=device)
        return distiller.distill(benchmark, ipc, generator=make_generator(generator_seed))

    if rule != "validation" or val is None or len(val) == 0:
        keep = KEEP[0] if rule == "validation" else rule
        synset = kept(keep)
        how = "the paper rule: no validation split" if rule == "validation" else "fixed by coreset_keep"
        synset.meta["keep_choice"] = {"keep": keep, "selected_on": how}
        return synset
    sets = {k: kept(k) for k in KEEP}
    on_val = dataclasses.replace(benchmark, test=val)  # scored on validation, never on test
    config = _eval_config(settings, settings.nets[0], True, settings.eval_epochs)
    seed = derive_seed(settings.seed, "card-keep", name)
    val_acc = {k: evaluate_synset(s, on_val, config, seed=seed, device=device).accuracies for k, s in sets.items()}
    keep = max(KEEP, key=lambda k: (statistics.fmean(val_acc[k]), k == KEEP[0]))
    sets[keep].meta["keep_choice"] = {"keep": keep, "selected_on": "validation", "val_accuracies": val_acc}
    return sets[keep]


def _eval_config(settings: CardSettings, net: str, augment: bool, epochs: int | None) -> EvalConfig:
    accepted = net_options(net)
    options = {k: v for k, v in settings.net_options.items() if k in accepted}
    return EvalConfig(net=net, net_options=options, n_eval=settings.n_eval, epochs=epochs, dsa=augment)


def card_regimes(synsets: SyntheticSet | Sequence[SyntheticSet], settings: CardSettings) -> list[str]:
    """The regimes evaluated: the requested ones, plus ``stored`` when a set's labels are not hard."""
    sets = [synsets] if isinstance(synsets, SyntheticSet) else list(synsets)
    regimes = list(settings.regimes)
    own = any(s.soft_labels or s.eval_protocol.loss != "cross_entropy" for s in sets)
    if own and "stored" not in regimes:
        regimes.insert(0, "stored")
    return regimes


def card_rows(synsets: SyntheticSet | Mapping[str, SyntheticSet], settings: CardSettings) -> dict[str, SyntheticSet]:
    """The set rows by name: one set is the row ``set``; named sets must not take a baseline's name."""
    named = {SET_ROW: synsets} if isinstance(synsets, SyntheticSet) else dict(synsets)
    if not named:
        raise ConfigError("the card needs at least one synthetic set")
    clash = sorted(set(named) & set(settings.baselines))
    if clash:
        raise ConfigError(f"set rows {clash} share a baseline's name; name them differently")
    return named


def shared_baseline_ipc(named: Mapping[str, SyntheticSet], benchmark: Benchmark) -> int:
    """The baselines' images per class, equal for every set on one card (equal stored image bytes)."""
    ipcs = {name: baseline_ipc(s, benchmark) for name, s in named.items()}
    if len(set(ipcs.values())) > 1:
        raise ConfigError(f"sets on one card must store the same image bytes; real images per class: {ipcs}")
    return next(iter(ipcs.values()))


def run_card(
    synsets: SyntheticSet | Mapping[str, SyntheticSet],
    benchmark: Benchmark,
    settings: CardSettings,
    *,
    teacher: Teacher | None = None,
    device: torch.device | str = "cpu",
    log: Any = None,
) -> dict[str, Any]:
    """Evaluate the sets (one set, or several by row name) and the baselines selected once at their
    stored image bytes; return the card's data (see :mod:`ddapps.bench.card_report`)."""
    if settings.needs_teacher and teacher is None:
        raise ConfigError(f"regimes {', '.join(TEACHER_REGIMES)} need a teacher")
    named = card_rows(synsets, settings)
    ipc = shared_baseline_ipc(named, benchmark)
    baselines = select_baselines(benchmark, ipc, settings, device)
    rows: dict[str, SyntheticSet] = named | {k: v[0] for k, v in baselines.items()}
    regimes = card_regimes(list(named.values()), settings)
    real_epochs = settings.real_epochs
    if real_epochs is not None:
        real_epochs = epochs_for(real_epochs, settings.real_min_steps, len(benchmark.train))
    results: list[dict[str, Any]] = []
    real: dict[str, EvalResult] = {}
    for net in settings.nets:
        if "hard" in regimes and len(regimes) > 1:  # DD-Ranking's HLR needs the full real data's accuracy
            config = _eval_config(settings, net, False, real_epochs)
            real[net] = evaluate_real(benchmark, None, config, seed=settings.seed, device=device)
        for regime_name in regimes:
            regime = LabelRegime(
                regime_name,
                teacher=teacher if regime_name in TEACHER_REGIMES else None,
                temperature=settings.temperature,
            )
            for augment in settings.augment:
                config = _eval_config(settings, net, augment, settings.eval_epochs)
                for row, row_set in rows.items():
                    result = evaluate_synset(
                        row_set, benchmark, config, seed=settings.seed, device=device, regime=regime
                    )
                    if log is not None:
                        log(f"card: {net} {regime_name} {'dsa' if augment else 'no-aug'} {row}: {result.mean:.2f}%")
                    results.append(
                        {
                            "net": net,
                            "regime": regime_name,
                            "augment": augment,
                            "row": row,
                            "accuracies": result.accuracies,
                            "eval_seconds": result.seconds,
                            "stored_bytes": regime_bytes(row_set, regime_name),
                            "protocol": result.protocol,
                        }
                    )
    teacher_floats = sum(p.numel() for p in teacher.net.parameters()) if teacher is not None else 0
    return {
        "set_rows": list(named),
        "baseline_ipc": ipc,
        "regimes": regimes,
        "results": results,
        "real_hard": {net: {"accuracies": r.accuracies, "protocol": r.protocol} for net, r in real.items()},
        "real_epochs": real_epochs,
        "selection_seconds": {name: seconds for name, (_, seconds) in baselines.items()},
        "baseline_meta": {
            name: {
                "method": s.meta.get("method"),
                "config": s.meta.get("config"),
                "keep_choice": s.meta.get("keep_choice"),
            }
            for name, (s, _) in baselines.items()
        },
        "teacher_floats": teacher_floats,
        "settings": asdict(settings),
    }


def settings_from_budget(budget: str, **changes: Any) -> CardSettings:
    """Card settings from a budget's ``card`` section and evaluation net options, then ``changes``."""
    source = get_budget(budget)
    section = source.section("card")
    if not section:
        raise ConfigError(f"budget {budget!r} has no card settings; use small, paper or smoke")
    values: dict[str, Any] = {
        "budget": budget,
        "net_options": source.eval_config().net_options,
        **{k: section[k] for k in ("n_eval", "eval_epochs", "real_epochs", "real_min_steps") if k in section},
    }
    values.update({k: v for k, v in changes.items() if v is not None})
    return CardSettings(**values)


def row_sets(card: dict[str, Any]) -> Sequence[str]:
    """The card's rows in order: the sets, then the baselines."""
    return list(dict.fromkeys(r["row"] for r in card["results"]))


def card_teacher(
    path: Path | None,
    benchmark: Benchmark,
    synsets: Sequence[SyntheticSet],
    budget: str,
    train_to: Path,
    *,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> tuple[Teacher, dict[str, Any]]:
    """The card's teacher and where it came from: loaded from ``path`` and checked against every set
    (class map, dataset, the hash a set records), or -- when no set records a teacher -- trained with
    the budget's ``teacher`` settings and saved to ``train_to``."""
    if path is not None:
        teacher = load_teacher(path, expect_classes=list(benchmark.class_names))
        if teacher.dataset != benchmark.name:
            raise ConfigError(f"teacher {path} was trained on {teacher.dataset}, not {benchmark.name}")
        for synset in synsets:
            check_teacher(synset, teacher, required=False)
        return teacher, {"origin": f"loaded from {path}"}
    for synset in synsets:
        if synset.meta.get("teacher_hash"):
            raise ConfigError(f"a set was made with teacher {synset.meta['teacher_hash'][:12]}: pass it with --teacher")
    section = get_budget(budget).section("teacher")
    epochs = epochs_for(section["epochs"], section.get("min_steps", 0), len(benchmark.train))
    teacher, report = train_and_save_teacher(
        benchmark, train_to, section["net"], section["net_options"],
        epochs=epochs, seed=seed, device=device, lr=section.get("lr", 0.01),
    )  # fmt: skip
    origin = (
        f"trained here for {report['epochs']} epochs (epoch {report['best_epoch']} kept by validation accuracy "
        f"{report['val_accuracy']:.2f}%) in {report['seconds']:.0f} s, saved to {train_to.name}"
    )
    return teacher, {"origin": origin, "train_seconds": report["seconds"], "val_accuracy": report["val_accuracy"]}


def teacher_info(teacher: Teacher | None, origin: dict[str, Any]) -> dict[str, Any] | None:
    """The card's ``teacher`` entry: net, options, hash, parameter count and origin."""
    if teacher is None:
        return None
    parameters = sum(p.numel() for p in teacher.net.parameters())
    info = {"net_name": teacher.net_name, "net_options": teacher.net_options, "hash": teacher.hash}
    return info | {"parameters": parameters, **origin}


def set_info(path: Path, synset: SyntheticSet, distill_seconds: float | None = None) -> dict[str, Any]:
    """Provenance of a set row; its distillation seconds as given, else from a ``results.json``
    beside it (written by ``ddapps distill``), else ``None``."""
    if distill_seconds is None:
        results = (path if path.is_dir() else path.parent) / "results.json"
        try:
            rows = json.loads(results.read_text()).get("rows", [])
            seconds = rows[0].get("distill_seconds") if rows and isinstance(rows[0], dict) else None
            distill_seconds = float(seconds) if isinstance(seconds, (int, float)) else None
        except (OSError, ValueError, AttributeError):
            pass
    return {
        "path": str(path),
        "method": synset.meta.get("method"),
        "ipc": synset.ipc,
        "stored_bytes": stored_bytes(synset),
        "stored_floats": synset.stored_floats(),
        "teacher_hash": synset.meta.get("teacher_hash"),
        "distill_seconds": distill_seconds,
    }
