"""Integration: ``apps/federated`` on a real loopback deployment (SuperLink + 3 SuperNodes), one node killed."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("flwr")

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_killed_supernode_is_recorded_and_the_run_completes(tmp_path: Path) -> None:
    # Prepare: the smoke budget on digits, 3 SuperNodes; partition 2's node is killed mid-round.
    args = [sys.executable, "-m", "ddapps.federated.deploy_local", "--nodes", "3", "--kill-partition", "2",
            "--set", "ipc=2", "--set", "max-per-client=80", "--out", str(tmp_path), "--time-limit", "600"]  # fmt: skip
    # Execute (SIGTERM on a hang: the script then ends every process it started)
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output, _ = proc.communicate(timeout=700)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
    # Assert
    assert proc.returncode == 0, output[-3000:]
    report = json.loads((tmp_path / "deployment.json").read_text())
    assert report["status"] == "finished:completed" and report["checks"] == dict.fromkeys(report["checks"], True)
    killed = report["killed"]["node_id"]
    assert killed == report["node_ids"]["2"]
    (failure,) = report["failures"]
    assert failure["node_id"] == killed and failure["round"] == 1 and failure["kind"] in ("error", "timeout")
    # wire bytes = what the SuperLink counted on its Fleet API, and more than the records
    assert (report["wire_bytes_up"], report["wire_bytes_down"]) == (
        report["superlink_traffic"]["in"], report["superlink_traffic"]["out"]
    )  # fmt: skip
    assert report["wire_bytes_up"] > report["bytes_up"] > 0 and report["wire_bytes_down"] > report["bytes_down"] > 0
    results = json.loads((tmp_path / "app" / "results.json").read_text())
    assert results["rows"][0]["wire_bytes_up"] == report["wire_bytes_up"]
    assert report["process_groups"] and not _alive(set(report["process_groups"]))  # all started processes ended


def _alive(groups: set[int]) -> list[str]:
    """Processes of ``groups`` that still run (zombies are ended processes not yet reaped by init)."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) in groups and fields[0] != "Z":  # fields: state, ppid, pgrp, ...
            alive.append(stat.parent.name)
    return alive


def test_the_run_config_file_reads_back_as_the_config(tmp_path: Path) -> None:
    import tomllib

    from ddapps.federated.deploy_local import parse_args, run_config, toml_value

    args = parse_args(["--nodes", "4", "--set", "ipc=2", "--set", 'method-options={"iterations": 3}'])
    config = run_config(args, tmp_path / "app")
    text = "".join(f"{k} = {toml_value(v)}\n" for k, v in config.items())
    assert tomllib.loads(text) == config
    assert config["clients"] == 4 and config["ipc"] == 2 and config["out-dir"] == str((tmp_path / "app").resolve())
    assert config["method-options"] == '{"iterations": 3}'  # JSON, as the ServerApp parses it


def test_bad_options_fail_before_anything_starts(tmp_path: Path) -> None:
    from ddapps.errors import ConfigError
    from ddapps.federated.deploy_local import deploy, parse_args

    with pytest.raises(ConfigError, match="kill-partition"):
        deploy(parse_args(["--nodes", "3", "--kill-partition", "3", "--out", str(tmp_path)]))
    with pytest.raises(ConfigError, match="unknown federated option"):
        deploy(parse_args(["--set", "no-such-key=1", "--out", str(tmp_path)]))
    assert not (tmp_path / "logs").exists()
