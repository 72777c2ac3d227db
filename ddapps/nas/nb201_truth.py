"""Ground-truth accuracies of the NAS-Bench-201 space, for ranking studies.

Dong & Yang, "NAS-Bench-201: Extending the Scope of Reproducible Neural Architecture Search"
(ICLR 2020) trained every one of the 15,625 cells of :mod:`ddapps.nas.nb201` for 200 epochs on
CIFAR-10, CIFAR-100 and ImageNet16-120. The file read here is a CSV of those test accuracies (%),
as NATS-Bench's topology search space ("tss") reports them, one row per architecture string;
a proxy's ranking of architectures is compared with it.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

from ddapps.data.paths import search_roots
from ddapps.errors import ConfigError
from ddapps.nas.nb201 import EDGES, OPS, parse_arch

DEFAULT_TRUTH = "nas-bench-201/nats_bench_tss_accuracies.csv"
"""Where the ground truth is looked for, relative to the data folder."""

ARCH_COLUMN = "ArchitectureString"
TRUTH_COLUMNS: dict[str, str] = {
    "cifar10": "CIFAR10TestAccuracy200Epochs",
    "cifar100": "CIFAR100TestAccuracy200Epochs",
    "imagenet16-120": "ImageNetTestAccuracy200Epochs",
}
"""Dataset name -> CSV column of its test accuracy (%) after the benchmark's 200 epochs."""

FULL_SIZE = len(OPS) ** len(EDGES)
"""Rows of a complete file: one per architecture, 15,625."""

_FIX = "put the CSV of NATS-Bench tss accuracies (nats_bench_tss_accuracies.csv) there, or point --truth PATH or $DDAPPS_DATA at it"


def truth_path(path: str | os.PathLike[str] | None, data_dir: str | os.PathLike[str] | None) -> Path:
    """The ground-truth CSV: ``path`` (``--truth``) if given, else ``<data root>/`` :data:`DEFAULT_TRUTH`.

    The data root is found as for datasets (:func:`ddapps.data.paths.search_roots`): ``data_dir``
    (``--data-dir``), else ``$DDAPPS_DATA``, else ``./data`` then the repository's ``../shared/data``.
    A missing file raises :class:`ConfigError` saying where to put it.
    """
    if path is not None and str(path) != "":
        found = Path(path).expanduser().resolve()
        if not found.is_file():
            raise ConfigError(f"NAS-Bench-201 ground truth {found} not found; {_FIX}")
        return found
    candidates = [root / DEFAULT_TRUTH for root in search_roots(data_dir)]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    also = f" (also looked in {', '.join(str(c) for c in candidates[1:])})" if len(candidates) > 1 else ""
    raise ConfigError(f"NAS-Bench-201 ground truth {candidates[0]} not found{also}; {_FIX}")


def _accuracy(raw: str | None, column: str, where: str) -> float:
    if raw is None or raw.strip() == "":
        raise ConfigError(f"{where}: missing value in column {column}")
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{where}: column {column} is not a number: {raw!r}") from None
    if not math.isfinite(value) or not 0.0 <= value <= 100.0:
        raise ConfigError(f"{where}: column {column} must be an accuracy in [0, 100], got {raw!r}")
    return value


def load_truth(path: str | os.PathLike[str]) -> dict[tuple[str, ...], dict[str, float]]:
    """``{ops: {"cifar10": acc, "cifar100": acc, "imagenet16-120": acc}}`` from the CSV at ``path``.

    The header must name :data:`ARCH_COLUMN` and the columns of :data:`TRUTH_COLUMNS`. A complete
    file has :data:`FULL_SIZE` rows; fewer are accepted (a subset of the space). A malformed
    architecture, a duplicate, or a missing, non-numeric or out-of-range accuracy raises
    :class:`ConfigError` naming the file and line.
    """
    source = Path(path)
    truth: dict[tuple[str, ...], dict[str, float]] = {}
    try:
        with source.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            needed = [ARCH_COLUMN, *TRUTH_COLUMNS.values()]
            absent = [c for c in needed if c not in header]
            if absent:
                raise ConfigError(f"NAS-Bench-201 ground truth {source}: header lacks columns {absent}")
            for row in reader:
                where = f"NAS-Bench-201 ground truth {source} line {reader.line_num}"
                raw_arch = row.get(ARCH_COLUMN)
                if not raw_arch:
                    raise ConfigError(f"{where}: missing value in column {ARCH_COLUMN}")
                try:
                    ops = parse_arch(raw_arch)
                except ConfigError as err:
                    raise ConfigError(f"{where}: {err}") from None
                if ops in truth:
                    raise ConfigError(f"{where}: duplicate architecture {raw_arch}")
                truth[ops] = {name: _accuracy(row.get(col), col, where) for name, col in TRUTH_COLUMNS.items()}
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise ConfigError(f"cannot read NAS-Bench-201 ground truth {source}: {err}") from None
    if not truth:
        raise ConfigError(f"NAS-Bench-201 ground truth {source} has no rows")
    return truth
