"""Teachers: a classifier trained on the real data whose outputs label a set (soft labels, KD).

SRe2L (Yin et al., NeurIPS 2023) and RDED (Sun et al., CVPR 2024) recover or select images with a
pretrained teacher and evaluate them by running that teacher online on every augmented view (the
relabelling of FKD, Shen & Xing, ECCV 2022). Fixed soft labels store the teacher's outputs once.
Either way the set is only meaningful with *its* teacher: a teacher whose class order differs
from the data's (a known way to get chance accuracy) or a different teacher altogether silently
changes what is evaluated. So every teacher has a :attr:`Teacher.hash` -- sha256 over its
weights (sorted by key: name, dtype, shape and raw bytes) and the JSON of its net name, options,
dataset and class names -- and a set made with a teacher records it in ``meta["teacher_hash"]``
(:func:`check_teacher` compares them).

On disk a teacher is one ``.safetensors`` file (weights, header with the net, options, input
shape, dataset, class names and hash) plus a readable ``.json`` beside it; both written
atomically. :func:`load_teacher` parses only safetensors and JSON, recomputes the hash and
refuses a file whose weights or header were changed.

API stable: ``Teacher``, ``train_teacher``, ``save_teacher``, ``load_teacher``, ``check_teacher``,
``teacher_hash`` (and ``ddapps teacher``) keep these signatures; ``train_and_save_teacher`` is the
command line's one call.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from ddapps.data import Benchmark
from ddapps.errors import ConfigError, DataError
from ddapps.synthetic import SyntheticSet
from ddapps.utils.atomic import atomic_path, write_json

FORMAT_VERSION = 1
META_KEY = "ddapps_teacher"
_MAX_META_BYTES = 2**20


@dataclass
class Teacher:
    """A trained classifier and the identity of what it was trained on.

    Attributes:
        net: the network (eval mode after loading).
        net_name: its name in :data:`ddapps.nets.NETS`.
        net_options: the options it was built with.
        dataset: the dataset's name.
        class_names: the class of each output logit, in order.
        hash: :func:`teacher_hash` of all of the above.
    """

    net: nn.Module
    net_name: str
    net_options: dict[str, Any]
    dataset: str
    class_names: list[str]
    hash: str

    @torch.no_grad()
    def logits(self, images: Tensor, *, batch_size: int = 1024) -> Tensor:
        """The teacher's logits ``float32 [N, K]`` on ``images`` (eval mode; returned on ``images``' device)."""
        self.net.eval()
        device = next(self.net.parameters()).device
        out = [
            self.net(images[s : s + batch_size].to(device)).float().to(images.device)
            for s in range(0, images.shape[0], batch_size)
        ]
        return torch.cat(out) if out else images.new_zeros(0, len(self.class_names))


def teacher_hash(
    state: Mapping[str, Tensor], net_name: str, net_options: Mapping[str, Any], dataset: str, class_names: list[str]
) -> str:
    """sha256 of the weights (sorted keys: name, dtype, shape, bytes) and of the identity JSON."""
    digest = hashlib.sha256()
    for key in sorted(state):
        t = state[key].detach().to("cpu").contiguous()
        digest.update(f"{key}|{t.dtype}|{list(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    identity = {"net_name": net_name, "net_options": dict(net_options), "dataset": dataset, "class_names": class_names}
    digest.update(json.dumps(identity, sort_keys=True).encode())
    return digest.hexdigest()


def make_teacher(
    net: nn.Module, net_name: str, net_options: Mapping[str, Any], dataset: str, class_names: list[str]
) -> Teacher:
    """A :class:`Teacher` around ``net`` with its hash computed."""
    options = json.loads(json.dumps(dict(net_options)))
    names = [str(c) for c in class_names]
    digest = teacher_hash(net.state_dict(), net_name, options, dataset, names)
    return Teacher(net=net, net_name=net_name, net_options=options, dataset=dataset, class_names=names, hash=digest)


def train_teacher(
    benchmark: Benchmark,
    net_name: str = "convnet",
    net_options: Mapping[str, Any] | None = None,
    *,
    epochs: int,
    batch_size: int = 256,
    lr: float = 0.01,
    generator: torch.Generator,
    device: torch.device | str = "cpu",
    augment: bool = True,
    val_select: bool = True,
) -> tuple[Teacher, dict[str, Any]]:
    """Train a teacher on ``benchmark.train`` with the evaluation protocol's SGD.

    SGD momentum 0.9, weight decay 5e-4, lr x0.1 after half of the epochs (Zhao et al., ICLR 2021),
    DSA augmentation of every batch when ``augment``. With a validation split and ``val_select``
    the weights of the (last) epoch with the best validation accuracy are kept (early stopping on data
    carved from train, never on test); the test split is scored once, at the end. Returns the
    teacher and ``{"seconds", "epochs", "best_epoch", "val_accuracy", "test_accuracy", ...}``.
    """
    from ddapps.augment import DSA, default_strategy
    from ddapps.evaluation.training import TrainSettings, test_accuracy, train_classifier
    from ddapps.nets import create_net

    options = dict(net_options or {})
    settings = TrainSettings(epochs=epochs, lr=lr, batch_size=batch_size)
    if epochs < 1:
        raise ConfigError(f"a teacher needs epochs >= 1, got {epochs}")
    net = create_net(
        net_name, benchmark.channels, benchmark.num_classes, benchmark.image_size, generator=generator, **options
    )
    strategy = default_strategy(benchmark.name) if augment else "none"
    val = benchmark.val if benchmark.val is not None and len(benchmark.val) else None
    best: dict[str, Any] = {"accuracy": -1.0, "epoch": epochs - 1, "state": None}

    def score_val(epoch: int) -> None:
        assert val is not None
        accuracy = test_accuracy(net, val.images, val.labels, device=device)
        if accuracy >= best["accuracy"]:  # ties: the later, longer-trained weights
            best.update(accuracy=accuracy, epoch=epoch, state=copy.deepcopy(net.state_dict()))

    start = time.perf_counter()
    train_classifier(
        net,
        benchmark.train.images,
        benchmark.train.labels,
        settings,
        generator=generator,
        augment=DSA(strategy) if augment else None,
        device=device,
        on_epoch=score_val if val is not None else None,
    )
    if val is not None and val_select and best["state"] is not None:
        net.load_state_dict(best["state"])
    net.to("cpu").eval()
    seconds = time.perf_counter() - start
    val_accuracy = test_accuracy(net, val.images, val.labels) if val is not None else None
    test = test_accuracy(net, benchmark.test.images, benchmark.test.labels) if len(benchmark.test) else None
    teacher = make_teacher(net, net_name, options, benchmark.name, list(benchmark.class_names))
    report = {
        "seconds": seconds,
        "epochs": epochs,
        "best_epoch": (best["epoch"] + 1) if val is not None and val_select else epochs,
        "val_selected": val is not None and val_select,
        "val_accuracy": val_accuracy,
        "test_accuracy": test,
        "dsa_strategy": strategy,
        "settings": {"lr": lr, "batch_size": batch_size, "momentum": 0.9, "weight_decay": 5e-4},
        "n_train": len(benchmark.train),
        "n_val": len(val) if val is not None else 0,
        "hash": teacher.hash,
    }
    return teacher, report


def epochs_for(epochs: int, min_steps: int, n_train: int, batch_size: int = 256) -> int:
    """``epochs``, raised so that training takes at least ``min_steps`` SGD steps (small datasets)."""
    per_epoch = max(1, math.ceil(n_train / batch_size))
    return max(epochs, math.ceil(min_steps / per_epoch))


def train_and_save_teacher(
    benchmark: Benchmark,
    path: str | os.PathLike[str],
    net_name: str,
    net_options: Mapping[str, Any],
    *,
    epochs: int,
    seed: int,
    device: torch.device | str = "cpu",
    **train_options: Any,
) -> tuple[Teacher, dict[str, Any]]:
    """:func:`train_teacher` seeded with ``seed``, saved to ``path``, its report written to ``<stem>.train.json``."""
    from ddapps.utils.seeding import make_generator

    teacher, report = train_teacher(
        benchmark, net_name, net_options, epochs=epochs, generator=make_generator(seed), device=device, **train_options
    )
    target = save_teacher(path, teacher)
    report |= {"net": net_name, "net_options": dict(net_options), "dataset": benchmark.describe(), "seed": seed}
    write_json(target.with_name(target.stem + ".train.json"), report)
    return teacher, report


def _header(teacher: Teacher, input_shape: list[int]) -> dict[str, Any]:
    return {
        "format": FORMAT_VERSION,
        "net_name": teacher.net_name,
        "net_options": teacher.net_options,
        "input_shape": input_shape,
        "dataset": teacher.dataset,
        "class_names": teacher.class_names,
        "hash": teacher.hash,
    }


def save_teacher(path: str | os.PathLike[str], teacher: Teacher, *, input_shape: list[int] | None = None) -> Path:
    """Write ``teacher`` atomically to ``path`` (``.safetensors``) and a readable ``.json`` beside it.

    ``input_shape`` ``[C, H, W]`` defaults to the net's own (:attr:`ddapps.nets.base.Net.input_shape`).
    """
    from safetensors.torch import save_file

    target = Path(path)
    if target.suffix != ".safetensors":
        target = target.with_suffix(".safetensors")
    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in teacher.net.state_dict().items()}
    if teacher_hash(state, teacher.net_name, teacher.net_options, teacher.dataset, teacher.class_names) != teacher.hash:
        raise ConfigError("teacher.hash does not match its weights (the net changed after the hash was made)")
    header = _header(teacher, input_shape or _input_shape(teacher.net))
    with atomic_path(target) as tmp:
        save_file(state, str(tmp), metadata={META_KEY: json.dumps(header, allow_nan=False)})
    write_json(target.with_suffix(".json"), header)
    return target


def _input_shape(net: nn.Module) -> list[int]:
    shape = getattr(net, "input_shape", None)
    if shape is None:
        raise ConfigError("pass input_shape=[C, H, W]: this net does not record its input shape")
    return [int(s) for s in shape]


def load_teacher(path: str | os.PathLike[str], *, expect_classes: list[str] | None = None) -> Teacher:
    """Read a teacher written by :func:`save_teacher` (safetensors only) and verify its hash.

    A class map that differs from ``expect_classes`` raises :class:`ConfigError`; a missing,
    truncated or edited file raises :class:`DataError`.
    """
    from safetensors import SafetensorError, safe_open

    source = Path(path)
    if not source.is_file():
        raise DataError(f"teacher file not found: {source}")
    try:
        with safe_open(str(source), framework="pt") as handle:
            raw = (handle.metadata() or {}).get(META_KEY)
            state = {k: handle.get_tensor(k) for k in handle.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError, MemoryError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataError(f"{source} is not a valid safetensors file ({reason})") from None
    header = _parse_header(source, raw)
    net = _rebuild(source, header, state)
    names = header["class_names"]
    digest = teacher_hash(state, header["net_name"], header["net_options"], header["dataset"], names)
    if digest != header["hash"]:
        raise DataError(f"{source}: teacher hash mismatch (weights or header changed since it was saved)")
    if expect_classes is not None:
        check_class_map(names, [str(c) for c in expect_classes], what=str(source))
    return Teacher(net, header["net_name"], header["net_options"], header["dataset"], names, header["hash"])


def _parse_header(source: Path, raw: str | None) -> dict[str, Any]:
    from ddapps.utils.json_header import parse_json_header

    missing = f"has no {META_KEY} metadata (not a ddapps teacher)"
    header = parse_json_header(
        source, raw, what="teacher metadata", missing=missing, max_bytes=_MAX_META_BYTES, error=DataError
    )
    expected = {
        "format": int, "net_name": str, "net_options": dict, "input_shape": list, "dataset": str,
        "class_names": list, "hash": str,
    }  # fmt: skip
    if any(not isinstance(header.get(k), t) for k, t in expected.items()):
        raise DataError(f"{source}: teacher metadata must hold {', '.join(expected)} of the right types")
    if header["format"] != FORMAT_VERSION:
        raise DataError(f"{source}: unsupported teacher format {header['format']!r} (this ddapps reads 1)")
    shape = header["input_shape"]
    if len(shape) != 3 or not all(isinstance(s, int) and s > 0 for s in shape):
        raise DataError(f"{source}: input_shape must be [C, H, W] of positive integers")
    if not header["class_names"] or not all(isinstance(c, str) for c in header["class_names"]):
        raise DataError(f"{source}: class_names must be a non-empty list of strings")
    return header


def _rebuild(source: Path, header: dict[str, Any], state: dict[str, Tensor]) -> nn.Module:
    """The header's network with ``state`` loaded (strict: every key and shape must match)."""
    from ddapps.nets import create_net
    from ddapps.utils.seeding import make_generator

    channels, height, width = header["input_shape"]
    try:
        net = create_net(
            header["net_name"], channels, len(header["class_names"]), (height, width),
            generator=make_generator(0), **header["net_options"],
        )  # fmt: skip
        net.load_state_dict(state, strict=True)
    except (ConfigError, RuntimeError, TypeError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataError(f"{source}: the weights do not fit the header's network ({reason})") from None
    return net.eval()


def check_class_map(have: list[str], expected: list[str], *, what: str = "teacher") -> None:
    """:class:`ConfigError` unless ``have`` lists exactly ``expected``'s classes in the same order."""
    if list(have) == list(expected):
        return
    if len(have) != len(expected):
        raise ConfigError(f"{what} has {len(have)} classes, the data has {len(expected)}: a different class map")
    i = next(i for i, (a, b) in enumerate(zip(have, expected)) if a != b)
    raise ConfigError(
        f"{what} class map differs from the data's at output {i} ({have[i]!r} vs {expected[i]!r}): "
        "a teacher with another class order gives chance accuracy"
    )


def check_teacher(synset: SyntheticSet, teacher: Teacher, *, required: bool = True) -> None:
    """:class:`ConfigError` unless ``synset`` was made with ``teacher``.

    Compares ``synset.meta["teacher_hash"]`` with ``teacher.hash``; a set recording no teacher
    passes only with ``required=False``. The set's class names (``meta["dataset"]["class_names"]``),
    when recorded, must equal the teacher's class map.
    """
    recorded = synset.meta.get("teacher_hash")
    if recorded is None:
        if required:
            raise ConfigError("the set records no teacher_hash: it was not made with a teacher")
    elif recorded != teacher.hash:
        raise ConfigError(
            f"the set was made with teacher {str(recorded)[:12]}, not with this one ({teacher.hash[:12]})"
        )
    dataset = synset.meta.get("dataset")
    names = dataset.get("class_names") if isinstance(dataset, dict) else None
    if isinstance(names, list):
        check_class_map(teacher.class_names, [str(c) for c in names])
