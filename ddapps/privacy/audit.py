"""Membership-inference audit of models trained on real, distilled, DP-distilled and DP-SGD data.

Following Carlini et al. ("No Free Lunch in 'Privacy for Free'", 2022), a claim that distilled data
protects membership must be measured, not asserted. The audit draws a *pool* of training images;
half are the *members* (half of the canaries and half of the other records). A target model is
built from the members by one pipeline:

* ``real``: trained on the members themselves (a real subset);
* ``random``: trained on ``ipc`` random member images per class;
* ``dm-real`` / ``dm-noise``: trained on a DM set distilled from the members, real / noise init;
* ``dp-dm``: trained on a DP-DM set at each epsilon of ``epsilons`` (noise init);
* ``dp-sgd``: the same architecture trained directly on the members with DP-SGD (Opacus, see
  :mod:`ddapps.privacy.dpsgd`) at each epsilon -- the baseline Carlini et al. found distillation
  does not beat;
* ``dp-dc``: trained on a DP gradient-matching (PSG) set at each epsilon (opt-in: per-example
  gradients are costly on CPU; two outer steps of one inner epoch per iteration, DC's ``lr_img``).

For the DP targets ``inf`` means clipping without noise (no guarantee). Their noise comes from
the operating system's secret source unless ``dp_deterministic_noise`` (then reproducible and
*not private*: rows say ``private: False``).

*Canaries* (worst-case records, as in the auditing work of Jagielski et al. 2020 and Nasr et al.
2021): ``canaries`` pool records get a wrong label, drawn with a generator; mislabelled records
are the ones a model must memorise, so the attacks are also scored on the canaries alone
(``subset: "canary"``, member canaries vs non-member canaries) next to the whole pool
(``subset: "all"``).

Attacks on each target score every pool record: the loss threshold, and LiRA (Carlini et al., S&P
2022) with ``shadows`` shadow models, each running the same pipeline on its half of the pool;
membership is balanced (every record is IN for exactly half the shadows). Each row reports AUC and
TPR at 0.1%/1% FPR with bootstrap intervals and an empirical lower bound on epsilon
(:func:`ddapps.privacy.mia.epsilon_lower_bound`); DP rows with a finite epsilon say whether that
bound respects the accounted epsilon (``within_bound``).

The defaults are a CPU budget (``ddapps privacy audit --dataset digits`` in a few minutes on two
cores): 8 shadows, 100 distillation iterations at ``lr_img`` 100 (the DM paper's 1.0 needs its
20,000 iterations), 300 training epochs. Heavier "paper" settings: ``shadows`` 64, ``iterations``
1000+, several seeds. Every run draws its public randomness from generators derived from one seed;
nothing uses the global RNG.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from ddapps.data import Benchmark
from ddapps.data.split import Split
from ddapps.errors import ConfigError
from ddapps.evaluation import TrainSettings, test_accuracy, train_classifier
from ddapps.methods import METHODS, create_distiller
from ddapps.nets import create_net, fitting_depth
from ddapps.privacy import mia
from ddapps.privacy.dpsgd import DPSGDConfig, train_dpsgd
from ddapps.synthetic import SyntheticSet
from ddapps.utils.seeding import derive_seed, make_generator

TARGETS = ("real", "random", "dm-real", "dm-noise", "dp-dm", "dp-sgd", "dp-dc")
DEFAULT_TARGETS = ("real", "random", "dm-real", "dm-noise", "dp-dm", "dp-sgd")
DP_TARGETS = ("dp-dm", "dp-sgd", "dp-dc")
DISTILLED = ("random", "dm-real", "dm-noise", "dp-dm", "dp-dc")
SUMMARY_METRICS = ("auc", "tpr_at_0.1fpr", "tpr_at_1fpr", "eps_lb", "test_acc")
CANARY_FRACTION = 0.02


@dataclass(frozen=True)
class AuditConfig:
    """What to audit and with which (explicit, small) budget; see the module doc for the defaults."""

    targets: tuple[str, ...] = DEFAULT_TARGETS
    epsilons: tuple[float, ...] = (1.0, 10.0, math.inf)
    dp_delta: float = 1e-5
    clip_norm: float = 1.0
    dp_deterministic_noise: bool = False
    pool_size: int = 1000
    ipc: int = 10
    shadows: int = 8
    canaries: int | None = None
    iterations: int = 100
    batch_real: int = 64
    lr_img: float | None = 100.0
    distill_net: str = "convnet"
    distill_net_options: dict[str, Any] = field(default_factory=lambda: {"width": 32})
    net: str = "mlp"
    net_options: dict[str, Any] = field(default_factory=lambda: {"width": 128})
    epochs: int = 300
    lr: float = 0.01
    batch_size: int = 256
    dpsgd_batch_size: int = 64
    dpsgd_epochs: int = 20
    dpsgd_lr: float = 0.5
    n_boot: int = 200

    def __post_init__(self) -> None:
        unknown = sorted(set(self.targets) - set(TARGETS))
        if unknown or not self.targets:
            raise ConfigError(f"unknown target(s) {', '.join(unknown) or '(none)'}; choose from: {', '.join(TARGETS)}")
        if any(not (e > 0) for e in self.epsilons) or not self.epsilons:
            raise ConfigError("epsilons must be > 0 (inf for no noise)")
        if self.pool_size < 8 or self.ipc < 1 or self.epochs < 1 or self.n_boot < 0:
            raise ConfigError("need pool_size >= 8, ipc >= 1, epochs >= 1 and n_boot >= 0")
        if self.shadows < 0 or self.shadows % 2:
            raise ConfigError(
                f"shadows must be 0 or an even number (each record IN for exactly half), got {self.shadows}"
            )
        if self.canaries is not None and (self.canaries < 0 or 0 < self.canaries < 4):
            raise ConfigError(
                f"canaries must be 0 or >= 4 (two member and two non-member canaries), got {self.canaries}"
            )
        if self.n_canaries > self.pool_size - 4:
            raise ConfigError(
                f"{self.n_canaries} canaries leave too few ordinary records in a pool of {self.pool_size}"
            )
        DPSGDConfig(dp_delta=self.dp_delta, clip_norm=self.clip_norm, batch_size=self.dpsgd_batch_size,
                    epochs=self.dpsgd_epochs, lr=self.dpsgd_lr)  # fmt: skip

    @property
    def n_canaries(self) -> int:
        """``canaries``, or by default 2% of the pool (0 when that is fewer than 4)."""
        if self.canaries is not None:
            return self.canaries
        k = round(CANARY_FRACTION * self.pool_size)
        return k if k >= 4 else 0


TARGET_METHODS = {"random": "random", "dm-real": "dm", "dm-noise": "dm"}
"""The registered method behind each distilled target kind that is not itself a method name."""
AUDIT_METHOD_OVERRIDES: dict[str, dict[str, Any]] = {"dp-dc": {"lr_img": None, "outer_loop": 2, "inner_loop": 1}}
"""Per-method settings of the audit's distilled targets on top of the shared ones."""


@dataclass(frozen=True)
class Target:
    """One target pipeline: a kind and, for the DP kinds, its epsilon."""

    kind: str
    epsilon: float | None = None

    @property
    def init(self) -> str:
        return {"real": "-", "dp-sgd": "-", "random": "real", "dm-real": "real"}.get(self.kind, "noise")

    @property
    def label(self) -> str:
        return self.kind if self.epsilon is None else f"{self.kind}(eps={self.epsilon:g})"


@dataclass
class AuditSplit:
    """The pool of one seed: which records, their (canary) labels, members, canaries, shadow halves."""

    pool: Tensor
    labels: Tensor
    is_member: Tensor
    is_canary: Tensor
    shadow_in: Tensor


@dataclass
class Built:
    """A trained model, its synthetic set (distilled targets) and its privacy record (DP targets)."""

    net: torch.nn.Module
    synset: SyntheticSet | None = None
    privacy: dict[str, Any] | None = None


def audit_targets(config: AuditConfig) -> list[Target]:
    """The targets of ``config`` in order (the DP kinds once per epsilon)."""
    out: list[Target] = []
    for kind in config.targets:
        out += [Target(kind, float(e)) for e in config.epsilons] if kind in DP_TARGETS else [Target(kind)]
    return out


def workload(config: AuditConfig, seeds: int = 1) -> dict[str, int]:
    """How many models the audit trains: ``trainings`` (targets and shadows), ``distillations``, ``dpsgd``."""
    targets = audit_targets(config)
    per = seeds * (1 + config.shadows)
    return {
        "trainings": per * len(targets),
        "distillations": per * sum(t.kind in DISTILLED for t in targets),
        "dpsgd": per * sum(t.kind == "dp-sgd" for t in targets),
    }


# --- the pool, canaries, members and shadow halves -------------------------------------------


def draw_split(real: Benchmark, config: AuditConfig, seed: int) -> AuditSplit:
    """Draw the pool, its canaries (wrong labels), the members and the shadows' halves for ``seed``.

    The pool is the first ``pool_size`` entries of a permutation of the training split; members
    are half of the canaries and half of the other records; shadow masks are balanced.
    """
    n = config.pool_size
    pool = torch.randperm(len(real.train), generator=make_generator(derive_seed(seed, "pool")))[:n]
    labels = real.train.labels[pool].clone()
    k = min(config.n_canaries, n)
    gen = make_generator(derive_seed(seed, "canaries"))
    is_canary = torch.zeros(n, dtype=torch.bool)
    canary = torch.randperm(n, generator=gen)[:k]
    is_canary[canary] = True
    shift = (
        torch.randint(1, real.num_classes, (k,), generator=gen)
        if real.num_classes > 1
        else torch.zeros(k, dtype=torch.long)
    )
    labels[canary] = (labels[canary] + shift) % real.num_classes
    is_member = torch.zeros(n, dtype=torch.bool)
    gen = make_generator(derive_seed(seed, "members"))
    for group in (is_canary.nonzero().flatten(), (~is_canary).nonzero().flatten()):
        is_member[group[torch.randperm(len(group), generator=gen)[: len(group) // 2]]] = True
    shadow_in = (
        mia.balanced_shadow_masks(config.shadows, n, make_generator(derive_seed(seed, "shadows")))
        if config.shadows else torch.zeros(0, n, dtype=torch.bool)
    )  # fmt: skip
    return AuditSplit(pool, labels, is_member, is_canary, shadow_in)


def training_data(real: Benchmark, split: AuditSplit, mask: Tensor) -> Benchmark:
    """``real`` whose training split is the pool records of ``mask`` (with their canary labels)."""
    train = Split(real.train.images[split.pool[mask]], split.labels[mask], real.num_classes)
    return dataclasses.replace(real, train=train)


def size_problem(real: Benchmark, config: AuditConfig, seeds: Sequence[int]) -> str | None:
    """Why ``config``'s pool does not fit for ``seeds`` (``None`` if it does); draws, no training.

    Distilled targets need ``2 * ipc`` member images of every class (the class is then half in
    and half out of the set) and every shadow at least ``ipc`` of its half.
    """
    if not any(t.kind in DISTILLED for t in audit_targets(config)):
        return None
    need = 2 * config.ipc
    for seed in seeds:
        split = draw_split(real, config, seed)
        smallest = _smallest_class(split.labels[split.is_member], real.num_classes)
        if smallest < need:
            return (f"need at least 2*ipc={need} member images per class; the smallest class of the members "
                    f"has {smallest} (seed {seed})")  # fmt: skip
        for s in range(config.shadows):
            smallest = _smallest_class(split.labels[split.shadow_in[s]], real.num_classes)
            if smallest < config.ipc:
                return f"need at least ipc={config.ipc} images per class in every shadow; shadow {s} has {smallest} (seed {seed})"
    return None


def check_sizes(real: Benchmark, config: AuditConfig, seeds: Sequence[int]) -> None:
    """:class:`ConfigError` (before any training) if the pool does not fit, saying what would."""
    n_train = len(real.train)
    if config.pool_size > n_train:
        raise ConfigError(
            f"pool_size {config.pool_size} exceeds the {n_train} training images of {real.name}; use --pool-size <= {n_train}"
        )
    problem = size_problem(real, config, seeds)
    if problem is None:
        return
    fits = next((p for p in range(config.pool_size + 1, n_train + 1) if _fits(real, config, seeds, p)), None)
    hint = (f"use --pool-size >= {fits} (the smallest that fits these seeds) or a smaller --ipc" if fits
            else f"no pool of the {n_train} training images of {real.name} fits; use a smaller --ipc")  # fmt: skip
    raise ConfigError(f"{problem}; {hint}")


def _fits(real: Benchmark, config: AuditConfig, seeds: Sequence[int], pool_size: int) -> bool:
    """Whether ``config`` with ``pool_size`` (and its default canaries, if so) fits; invalid configs do not."""
    try:
        return size_problem(real, dataclasses.replace(config, pool_size=pool_size), seeds) is None
    except ConfigError:
        return False


def check_public_data(real: Benchmark, config: AuditConfig) -> None:
    """:class:`ConfigError` if a DP target with noise would see statistics fitted on the private data."""
    noisy = any(t.kind in DP_TARGETS and math.isfinite(t.epsilon or math.inf) for t in audit_targets(config))
    if noisy and (real.zca is not None or real.stats_source == "data"):
        raise ConfigError(
            f"the DP targets need {real.name!r} normalised with public constants and without ZCA "
            "(load_dataset(..., public_stats=True), no --zca): statistics of the private images would leak"
        )


def _smallest_class(labels: Tensor, num_classes: int) -> int:
    return int(torch.bincount(labels, minlength=num_classes).min()) if len(labels) else 0


# --- building one model ----------------------------------------------------------------------


def build_model(target: Target, data: Benchmark, config: AuditConfig, seed: int, device: torch.device) -> Built:
    """Run ``target``'s pipeline on ``data.train``: the trained model, its set and privacy record."""
    net = create_net(
        config.net, data.channels, data.num_classes, data.image_size,
        generator=make_generator(derive_seed(seed, "net")), **config.net_options,
    )  # fmt: skip
    if target.kind == "dp-sgd":
        dpsgd = DPSGDConfig(
            dp_epsilon=target.epsilon, dp_delta=config.dp_delta, clip_norm=config.clip_norm, batch_size=config.dpsgd_batch_size,
            epochs=config.dpsgd_epochs, lr=config.dpsgd_lr, dp_deterministic_noise=config.dp_deterministic_noise,
        )  # fmt: skip
        net, record = train_dpsgd(
            net,
            data.train.images,
            data.train.labels,
            dpsgd,
            generator=make_generator(derive_seed(seed, "train")),
            device=device,
        )
        return Built(net, None, record)
    synset = None
    if target.kind == "real":
        images, labels = data.train.images, data.train.labels
    else:
        synset = distill(target, data, config, seed, device)
        images, labels = synset.training_data()
    settings = TrainSettings(epochs=config.epochs, lr=config.lr, batch_size=config.batch_size)
    train_classifier(net, images, labels, settings, generator=make_generator(derive_seed(seed, "train")), device=device)
    privacy = synset.meta.get("privacy") if synset is not None else None
    return Built(net.eval(), synset, privacy)


def distill_net_options(config: Any, data: Benchmark) -> dict[str, Any]:
    """``config.distill_net_options``, with a ConvNet's depth fitted to the image size unless given."""
    options = dict(config.distill_net_options)
    if config.distill_net == "convnet" and "depth" not in options:
        options["depth"] = fitting_depth(data.image_size)
    return options


def distill(target: Target, data: Benchmark, config: AuditConfig, seed: int, device: torch.device) -> SyntheticSet:
    """The synthetic set of a distilled target."""
    common = {
        "iterations": config.iterations, "batch_real": config.batch_real,
        "net": config.distill_net, "net_options": distill_net_options(config, data), "lr_img": config.lr_img,
    }  # fmt: skip
    method = TARGET_METHODS.get(target.kind, target.kind)
    if method == "random":
        overrides: dict[str, Any] = {}
    elif not METHODS.get(method).differentially_private:
        overrides = common | {"init": target.init}
    else:
        eps = "inf" if target.epsilon is None or math.isinf(target.epsilon) else target.epsilon
        overrides = common | {"dp_epsilon": eps, "dp_delta": config.dp_delta, "clip_norm": config.clip_norm,
                              "dp_deterministic_noise": config.dp_deterministic_noise}  # fmt: skip
        overrides |= AUDIT_METHOD_OVERRIDES.get(method, {})
    distiller = create_distiller(method, overrides, device=device)
    return distiller.distill(data, config.ipc, generator=make_generator(derive_seed(seed, "distill")))


@torch.no_grad()
def logits_of(net: torch.nn.Module, images: Tensor, device: torch.device) -> Tensor:
    net.eval()
    return torch.cat([net(images[s : s + 1024].to(device)).cpu() for s in range(0, images.shape[0], 1024)])


# --- one seed --------------------------------------------------------------------------------


def run_audit(
    real: Benchmark,
    config: AuditConfig,
    *,
    seed: int = 0,
    device: str | torch.device = "cpu",
    on_model: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Audit every target for one seed: ``{"rows", "memorization", "pairs", "privacy"}``.

    Rows: ``seed, target, init, epsilon, attack, subset, auc (+ci), tpr_at_0.1fpr (+ci),
    tpr_at_1fpr (+ci), eps_lb, test_acc, private, eps_spent, within_bound`` (epsilon ``None`` for
    non-DP targets, ``"inf"`` for DP targets without noise). ``on_model(label)`` is called after
    each trained model (progress). Sizes are checked before any training.
    """
    device = torch.device(device)
    check_public_data(real, config)
    check_sizes(real, config, [seed])
    split = draw_split(real, config, seed)
    members = training_data(real, split, split.is_member)
    pool_images = real.train.images[split.pool]
    rows: list[dict[str, Any]] = []
    memorization: list[dict[str, Any]] = []
    pairs: dict[str, tuple[Tensor, Tensor, Tensor]] = {}
    privacy: list[dict[str, Any]] = []
    for target in audit_targets(config):
        key = target.label
        built = build_model(target, members, config, derive_seed(seed, key, "target"), device)
        _notify(on_model, key)
        logits = logits_of(built.net, pool_images, device)
        acc = test_accuracy(built.net, real.test.images, real.test.labels, device=device)
        scores = {"loss": mia.loss_scores(logits, split.labels)}
        if config.shadows:
            phis = []
            for s in range(config.shadows):
                shadow = build_model(target, training_data(real, split, split.shadow_in[s]), config,
                                     derive_seed(seed, key, "shadow", s), device)  # fmt: skip
                _notify(on_model, f"{key} shadow {s}")
                phis.append(mia.logit_confidence(logits_of(shadow.net, pool_images, device), split.labels))
            scores["lira"] = mia.lira_scores(
                mia.logit_confidence(logits, split.labels), torch.stack(phis), split.shadow_in
            )
        meta = _target_fields(target, built.privacy) | {"test_acc": acc}
        boot = make_generator(derive_seed(seed, key, "bootstrap"))  # a target's rows do not depend on the others
        rows += score_rows(scores, split, config, boot, seed, meta)
        if built.privacy is not None:
            privacy.append({"seed": seed, "target": target.kind, "label": key} | built.privacy)
        if built.synset is not None:
            stats, closest = nearest_neighbours(built.synset, members.train.images, pool_images[~split.is_member])
            memorization.append(
                {"seed": seed, "target": target.kind, "init": target.init, "epsilon": _epsilon_field(target)} | stats
            )
            pairs[key] = closest
    return {"rows": rows, "memorization": memorization, "pairs": pairs, "privacy": privacy}


def score_rows(
    scores: dict[str, Tensor],
    split: AuditSplit,
    config: AuditConfig,
    generator: torch.Generator,
    seed: int,
    meta: dict[str, Any],
) -> list[dict[str, Any]]:
    """One row per attack and subset (``all``; ``canary`` when there are canaries)."""
    subsets = {"all": torch.ones_like(split.is_canary)}
    if split.is_canary.any():
        subsets["canary"] = split.is_canary
    rows = []
    for attack, score in scores.items():
        for subset, mask in subsets.items():
            result = mia.evaluate_attack(
                score[mask & split.is_member].numpy(), score[mask & ~split.is_member].numpy(),
                n_boot=config.n_boot, generator=generator, delta=config.dp_delta,
            )  # fmt: skip
            rows.append(_row(seed, meta, attack, subset, result))
    return rows


def _row(seed: int, meta: dict[str, Any], attack: str, subset: str, result: dict[str, Any]) -> dict[str, Any]:
    head = {k: meta[k] for k in ("target", "init", "epsilon")}
    tail = {k: meta[k] for k in ("test_acc", "private", "eps_spent")}
    within = None if meta["eps_spent"] is None else bool(result["eps_lb"] <= meta["eps_spent"])
    return {"seed": seed} | head | {"attack": attack, "subset": subset} | result | tail | {"within_bound": within}


def _target_fields(target: Target, record: dict[str, Any] | None) -> dict[str, Any]:
    """``target, init, epsilon, private, eps_spent`` (the accounted epsilon of a noisy DP target)."""
    spent = None
    if record is not None and target.epsilon is not None and math.isfinite(target.epsilon):
        spent = record.get("nominal_epsilon", record.get("epsilon"))
    private = bool(record.get("private")) if record is not None else False
    return {
        "target": target.kind,
        "init": target.init,
        "epsilon": _epsilon_field(target),
        "private": private,
        "eps_spent": spent,
    }


def _notify(callback: Callable[[str], None] | None, label: str) -> None:
    if callback is not None:
        callback(label)


def _epsilon_field(target: Target) -> float | str | None:
    if target.epsilon is None:
        return None
    return "inf" if math.isinf(target.epsilon) else target.epsilon


# --- several seeds ---------------------------------------------------------------------------


def run_audit_seeds(
    real: Benchmark,
    config: AuditConfig,
    seeds: Sequence[int],
    *,
    device: str | torch.device = "cpu",
    on_model: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """:func:`run_audit` for each seed, plus ``summary``: mean and sample std over seeds.

    Sizes are checked for every seed before the first training. ``pairs`` are the first seed's.
    """
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError("seeds must be distinct and at least one")
    check_public_data(real, config)
    check_sizes(real, config, seeds)
    results = [run_audit(real, config, seed=s, device=device, on_model=on_model) for s in seeds]
    rows = [r for res in results for r in res["rows"]]
    return {
        "rows": rows,
        "summary": summarize(rows),
        "memorization": [m for res in results for m in res["memorization"]],
        "pairs": results[0]["pairs"],
        "privacy": [p for res in results for p in res["privacy"]],
    }


def summarize(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per ``(target, epsilon, attack, subset)``: ``n_seeds`` and ``<metric>_mean`` / ``<metric>_std``.

    The std is the sample standard deviation (ddof=1), ``None`` with one seed. ``private`` and
    ``within_bound`` hold for the group only if they hold for every seed (``None`` if undefined).
    """
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["target"], row["init"], row["epsilon"], row["attack"], row["subset"]), []).append(row)
    out = []
    for (target, init, eps, attack, subset), group in groups.items():
        entry: dict[str, Any] = {"target": target, "init": init, "epsilon": eps, "attack": attack, "subset": subset,
                                 "n_seeds": len(group)}  # fmt: skip
        for metric in SUMMARY_METRICS:
            values = np.array([r[metric] for r in group], float)
            entry[f"{metric}_mean"] = float(values.mean())
            entry[f"{metric}_std"] = float(values.std(ddof=1)) if len(values) > 1 else None
        entry["private"] = all(r["private"] for r in group)
        bounds = [r["within_bound"] for r in group]
        entry["within_bound"] = None if any(b is None for b in bounds) else all(bounds)
        out.append(entry)
    return out


def nearest_neighbours(
    synset: SyntheticSet, members: Tensor, nonmembers: Tensor, k: int = 8
) -> tuple[dict[str, float], tuple[Tensor, Tensor, Tensor]]:
    """L2 distance (normalised pixels) from each synthetic image to its nearest member and non-member.

    Returns summary statistics and the ``k`` closest (synthetic, member, distance) pairs. Synthetic
    images much closer to members than to non-members indicate memorisation.
    """
    syn = synset.training_data()[0].flatten(1)
    nn_mem, nn_non, arg = nearest_distances(syn, members, nonmembers)
    order = nn_mem.argsort()[:k]
    shape = members.shape[1:]
    stats = {
        "nn_dist_member_mean": float(nn_mem.mean()),
        "nn_dist_nonmember_mean": float(nn_non.mean()),
        "nn_dist_member_min": float(nn_mem.min()),
        "closer_to_member_frac": float((nn_mem < nn_non).float().mean()),
    }
    return stats, (syn[order].view(-1, *shape), members[arg[order]], nn_mem[order])


def nearest_distances(images: Tensor, members: Tensor, nonmembers: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per image: L2 distance (normalised pixels) to its nearest member, to its nearest non-member,
    and the index of that member (``[N]`` each). The metric of :func:`nearest_neighbours`."""
    syn = images.detach().flatten(1).float()
    nn_mem, arg = torch.cdist(syn, members.flatten(1).float()).min(dim=1)
    nn_non = torch.cdist(syn, nonmembers.flatten(1).float()).min(dim=1).values
    return nn_mem, nn_non, arg
