"""The core must import with avalanche, nni and flwr absent (NNI's own optional-dependency trick)."""

from __future__ import annotations

import subprocess
import sys

CODE = """
import sys
for name in ("avalanche", "nni", "flwr", "ray", "opacus"):
    sys.modules[name] = None  # any import of these now raises ImportError
import ddapps, ddapps.data, ddapps.nets, ddapps.augment, ddapps.methods, ddapps.evaluation, ddapps.cli
from ddapps.methods import list_methods
assert "dm" in list_methods()
print("ok")
"""


def test_core_imports_without_application_frameworks() -> None:
    done = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
