"""The ``ddapps`` command line: core commands plus every command registered as an entry point.

Every command reports bad input as one ``ddapps: error: ...`` line on stderr and exits with
status 2, and writes its outputs atomically into ``--out`` only once they are complete.

Layout (bottom to top): :mod:`ddapps.cli.common` (parser class, shared argument groups, run
set-up, data loading), :mod:`ddapps.cli.commands` (``list``, ``distill``, ``evaluate``, ``demo``,
``bench``), :mod:`ddapps.cli.experts`, and this module's dispatch. Other commands -- the
application modules', or a third-party package's -- are found through the
``ddapps.commands`` entry-point group (as pytest finds plugins): each names a module with
``add_parser(subparsers) -> parser`` and ``run(args) -> int`` that imports its framework
(avalanche, nni, flwr) only inside ``run``, so ``ddapps --help`` works without the extras::

    [project.entry-points."ddapps.commands"]
    continual = "ddapps.continual.cli"
"""

from __future__ import annotations

import logging
import sys
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any, Sequence

from ddapps.cli.commands import add_core_parsers
from ddapps.cli.common import EXIT_USAGE, Parser
from ddapps.errors import DDAppsError

ENTRY_POINT_GROUP = "ddapps.commands"


def command_modules() -> list[Any]:
    """The modules of the ``ddapps.commands`` entry points, sorted by name (``experts`` first if absent)."""
    found = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    found.setdefault("experts", "ddapps.cli.experts")  # core commands: present even without metadata
    found.setdefault("teacher", "ddapps.cli.teacher")
    found.setdefault("card", "ddapps.cli.card")
    modules = []
    for name in sorted(found):
        try:
            modules.append(import_module(found[name]))
        except ModuleNotFoundError as err:
            if err.name is None or not found[name].startswith(err.name):
                raise  # a real missing dependency inside an existing module
    return modules


def build_parser() -> Parser:
    """The full ``ddapps`` parser (core commands, then the registered ones)."""
    parser = Parser(prog="ddapps", description="Dataset distillation for continual learning, NAS and FL.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    add_core_parsers(sub)
    for module in command_modules():
        module.add_parser(sub).set_defaults(run=module.run)
    return parser


def configure_logging(quiet: bool) -> None:
    """Library code logs to ``ddapps.*`` loggers; the command line shows INFO (WARNING with ``--quiet``)."""
    logger = logging.getLogger("ddapps")
    if not any(getattr(h, "_ddapps", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._ddapps = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ddapps`` console script."""
    from ddapps.utils.precision import use_precision

    args = build_parser().parse_args(argv)
    configure_logging(bool(getattr(args, "quiet", False)))
    try:
        with use_precision(getattr(args, "precision", "fp32")):
            return int(args.run(args))
    except DDAppsError as err:
        print(f"ddapps: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("ddapps: interrupted", file=sys.stderr)
        return 130
