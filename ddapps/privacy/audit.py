"""Membership-inference audit of models trained on real, distilled and DP-distilled data.

Following Carlini et al. ("No Free Lunch in 'Privacy for Free'", 2022), a claim that distilled data
protects membership must be measured, not asserted. The audit draws a *pool* of training images;
a random half are the *members*. A target model is built from the members by one pipeline:

* ``real``: trained on the members themselves (a real subset);
* ``random``: trained on ``ipc`` random member images per class;
* ``dm-real`` / ``dm-noise``: trained on a DM set distilled from the members, real / noise init;
* ``dp-dm``: trained on a DP-DM set at each epsilon of ``epsilons`` (noise init);
* ``dp-dc``: trained on a DP gradient-matching (PSG) set at each epsilon (opt-in: per-example
  gradients are costly on CPU; two outer steps of one inner epoch per iteration, DC's ``lr_img``).

The defaults are a CPU budget that learns from noise on digits and MNIST: ``lr_img`` 100 for DM and
DP-DM (the DM paper's 1.0 needs its 20,000 iterations; at 200 it stays near chance), measured in
docs/privacy.md.

Attacks on each target score every pool image (members vs non-members): the loss threshold, and
LiRA with ``shadows`` shadow models, each running the same pipeline on a random half of the pool.
Every run draws from generators derived from one seed; nothing uses the global RNG.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ddapps.data import Benchmark
from ddapps.errors import ConfigError
from ddapps.evaluation import TrainSettings, test_accuracy, train_classifier
from ddapps.methods import create_distiller
from ddapps.nets import create_net
from ddapps.privacy import mia
from ddapps.synthetic import SyntheticSet
from ddapps.utils.seeding import derive_seed, make_generator

TARGETS = ("real", "random", "dm-real", "dm-noise", "dp-dm", "dp-dc")
DEFAULT_TARGETS = TARGETS[:-1]
DP_TARGETS = ("dp-dm", "dp-dc")


@dataclass(frozen=True)
class AuditConfig:
    """What to audit and with which (explicit, small) budget."""

    targets: tuple[str, ...] = DEFAULT_TARGETS
    epsilons: tuple[float, ...] = (1.0, 10.0, math.inf)
    dp_delta: float = 1e-5
    clip_norm: float = 1.0
    pool_size: int = 500
    ipc: int = 10
    shadows: int = 4
    iterations: int = 200
    batch_real: int = 64
    lr_img: float | None = 100.0
    distill_net: str = "convnet"
    distill_net_options: dict[str, Any] = field(default_factory=lambda: {"width": 32})
    net: str = "mlp"
    net_options: dict[str, Any] = field(default_factory=lambda: {"width": 128})
    epochs: int = 300
    lr: float = 0.01
    batch_size: int = 256
    n_boot: int = 200

    def __post_init__(self) -> None:
        unknown = sorted(set(self.targets) - set(TARGETS))
        if unknown or not self.targets:
            raise ConfigError(f"unknown target(s) {', '.join(unknown) or '(none)'}; choose from: {', '.join(TARGETS)}")
        if any(not (e > 0) for e in self.epsilons):
            raise ConfigError("epsilons must be > 0 (inf for no noise)")
        if self.pool_size < 8 or self.ipc < 1 or self.shadows < 0 or self.epochs < 1 or self.n_boot < 0:
            raise ConfigError("need pool_size >= 8, ipc >= 1, shadows >= 0, epochs >= 1 and n_boot >= 0")


@dataclass(frozen=True)
class Target:
    """One target pipeline: a kind and, for ``dp-dm``/``dp-dc``, its epsilon."""

    kind: str
    epsilon: float | None = None

    @property
    def init(self) -> str:
        return {"real": "-", "random": "real", "dm-real": "real"}.get(self.kind, "noise")

    @property
    def label(self) -> str:
        return self.kind if self.epsilon is None else f"{self.kind}(eps={self.epsilon:g})"


def audit_targets(config: AuditConfig) -> list[Target]:
    """The targets of ``config`` in order (``dp-dm`` and ``dp-dc`` once per epsilon)."""
    out: list[Target] = []
    for kind in config.targets:
        out += [Target(kind, float(e)) for e in config.epsilons] if kind in DP_TARGETS else [Target(kind)]
    return out


def build_model(
    target: Target, data: Benchmark, config: AuditConfig, seed: int, device: torch.device
) -> tuple[torch.nn.Module, SyntheticSet | None]:
    """Run ``target``'s pipeline on ``data.train``: (the trained model, its synthetic set or None)."""
    synset = None
    if target.kind == "real":
        images, labels = data.train.images, data.train.labels
    else:
        synset = distill(target, data, config, seed, device)
        images, labels = synset.training_data()
    net = create_net(
        config.net, data.channels, data.num_classes, data.image_size,
        generator=make_generator(derive_seed(seed, "net")), **config.net_options,
    )
    settings = TrainSettings(epochs=config.epochs, lr=config.lr, batch_size=config.batch_size)
    train_classifier(net, images, labels, settings, generator=make_generator(derive_seed(seed, "train")), device=device)
    return net.eval(), synset


def distill(target: Target, data: Benchmark, config: AuditConfig, seed: int, device: torch.device) -> SyntheticSet:
    """The synthetic set of a distilled target."""
    common = {
        "iterations": config.iterations, "batch_real": config.batch_real,
        "net": config.distill_net, "net_options": dict(config.distill_net_options), "lr_img": config.lr_img,
    }
    if target.kind == "random":
        method, overrides = "random", {}
    elif target.kind in ("dm-real", "dm-noise"):
        method, overrides = "dm", common | {"init": target.init}
    else:
        eps = "inf" if target.epsilon is None or math.isinf(target.epsilon) else target.epsilon
        method = target.kind
        overrides = common | {"dp_epsilon": eps, "dp_delta": config.dp_delta, "clip_norm": config.clip_norm}
        if method == "dp-dc":
            overrides = overrides | {"lr_img": None, "outer_loop": 2, "inner_loop": 1}
    distiller = create_distiller(method, overrides, device=device)
    return distiller.distill(data, config.ipc, generator=make_generator(derive_seed(seed, "distill")))


@torch.no_grad()
def logits_of(net: torch.nn.Module, images: Tensor, device: torch.device) -> Tensor:
    net.eval()
    return torch.cat([net(images[s : s + 1024].to(device)).cpu() for s in range(0, images.shape[0], 1024)])


def run_audit(real: Benchmark, config: AuditConfig, *, seed: int = 0, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Audit every target: ``{"rows": [...], "memorization": [...], "pairs": {label: (syn, real, dist)}}``.

    Rows follow the results schema ``target, init, epsilon, attack, auc, auc_ci_low, auc_ci_high,
    tpr_at_1fpr, test_acc`` (epsilon ``None`` for non-private targets, ``"inf"`` for DP-DM without noise).
    """
    device = torch.device(device)
    n_train = len(real.train)
    if config.pool_size > n_train:
        raise ConfigError(f"pool_size {config.pool_size} exceeds the {n_train} training images of {real.name}")
    pool = torch.randperm(n_train, generator=make_generator(derive_seed(seed, "pool")))[: config.pool_size]
    pool_images, pool_labels = real.train.images[pool], real.train.labels[pool]
    is_member = torch.zeros(config.pool_size, dtype=torch.bool)
    is_member[torch.randperm(config.pool_size, generator=make_generator(derive_seed(seed, "members")))[: config.pool_size // 2]] = True
    members = dataclasses.replace(real, train=real.train.subset(pool[is_member]))
    smallest = int(members.train.class_counts().min())
    if any(t.kind != "real" for t in audit_targets(config)) and smallest < 2 * config.ipc:
        # shadows see about half the pool too; 2 * ipc members per class leaves them room
        raise ConfigError(f"the members hold only {smallest} images of some class for ipc={config.ipc}; raise pool_size")
    shadow_masks = torch.rand(config.shadows, config.pool_size, generator=make_generator(derive_seed(seed, "shadows"))) < 0.5
    boot_gen = make_generator(derive_seed(seed, "bootstrap"))

    rows: list[dict[str, Any]] = []
    memorization: list[dict[str, Any]] = []
    pairs: dict[str, tuple[Tensor, Tensor, Tensor]] = {}
    for target in audit_targets(config):
        key = target.label
        net, synset = build_model(target, members, config, derive_seed(seed, key, "target"), device)
        logits = logits_of(net, pool_images, device)
        acc = test_accuracy(net, real.test.images, real.test.labels, device=device)
        scores = {"loss": mia.loss_scores(logits, pool_labels)}
        if config.shadows:
            phis = []
            for s in range(config.shadows):
                shadow_data = dataclasses.replace(real, train=real.train.subset(pool[shadow_masks[s]]))
                shadow, _ = build_model(target, shadow_data, config, derive_seed(seed, key, "shadow", s), device)
                phis.append(mia.logit_confidence(logits_of(shadow, pool_images, device), pool_labels))
            scores["lira"] = mia.lira_scores(mia.logit_confidence(logits, pool_labels), torch.stack(phis), shadow_masks)
        eps = _epsilon_field(target)
        for attack, score in scores.items():
            result = mia.evaluate_attack(score[is_member].numpy(), score[~is_member].numpy(), n_boot=config.n_boot, generator=boot_gen)
            rows.append({"target": target.kind, "init": target.init, "epsilon": eps, "attack": attack, **result, "test_acc": acc})
        if synset is not None:
            stats, closest = nearest_neighbours(synset, members.train.images, pool_images[~is_member])
            memorization.append({"target": target.kind, "init": target.init, "epsilon": eps, **stats})
            pairs[key] = closest
    return {"rows": rows, "memorization": memorization, "pairs": pairs}


def _epsilon_field(target: Target) -> float | str | None:
    if target.epsilon is None:
        return None
    return "inf" if math.isinf(target.epsilon) else target.epsilon


def nearest_neighbours(
    synset: SyntheticSet, members: Tensor, nonmembers: Tensor, k: int = 8
) -> tuple[dict[str, float], tuple[Tensor, Tensor, Tensor]]:
    """L2 distance (normalised pixels) from each synthetic image to its nearest member and non-member.

    Returns summary statistics and the ``k`` closest (synthetic, member, distance) pairs. Synthetic
    images much closer to members than to non-members indicate memorisation.
    """
    syn = synset.training_data()[0].flatten(1)
    d_mem = torch.cdist(syn, members.flatten(1))
    d_non = torch.cdist(syn, nonmembers.flatten(1))
    nn_mem, arg = d_mem.min(dim=1)
    nn_non = d_non.min(dim=1).values
    order = nn_mem.argsort()[:k]
    shape = members.shape[1:]
    stats = {
        "nn_dist_member_mean": float(nn_mem.mean()),
        "nn_dist_nonmember_mean": float(nn_non.mean()),
        "nn_dist_member_min": float(nn_mem.min()),
        "closer_to_member_frac": float((nn_mem < nn_non).float().mean()),
    }
    return stats, (syn[order].view(-1, *shape), members[arg[order]], nn_mem[order])
