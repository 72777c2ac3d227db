"""Loading the CIFAR "python version" pickles without running code from them.

``pickle.load`` on an untrusted file can call any importable function (``os.system``...). The
:class:`RestrictedUnpickler` resolves no global except the few numpy needs to rebuild an array, so
a hostile file fails with :class:`DataError` before anything in it runs.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from ddapps.errors import DataError

# The function numpy's ndarray.__reduce__ names (numpy.core... in 1.x, numpy._core... in 2.x).
_RECONSTRUCT = np.ndarray((0,)).__reduce__()[0]

# INVARIANT: only these (module, name) pairs are ever resolved while unpickling.
ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler whose ``find_class`` allows only :data:`ALLOWED_GLOBALS`."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refused to load global {module}.{name}") from None


def safe_unpickle(data: bytes, path: Path) -> Any:
    """Unpickle ``data`` (read from ``path``) with :class:`RestrictedUnpickler`.

    ``encoding="bytes"`` reads the official Python 2 pickles, as the CIFAR page instructs.
    """
    try:
        return RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as exc:  # any failure here means a bad or hostile file
        raise DataError(
            f"unsafe or corrupted pickle {path}: {exc}; only the official CIFAR python files "
            "are accepted, or use the binary version"
        ) from None
