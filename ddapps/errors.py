"""Errors that ddapps raises for bad input.

Every user-facing failure is a :class:`DDAppsError`; the CLI prints its message as one line and
exits with status 2. Library code never calls ``exit()``.
"""

from __future__ import annotations

import sys
from typing import Callable


class DDAppsError(Exception):
    """Base class: a problem with the user's input, files or configuration."""


class ConfigError(DDAppsError, ValueError):
    """An argument or configuration value is invalid (unknown name, bad IPC, wrong shape...)."""


class DataError(DDAppsError):
    """A dataset file is missing, corrupted, or holds invalid values (NaN, wrong shape)."""


class SyntheticSetError(DDAppsError):
    """A synthetic-set file is missing, truncated, malformed or hostile."""


def exit_status(command: Callable[[], int | None]) -> int:
    """Run a command-line tool's body: its status (0 for ``None``), or 2 after printing a
    :class:`DDAppsError` as one ``ddapps: error: ...`` line on stderr."""
    try:
        return int(command() or 0)
    except DDAppsError as err:
        print(f"ddapps: error: {err}", file=sys.stderr)
        return 2
