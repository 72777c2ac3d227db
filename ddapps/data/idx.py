"""Parser for the idx format of MNIST and Fashion-MNIST (LeCun et al.).

Header (big-endian): a 4-byte magic ``0x0000TTNN`` (type code TT, 0x08 = uint8; NN dimensions),
then NN 4-byte sizes, then the values. Image files have magic 2051 (3 dims), label files 2049.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ddapps.errors import DataError

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049


def parse_idx(data: bytes, expected_magic: int, path: Path) -> np.ndarray:
    """The uint8 array stored in ``data``; DataError if the magic or the size is wrong."""

    def corrupted(why: str) -> DataError:
        return DataError(f"corrupted idx file {path}: {why}; replace it with the official file")

    if len(data) < 4:
        raise corrupted(f"only {len(data)} bytes, too short for a header")
    magic = int.from_bytes(data[:4], "big")
    if magic != expected_magic:
        raise corrupted(f"magic number {magic}, expected {expected_magic}")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise corrupted(f"header truncated at {len(data)} bytes")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = header + math.prod(dims)
    if len(data) != expected:
        state = "truncated" if len(data) < expected else "too long"
        raise corrupted(f"{state}: {len(data)} bytes, header {dims} needs {expected}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)
