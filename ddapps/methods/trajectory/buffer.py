"""``ExpertBuffer``: expert training trajectories in one safetensors file.

Layout: tensor ``expert.{i}`` is ``float32 [epochs + 1, P]`` -- the flat parameters of expert ``i``
at initialisation and after every epoch (see :class:`~ddapps.methods.trajectory.flat.FlatSpec`).
The safetensors header holds JSON metadata under ``ddapps_experts``: network name and options,
the parameter spec, the dataset's ``describe()``, epochs, learning rate, seed, DSA strategy, the
expert config, how many experts are done and their test accuracies. Loading parses only
safetensors and JSON (no pickle), validates every field and shape up front, and reads snapshots
lazily (memory-mapped slices), so a 100-expert file is not held in memory.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ddapps.errors import ConfigError
from ddapps.methods.trajectory.flat import FlatSpec
from ddapps.utils.atomic import atomic_path

FORMAT_VERSION = 1
META_KEY = "ddapps_experts"
_REQUIRED = {
    "format": int,
    "net": str,
    "net_options": dict,
    "params": list,
    "dataset": dict,
    "epochs": int,
    "lr_teacher": float,
    "seed": int,
    "dsa_strategy": str,
    "config": dict,
    "num_experts": int,
    "test_accuracy": list,
}
# Fields of Benchmark.describe() that identify the data an expert was trained on.
DATASET_IDENTITY = ("name", "num_classes", "channels", "image_size", "mean", "std", "zca", "n_train")


def dataset_identity(description: dict[str, Any]) -> dict[str, Any]:
    """The identifying part of a ``Benchmark.describe()`` (not, e.g., the folder it came from)."""
    return {key: description.get(key) for key in DATASET_IDENTITY}


class ExpertBuffer:
    """Trajectories of ``num_experts`` experts, ``epochs + 1`` flat snapshots each.

    Built in memory by :func:`~ddapps.methods.trajectory.experts.train_experts` or read from a
    file by :meth:`load`; both answer :meth:`params` the same way.
    """

    def __init__(
        self,
        meta: dict[str, Any],
        *,
        trajectories: list[Tensor] | None = None,
        path: str | os.PathLike[str] | None = None,
    ) -> None:
        if (trajectories is None) == (path is None):
            raise ValueError("an ExpertBuffer is backed by either trajectories or a file")
        self.meta = _check_meta(meta)
        self.spec = FlatSpec.from_json(meta["params"])
        self.path = None if path is None else Path(path)
        self._trajectories = trajectories
        if trajectories is not None and len(trajectories) != self.num_experts:
            raise ValueError("trajectories do not match num_experts")

    # ---------------------------------------------------------------- views
    @property
    def num_experts(self) -> int:
        """Number of finished experts stored."""
        return int(self.meta["num_experts"])

    @property
    def epochs(self) -> int:
        """Training epochs per expert (each trajectory has ``epochs + 1`` snapshots)."""
        return int(self.meta["epochs"])

    @property
    def net(self) -> str:
        """Registered network name the experts were trained with."""
        return str(self.meta["net"])

    @property
    def net_options(self) -> dict[str, Any]:
        """Options passed to :func:`ddapps.nets.create_net`."""
        return dict(self.meta["net_options"])

    @property
    def dataset(self) -> dict[str, Any]:
        """``describe()`` of the benchmark the experts were trained on."""
        return dict(self.meta["dataset"])

    @property
    def test_accuracy(self) -> list[float]:
        """Test accuracy (%) of each finished expert, for diagnostics only."""
        return [float(a) for a in self.meta["test_accuracy"]]

    def trajectory(self, expert: int) -> Tensor:
        """All snapshots of ``expert``: ``float32 [epochs + 1, P]`` (a copy)."""
        self._check_index(expert, 0)
        if self._trajectories is not None:
            return self._trajectories[expert].clone()
        return _finite(self._read(expert, slice(None)), expert)

    def params(self, expert: int, epoch: int) -> Tensor:
        """Flat parameters of ``expert`` after ``epoch`` epochs (0: initialisation), ``float32 [P]``."""
        self._check_index(expert, epoch)
        if self._trajectories is not None:
            return self._trajectories[expert][epoch].clone()
        return _finite(self._read(expert, epoch), expert)

    def check_compatible(self, dataset: dict[str, Any], net: str, net_options: dict[str, Any]) -> None:
        """:class:`ConfigError` unless these experts were trained on ``dataset`` with ``net``."""
        if dataset_identity(self.dataset) != dataset_identity(dataset):
            raise ConfigError(
                f"the experts were trained on {self.dataset.get('name')!r} "
                f"({self.dataset.get('n_train')} images, zca={self.dataset.get('zca')}); "
                f"this data is {dataset.get('name')!r} ({dataset.get('n_train')} images, zca={dataset.get('zca')})"
            )
        if self.net != net or self.net_options != dict(net_options):
            raise ConfigError(
                f"the experts were trained with net {self.net!r} {self.net_options}; the config asks for "
                f"{net!r} {dict(net_options)} (set net/net_options to match, or train new experts)"
            )

    def _check_index(self, expert: int, epoch: int) -> None:
        if not 0 <= expert < self.num_experts or not 0 <= epoch <= self.epochs:
            raise ConfigError(
                f"no snapshot (expert {expert}, epoch {epoch}): the buffer has {self.num_experts} experts "
                f"x {self.epochs} epochs"
            )

    def _read(self, expert: int, index: int | slice) -> Tensor:
        from safetensors import SafetensorError, safe_open

        assert self.path is not None
        try:
            with safe_open(str(self.path), framework="pt") as handle:
                return handle.get_slice(f"expert.{expert}")[index].clone()
        except (SafetensorError, OSError) as err:
            raise ConfigError(f"cannot read experts from {self.path} ({err})") from None

    # ------------------------------------------------------------------ I/O
    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "ExpertBuffer":
        """Open an expert file, validating its metadata, tensor names, dtypes and shapes."""
        from safetensors import SafetensorError, safe_open

        source = Path(path)
        if not source.is_file():
            raise ConfigError(f"expert file not found: {source} (create it with `ddapps experts`)")
        try:
            with safe_open(str(source), framework="pt") as handle:
                raw = (handle.metadata() or {}).get(META_KEY)
                shapes = {k: (handle.get_slice(k).get_shape(), handle.get_slice(k).get_dtype()) for k in handle.keys()}
        except (SafetensorError, OSError, ValueError) as err:
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise ConfigError(f"{source} is not a valid safetensors file ({reason})") from None
        if raw is None:
            raise ConfigError(f"{source} is not an expert file (no {META_KEY} metadata)")
        try:
            meta = json.loads(raw)
        except json.JSONDecodeError:
            raise ConfigError(f"{source}: expert metadata is not valid JSON") from None
        try:
            buffer = cls(_check_meta(meta), path=source)
        except ConfigError as err:
            raise ConfigError(f"{source}: {err}") from None
        expected_shape = [buffer.epochs + 1, buffer.spec.numel]
        expected_keys = {f"expert.{i}" for i in range(buffer.num_experts)}
        if set(shapes) != expected_keys:
            raise ConfigError(f"{source}: tensors {sorted(shapes)[:4]}... do not match {buffer.num_experts} experts")
        for key, (shape, dtype) in shapes.items():
            if list(shape) != expected_shape or dtype != "F32":
                raise ConfigError(f"{source}: {key} is {dtype} {list(shape)}, expected F32 {expected_shape}")
        return buffer

    def __repr__(self) -> str:
        return (
            f"ExpertBuffer(net={self.net!r}, experts={self.num_experts}, epochs={self.epochs}, "
            f"params={self.spec.numel}, dataset={self.dataset.get('name')!r})"
        )


def write_experts(path: str | os.PathLike[str], tensors: dict[str, Tensor], meta: dict[str, Any]) -> Path:
    """Atomically write ``tensors`` with ``meta`` as the expert-file header."""
    from safetensors.torch import save_file

    target = Path(path)
    with atomic_path(target) as tmp:
        save_file(tensors, str(tmp), metadata={META_KEY: json.dumps(meta, allow_nan=False)})
    return target


def _check_meta(meta: Any) -> dict[str, Any]:
    if not isinstance(meta, dict):
        raise ConfigError("expert metadata must be a JSON object")
    for key, kind in _REQUIRED.items():
        if not _is(meta.get(key), kind):
            raise ConfigError(f"expert metadata field {key!r} is missing or not a {kind.__name__}")
    if meta["format"] != FORMAT_VERSION:
        raise ConfigError(f"expert file format {meta['format']} is not supported (expected {FORMAT_VERSION})")
    if meta["num_experts"] < 1 or meta["epochs"] < 1:
        raise ConfigError("expert file holds no finished expert or no epochs")
    if not math.isfinite(meta["lr_teacher"]) or meta["lr_teacher"] <= 0:
        raise ConfigError("expert metadata lr_teacher must be positive")
    return meta


def _is(value: Any, kind: type) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, (int, float)) if kind is float else isinstance(value, kind)


def _finite(values: Tensor, expert: int) -> Tensor:
    if not torch.isfinite(values).all():
        raise ConfigError(f"expert {expert} holds non-finite parameters (corrupted file or diverged expert)")
    return values
