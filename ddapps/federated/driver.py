"""Run one federated mode for one seed: in-process (``InProcessGrid``) or on Ray (``run_simulation``).

Both call the same ClientApp and ServerApp logic. The in-process engine runs the nodes one after
another in this process (no actors, no serialisation): it is what the scripted comparisons use on
a CPU-bound machine. The Ray engine is Flower's simulation runtime, with one actor per CPU.
"""

from __future__ import annotations

from ddapps.errors import ConfigError
from ddapps.federated.settings import FederatedConfig
from ddapps.federated.wire_bytes import RunLog

ENGINES = ("inprocess", "ray")


def run_inprocess(config: FederatedConfig) -> RunLog:
    """One run with the nodes called directly, in order."""
    from ddapps.federated.client_app import app as client_app
    from ddapps.federated.grid import InProcessGrid
    from ddapps.federated.server_app import run_server

    return run_server(InProcessGrid(client_app, config.clients), config)


def run_ray(config: FederatedConfig, *, num_cpus: int = 2) -> RunLog:
    """One run on Flower's simulation engine (Ray); each ClientApp actor gets one CPU."""
    from flwr.simulation import run_simulation

    from ddapps.federated.client_app import app as client_app
    from ddapps.federated.server_app import make_server_app

    sink: list[RunLog] = []
    run_simulation(
        server_app=make_server_app(config, sink),
        client_app=client_app,
        num_supernodes=config.clients,
        backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0}, "init_args": {"num_cpus": num_cpus}},
    )
    if not sink:
        raise RuntimeError("the Flower simulation ended without a result (see its log above)")
    return sink[0]


def run_once(config: FederatedConfig, engine: str = "inprocess") -> RunLog:
    """Dispatch to the engine called ``engine``."""
    runners = {"inprocess": run_inprocess, "ray": run_ray}
    if engine not in runners:
        raise ConfigError(f"unknown engine {engine!r}; choose one of: {', '.join(ENGINES)}")
    return runners[engine](config)
