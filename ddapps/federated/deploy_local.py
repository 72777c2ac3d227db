"""``python -m ddapps.federated.deploy_local``: ``apps/federated`` on a real Flower deployment, on loopback.

Starts a SuperLink and one SuperNode per client as separate processes
(:class:`~ddapps.federated.local_cluster.LocalCluster`), runs
``flwr run apps/federated ddapps-local --stream --run-config <file>``, kills one SuperNode (SIGKILL of
its process group: the SuperNode and its ClientApp) once it has received its round-1 instruction,
i.e. while its ClientApp works, waits for the run to end and checks:

1. ``completed``: ``flwr ls`` reports the run ``finished:completed`` and the ServerApp wrote
   ``results.json``;
2. ``failure_recorded``: the killed node is listed under the run's failures (the SuperLink answers
   "node unavailable" for it once it has missed two 30-second heartbeats, unless ``round-timeout``
   is shorter);
3. ``wire_bytes_match``: the wire bytes the ServerApp recorded (:mod:`ddapps.federated.wire_size`)
   equal the Fleet API traffic the SuperLink counted for the run (``flwr ls``: network traffic in =
   up, out = down). Exact when no two replies carry a byte-identical record; otherwise the
   SuperLink stores such a record once and the app's count exceeds its count by that record's
   bytes (up) and one object id (66 bytes, down) per duplicate -- e.g. FedAvg clients with equally
   large partitions reply the same ``{"num-examples": n}`` MetricRecord. Reported, with the gap.

Everything goes to ``--out``: ``deployment.json`` (ports, node ids, the killed node, failures, bytes,
traffic, times, checks), ``app/`` (the ServerApp's results.json, report.md, plot) and ``logs/``
(SuperLink, SuperNodes, ``flwr run``). Exit code 0 iff checks 1 and 2 hold (the robustness claim),
1 otherwise, 2 if the deployment could not run. Time: about 2 minutes for
the smoke budget on 2 cores (start ~15 s; ServerApp and ClientApp processes ~10-20 s each; up to
60 s until the SuperLink reports the killed node); ``--time-limit`` bounds the whole run, and every
process started is ended on exit, also on error or Ctrl-C.

    python -m ddapps.federated.deploy_local --nodes 3 --kill-partition 2 --out runs/deploy-local
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from ddapps.errors import ConfigError
from ddapps.federated.local_cluster import CONNECTION, LocalCluster, executable, wait_for
from ddapps.federated.settings import FederatedConfig, budget_config

APP = Path(__file__).resolve().parents[2] / "apps" / "federated"
RUN_ID = re.compile(r"Successfully started run (\d+)")
RECEIVED = "Received successfully"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    p = argparse.ArgumentParser(prog="python -m ddapps.federated.deploy_local", description=__doc__.split("\n")[0])
    p.add_argument("--nodes", type=int, default=3, help="SuperNodes = clients (default 3)")
    p.add_argument(
        "--kill-partition",
        type=int,
        default=None,
        help="partition whose SuperNode is killed (default: the last; -1: none)",
    )
    p.add_argument("--mode", default="oneshot", help="federated mode of the run (default oneshot)")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--budget", default="smoke", help="small | smoke | paper (default smoke)")
    p.add_argument("--dataset", default="digits", help="default digits (bundled with scikit-learn: no files needed)")
    p.add_argument("--data-dir", default="", help="dataset folder, made absolute (default: $DDAPPS_DATA)")
    p.add_argument("--round-timeout", type=float, default=120.0, help="seconds (default 120)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any run-config key (JSON value)")
    p.add_argument("--app", type=Path, default=APP, help="the Flower app (default: apps/federated of this checkout)")
    p.add_argument("--out", type=Path, default=Path("runs/deploy-local"))
    p.add_argument("--time-limit", type=float, default=900.0, help="seconds for everything (default 900)")
    return p.parse_args(argv)


def run_config(args: argparse.Namespace, app_out: Path) -> dict[str, Any]:
    """The flat run config: the budget, this deployment's clients and options, then ``--set``."""
    from ddapps.cli.common import parse_key_values

    data_dir = str(Path(args.data_dir).resolve()) if args.data_dir else ""
    base = budget_config(
        args.budget, mode=args.mode, dataset=args.dataset, data_dir=data_dir, clients=args.nodes,
        rounds=args.rounds, round_timeout=args.round_timeout,
    )  # fmt: skip
    config = FederatedConfig.from_flat(base.to_flat() | parse_key_values(args.set, "--set"))  # validated here
    return config.to_flat() | {"out-dir": str(app_out.resolve())}


def toml_value(value: Any) -> str:
    """A TOML literal of a run-config value (bool, int, float or str)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))  # JSON string escapes are TOML basic-string escapes


def flwr_ls(cluster: LocalCluster, run_id: int) -> dict[str, Any]:
    """``flwr ls --run-id`` as JSON: the run's status and the Fleet traffic the SuperLink counted."""
    args = [executable("flwr"), "ls", CONNECTION, "--run-id", str(run_id), "--format", "json"]
    done = subprocess.run(args, capture_output=True, text=True, env=cluster.env, timeout=60, check=False)
    try:
        doc = json.loads(done.stdout)
        (run,) = doc["runs"]
    except (json.JSONDecodeError, KeyError, ValueError) as err:
        raise RuntimeError(f"flwr ls gave no run {run_id}: {done.stdout[-500:]} {done.stderr[-500:]}") from err
    return dict(run)


def deploy(args: argparse.Namespace) -> dict[str, Any]:
    """Run the scenario; return what ``deployment.json`` holds."""
    if not (args.app / "pyproject.toml").exists():
        raise ConfigError(f"no Flower app at {args.app} (pass --app apps/federated)")
    kill = args.nodes - 1 if args.kill_partition is None else args.kill_partition
    if kill >= args.nodes or kill < -1:
        raise ConfigError(f"--kill-partition must lie in [-1, {args.nodes}), got {kill}")
    out = args.out.resolve()
    logs, home = out / "logs", out / "flwr-home"
    config = run_config(args, out / "app")
    logs.mkdir(parents=True, exist_ok=True)
    (logs / "run-config.toml").write_text("".join(f"{k} = {toml_value(v)}\n" for k, v in config.items()))
    start = time.monotonic()
    deadline = start + args.time_limit
    report: dict[str, Any] = {"nodes": args.nodes, "kill_partition": kill, "run_config": config}
    print(f"deploy_local: {args.nodes} SuperNodes, mode {args.mode}, budget {args.budget}; expected ~2-3 min, "
          f"limit {args.time_limit:.0f} s; logs in {logs}", flush=True)  # fmt: skip
    with LocalCluster(args.nodes, logs, home, startup_seconds=min(180.0, args.time_limit)) as cluster:
        report |= {"superlink_port": cluster.port, "node_ids": {n.partition: n.node_id for n in cluster.nodes}}
        print(f"SuperLink on 127.0.0.1:{cluster.port}; SuperNodes {report['node_ids']} "
              f"({time.monotonic() - start:.0f} s)", flush=True)  # fmt: skip
        flwr = cluster.start(
            [executable("flwr"), "run", str(args.app.resolve()), CONNECTION, "--stream",
             "--run-config", str(logs / "run-config.toml")],
            logs / "flwr-run.log",
        )  # fmt: skip
        if kill >= 0:
            victim = cluster.nodes[kill]
            wait_for(lambda: RECEIVED in victim.log.read_text(errors="replace"), "the instruction to reach the "
                     "SuperNode to kill", deadline, flwr)  # fmt: skip
            cluster.kill_node(victim)
            report["killed"] = {"partition": kill, "node_id": victim.node_id, "at_s": time.monotonic() - start}
            print(f"killed SuperNode of partition {kill} (node {victim.node_id}) after it received its instruction "
                  f"({report['killed']['at_s']:.0f} s)", flush=True)  # fmt: skip
        try:
            flwr.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"the run did not finish within --time-limit {args.time_limit:.0f} s") from None
        found = RUN_ID.search((logs / "flwr-run.log").read_text(errors="replace"))
        if found is None:
            raise RuntimeError(f"flwr run started no run (see {logs / 'flwr-run.log'})")
        report["run_id"] = int(found.group(1))
        report["flwr_ls"] = flwr_ls(cluster, report["run_id"])
    report["process_groups"] = cluster.started
    report["seconds"] = time.monotonic() - start
    return report | check(report, out / "app" / "results.json")


def check(report: dict[str, Any], results: Path) -> dict[str, Any]:
    """The three checks of the module docstring, with the numbers they compare."""
    run = report["flwr_ls"]
    counted = run.get("network-traffic", {})
    traffic = {"in": counted.get("inbound-bytes"), "out": counted.get("outbound-bytes")}
    found: dict[str, Any] = {"status": run.get("status"), "superlink_traffic": traffic}
    doc = json.loads(results.read_text()) if results.exists() else {"rows": []}
    row = doc["rows"][0] if doc["rows"] else {}
    log = row.get("runs", [{}])[0]
    found |= {key: log.get(key) for key in ("bytes_up", "bytes_down", "wire_bytes_up", "wire_bytes_down")}
    found |= {"final_accuracy": log.get("final_accuracy"), "failures": row.get("failures", [])}
    killed = report.get("killed")
    found["checks"] = {
        "completed": str(found["status"]).startswith("finished:completed") and bool(row),
        "failure_recorded": killed is None or any(f["node_id"] == killed["node_id"] for f in found["failures"]),
        "wire_bytes_match": (found["wire_bytes_up"], found["wire_bytes_down"]) == (traffic["in"], traffic["out"]),
    }
    return found


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Run, write ``deployment.json``, print the summary; 0 iff every check holds."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)  # SystemExit unwinds LocalCluster: its processes end too
    try:
        report = deploy(args)
    except (ConfigError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out = args.out.resolve()
    (out / "deployment.json").write_text(json.dumps(report, indent=2, sort_keys=True))
    traffic = report["superlink_traffic"]
    print(f"run {report['run_id']}: {report['status']} in {report['seconds']:.0f} s; final accuracy "
          f"{report['final_accuracy']}")  # fmt: skip
    for failure in report["failures"]:
        print(f"failure recorded: {failure}")
    print(f"bytes (records):      up {report['bytes_up']}, down {report['bytes_down']}")
    print(f"wire bytes (app):     up {report['wire_bytes_up']}, down {report['wire_bytes_down']}")
    print(f"SuperLink traffic:    in {traffic['in']}, out {traffic['out']}")
    gap = (
        (report["wire_bytes_up"] or 0) - (traffic["in"] or 0),
        (report["wire_bytes_down"] or 0) - (traffic["out"] or 0),
    )
    print(f"app - SuperLink:      up {gap[0]}, down {gap[1]}")
    print(f"checks: {report['checks']}; wrote {out / 'deployment.json'}")
    checks = report["checks"]
    return 0 if checks["completed"] and checks["failure_recorded"] else 1


if __name__ == "__main__":
    sys.exit(main())
