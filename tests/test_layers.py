"""The layering of the design card holds: core below tools below applications; no private imports."""

from __future__ import annotations

import subprocess
import sys

from ddapps.tools.layers import Edge, unit_of, violations


def test_the_package_has_no_layering_violation() -> None:
    proc = subprocess.run([sys.executable, "-m", "ddapps.tools.layers"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert " 0 violation(s)" in proc.stdout and "privacy -> " in proc.stdout


def test_each_rule_is_detected() -> None:
    assert unit_of("ddapps.methods.dm") == "core" and unit_of("ddapps.cli.common") == "cli"
    cases = {
        Edge("ddapps.methods.dp_dm", "ddapps.privacy.mechanism", "clip_rows", 1): "core -> privacy",
        Edge("ddapps.nas.rank", "ddapps.continual.distilled_buffer", None, 2): "application -> application",
        Edge("ddapps.bench.core", "ddapps.nas", "space", 3): "tool -> nas",
        Edge("ddapps.nas.cli", "ddapps.cli.common", "_hidden", 4): "private name",
    }
    for edge, expected in cases.items():
        found = violations([edge])
        assert found and expected in found[0], (edge, found)
    assert violations([Edge("ddapps.federated.server_app", "ddapps.privacy.audit", "run_audit", 5)]) == []
    assert violations([Edge("ddapps.nas.cli", "ddapps.cli.common", "Parser", 6)]) == []
