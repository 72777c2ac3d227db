"""Errors that ddapps raises for bad input.

Every user-facing failure is a :class:`DDAppsError`; the CLI prints its message as one line and
exits with status 2. Library code never calls ``exit()``.
"""

from __future__ import annotations


class DDAppsError(Exception):
    """Base class: a problem with the user's input, files or configuration."""


class ConfigError(DDAppsError, ValueError):
    """An argument or configuration value is invalid (unknown name, bad IPC, wrong shape...)."""


class DataError(DDAppsError):
    """A dataset file is missing, corrupted, or holds invalid values (NaN, wrong shape)."""


class SyntheticSetError(DDAppsError):
    """A synthetic-set file is missing, truncated, malformed or hostile."""
