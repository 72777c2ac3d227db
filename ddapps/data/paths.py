"""Where dataset files are looked for, and reading them whether raw, gzip- or xz-compressed."""

from __future__ import annotations

import gzip
import lzma
import os
from collections.abc import Sequence
from pathlib import Path

from ddapps.errors import DataError

ENV_VAR = "DDAPPS_DATA"
COMPRESSED_SUFFIXES = ("", ".gz", ".xz")
# The repository's sibling folder ../shared/data (real MNIST and CIFAR-10), used as a fallback.
_HERE = Path(__file__).resolve()
_SHARED_DATA = _HERE.parents[3] / "shared" / "data" if len(_HERE.parents) > 3 else None


def resolve_data_dir(data_dir: str | os.PathLike[str] | None) -> Path:
    """The data root: ``data_dir`` if given, else ``$DDAPPS_DATA``, else ``./data`` (absolute)."""
    if data_dir is not None and str(data_dir) != "":
        return Path(data_dir).expanduser().resolve()
    env = os.environ.get(ENV_VAR, "")
    if env:
        return Path(env).expanduser().resolve()
    return Path("data").resolve()


def search_roots(data_dir: str | os.PathLike[str] | None) -> list[Path]:
    """Roots to search, in order: the resolved data root, then ``../shared/data`` next to the repo.

    The fallback is used only when neither ``data_dir`` nor ``$DDAPPS_DATA`` names a folder, so an
    explicit choice is never silently overridden.
    """
    root = resolve_data_dir(data_dir)
    roots = [root]
    explicit = (data_dir is not None and str(data_dir) != "") or bool(os.environ.get(ENV_VAR))
    if not explicit and _SHARED_DATA is not None and _SHARED_DATA.is_dir() and _SHARED_DATA != root:
        roots.append(_SHARED_DATA)
    return roots


def candidate_dirs(roots: Sequence[Path], subdirs: Sequence[str]) -> list[Path]:
    """``root/sub`` for every root and sub (``""`` is the root itself), in search order."""
    out: list[Path] = []
    for root in roots:
        for sub in subdirs:
            d = root / sub if sub else root
            if d not in out:
                out.append(d)
    return out


def find_file(dirs: Sequence[Path], names: Sequence[str]) -> Path | None:
    """The first existing ``dir/name + suffix`` (suffix in '', .gz, .xz), dirs outermost."""
    for d in dirs:
        for name in names:
            for suffix in COMPRESSED_SUFFIXES:
                p = d / (name + suffix)
                if p.is_file():
                    return p
    return None


def missing_file_error(dataset: str, filename: str, dirs: Sequence[Path], *, downloadable: bool = True) -> DataError:
    """The one-line error for a dataset file found in none of ``dirs``."""
    first, rest = dirs[0], [str(d) for d in dirs[1:]]
    also = f" (also looked in {', '.join(rest)})" if rest else ""
    fix = "put the official files there, pass --data-dir DIR or set DDAPPS_DATA"
    fix += ", or use --download" if downloadable else ""
    return DataError(
        f"{dataset} file {filename} not found in {first}{also}; raw, .gz and .xz copies are accepted; {fix}"
    )


def read_bytes(path: Path, what: str) -> bytes:
    """All bytes of ``path``, decompressed if it ends in .gz or .xz; DataError if unreadable."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        if path.suffix == ".xz":
            with lzma.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError, lzma.LZMAError) as exc:
        raise DataError(
            f"corrupted {what} file {path}: {exc}; replace it with a fresh copy of the official file"
        ) from None
