"""The library's error type for bad user input.

Every check on user input (unknown environment, invalid hyperparameter, shape
mismatch, corrupt checkpoint) raises :class:`ConfigError`, a ``ValueError`` whose
message names the problem in one line. The command line prints that line and
exits with status 2.
"""

from __future__ import annotations

__all__ = ["ConfigError"]


class ConfigError(ValueError):
    """Invalid user input: the message names the field or argument at fault."""
