"""A Flower deployment on loopback: one ``flower-superlink`` and N ``flower-supernode`` processes.

Flower 1.42 serves the SuperLink's Fleet, Control and Runtime APIs on one HTTP port (protobuf
over HTTP). :class:`LocalCluster` picks free loopback ports, starts the SuperLink and one
SuperNode per partition (``--node-config "partition-id=p num-partitions=N"``), each in its own
process group with its log in ``log_dir``, writes a ``$FLWR_HOME/config.toml`` connection named
:data:`CONNECTION` for ``flwr run``, and on exit (also on error) ends every process group it
started: SIGTERM, then SIGKILL after a grace period. The executables are the ones next to the
running Python (the virtual environment's), also first on the children's ``PATH``, since the
SuperLink and SuperNodes start ``flwr-serverapp`` / ``flwr-clientapp`` processes themselves.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Callable, TypeVar

from ddapps.errors import ConfigError

CONNECTION = "ddapps-local"
"""The SuperLink connection ``flwr run apps/federated ddapps-local`` uses (in ``$FLWR_HOME``)."""
NODE_ID = re.compile(r"SuperNode ID: (\d+)")
T = TypeVar("T")


def executable(name: str) -> str:
    """The path of Flower's ``name`` script: next to this Python, else on ``PATH``."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise ConfigError(f"{name} not found next to {sys.executable} or on PATH; install 'ddapps[federated]'")
    return found


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], T], what: str, deadline: float, proc: subprocess.Popen[bytes] | None = None) -> T:
    """Poll ``check()`` every 0.1 s until it returns something truthy; RuntimeError at ``deadline``
    (or as soon as ``proc`` exits)."""
    while True:
        value = check()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with code {proc.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not done before the time limit")
        time.sleep(0.1)


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Node:
    """One SuperNode process: its partition, Runtime API port, log, Flower node id."""

    partition: int
    port: int
    log: Path
    proc: subprocess.Popen[bytes]
    node_id: int = 0


@dataclass
class LocalCluster:
    """SuperLink + ``num_nodes`` SuperNodes on loopback (a context manager; see the module docstring)."""

    num_nodes: int
    log_dir: Path
    flwr_home: Path
    data_dir: str = ""
    startup_seconds: float = 120.0
    port: int = 0
    nodes: list[Node] = field(default_factory=list)
    started: list[int] = field(default_factory=list)
    """Process-group ids (= leader pids) of everything started, also after :meth:`stop`."""
    _procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        """The children's environment: ``FLWR_HOME``, the venv's scripts first on ``PATH``, and (unless
        set) Flower's telemetry and update check off: a loopback deployment does not phone home."""
        bin_dir = str(Path(executable("flower-superlink")).parent)
        path = os.pathsep.join([bin_dir, os.environ.get("PATH", "")])
        quiet = {"FLWR_TELEMETRY_ENABLED": "0", "FLWR_DISABLE_UPDATE_CHECK": "1"}
        return quiet | dict(os.environ) | {"FLWR_HOME": str(self.flwr_home), "PATH": path, "PYTHONUNBUFFERED": "1"}

    def start(self, args: list[str], log: Path) -> subprocess.Popen[bytes]:
        """Start ``args`` in a new process group, output to ``log``; it is ended on exit."""
        with open(log, "wb") as out:
            proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        self._procs.append(proc)
        self.started.append(proc.pid)
        return proc

    def __enter__(self) -> "LocalCluster":
        try:
            self._start_all()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def _start_all(self) -> None:
        if self.num_nodes < 1:
            raise ConfigError(f"a local deployment needs at least one SuperNode, got {self.num_nodes}")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.flwr_home.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.startup_seconds
        self.port = free_port()
        link = self.start(
            [executable("flower-superlink"), "--insecure", "--host", "127.0.0.1", "--port", str(self.port),
             "--disable-runtime-dependency-installation"],
            self.log_dir / "superlink.log",
        )  # fmt: skip
        wait_for(lambda: _listening(self.port), "SuperLink start", deadline, link)
        for partition in range(self.num_nodes):
            config = f"partition-id={partition} num-partitions={self.num_nodes}"
            if self.data_dir:
                config += f' data-dir="{self.data_dir}"'
            port, log = free_port(), self.log_dir / f"supernode-{partition}.log"
            args = [executable("flower-supernode"), "--insecure", "--superlink", f"127.0.0.1:{self.port}",
                    "--host", "127.0.0.1", "--port", str(port), "--node-config", config]  # fmt: skip
            self.nodes.append(Node(partition, port, log, self.start(args, log)))
        for node in self.nodes:
            node.node_id = wait_for(partial(_logged_node_id, node.log), "SuperNode start", deadline, node.proc)
        (self.flwr_home / "config.toml").write_text(
            f'[superlink]\ndefault = "{CONNECTION}"\n\n'
            f'[superlink.{CONNECTION}]\naddress = "127.0.0.1:{self.port}"\ninsecure = true\n'
        )

    def kill_node(self, node: Node) -> None:
        """SIGKILL ``node``'s process group (the SuperNode and the ClientApp it runs): a crash."""
        _signal_group(node.proc, signal.SIGKILL)

    def stop(self, grace: float = 10.0) -> None:
        """End every process group started (SIGTERM; SIGKILL after ``grace`` seconds)."""
        for proc in reversed(self._procs):
            _signal_group(proc, signal.SIGTERM)
        end = time.monotonic() + grace
        for proc in self._procs:
            try:
                proc.wait(timeout=max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            _signal_group(proc, signal.SIGKILL)
            proc.wait()
        self._procs.clear()


def _logged_node_id(log: Path) -> int:
    """The node id a SuperNode logged (0 while it has not)."""
    found = NODE_ID.search(log.read_text(errors="replace"))
    return int(found.group(1)) if found else 0


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Send ``sig`` to the process group led by ``proc`` (started with ``start_new_session``)."""
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
