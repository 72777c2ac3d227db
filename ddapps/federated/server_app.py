"""The ServerApp: run one federated mode for one seed and report what it measured.

``app`` reads its :class:`FederatedConfig` from ``context.run_config`` (the app's
``[tool.flwr.app.config]``, overridable with ``flwr run --run-config``); the extra key
``out-dir`` (an absolute path) makes it write ``results.json``, ``report.md`` and the plot there.
:func:`make_server_app` binds a config and a sink instead, for ``run_simulation`` and tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from ddapps.federated import task
from ddapps.federated.distilled_rounds import run_distilled
from ddapps.federated.fedavg import run_fedavg
from ddapps.federated.modes import mode_spec
from ddapps.federated.settings import FederatedConfig
from ddapps.federated.wire_bytes import RunLog

SERVER_LOOPS: dict[str, Callable[..., RunLog]] = {"distilled": run_distilled, "weights": run_fedavg}
"""Server loop by :attr:`ddapps.federated.modes.ModeSpec.loop`."""


def run_server(grid: Grid, config: FederatedConfig) -> RunLog:
    """The server side of mode ``config.mode`` on ``grid``."""
    task.set_threads(config)
    bench = task.load_benchmark(config)
    return SERVER_LOOPS[mode_spec(config.mode).loop](grid, config, bench)


def make_server_app(config: FederatedConfig, sink: list[RunLog]) -> ServerApp:
    """A ServerApp bound to ``config`` that appends its :class:`RunLog` to ``sink``."""
    server = ServerApp()

    @server.main()
    def main(grid: Grid, context: Context) -> None:
        sink.append(run_server(grid, config))

    return server


app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Entry point for ``flwr run``: config from the run config, outputs to ``out-dir`` if given."""
    values = dict(context.run_config)
    out_dir = str(values.pop("out-dir", "") or "")
    config = FederatedConfig.from_flat(values)
    log = run_server(grid, config)
    if out_dir:
        from ddapps.federated.experiment import write_experiment

        write_experiment(Path(out_dir), config, {config.mode: [log]}, command=f"flwr run ({config.mode})")
