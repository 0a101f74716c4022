"""Entry checks of the ops' documented hyperparameter domains (private).

Each helper raises :class:`~jaxrl.errors.ConfigError` naming the argument when
it holds a concrete (eager) value outside its domain, and does nothing for a
tracer: under ``jit``, ``vmap`` or ``grad`` the check is skipped, so compiled
code and its cost are unchanged (see :func:`jaxrl.config.check_range`).
"""

from __future__ import annotations

import math

from jaxrl.config import check_range
from jaxrl.types import ArrayLike

__all__: list[str] = []


def check_q(q: ArrayLike) -> None:
    """Tsallis entropic index ``q >= 1`` (finite)."""
    check_range("q", q, 1.0)


def check_tau(tau: ArrayLike, name: str = "tau") -> None:
    """Temperature ``tau >= 0`` (finite)."""
    check_range(name, tau, 0.0)


def check_unit(name: str, value: ArrayLike) -> None:
    """A rate or scaling in ``[0, 1]`` (Munchausen ``alpha``, Polyak ``tau``, ...)."""
    check_range(name, value, 0.0, 1.0)


def check_l0(l0: ArrayLike) -> None:
    """Log-policy clip ``l0 <= 0``; ``-inf`` (no clipping) is allowed."""
    check_range("l0", l0, -math.inf, 0.0, allow_inf=True)
