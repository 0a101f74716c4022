"""CAL configuration, presets and training state (see :mod:`jaxrl.agents.cal`)."""

from __future__ import annotations

from typing import Any

from flax import struct

from jaxrl import config as config_lib
from jaxrl.agents import sac
from jaxrl.config import static
from jaxrl.errors import ConfigError
from jaxrl.types import Array

__all__ = [
    "Config",
    "Params",
    "OptState",
    "Targets",
    "State",
    "pendulum_config",
    "pendulum_lagrangian_config",
]


@struct.dataclass
class Config:
    """CAL hyperparameters: SAC's config plus the cost ensemble and the multiplier.

    The budget is not here: it is the constrained environment's per-episode
    ``cost_limit`` (``jaxrl.envs.constrained.budget_from_params``), converted to
    the critics' scale by :func:`jaxrl.ops.cal.q_budget` at :func:`init`.

    Attributes:
      base: :class:`jaxrl.agents.sac.Config` (networks, loop, SAC's
        hyperparameters; the cost critics use its ``lr``, ``gamma``, ``tau``).
      num_cost_critics: static ``E >= 1``, the cost critics of the ensemble.
      k: ``k >= 0``, conservatism of :math:`Q_c^{UCB} = \\mu + k \\sigma`.
      c: ``c >= 0``, convexity parameter of the augmented Lagrangian (0: the
        Lagrangian).
      eta_lambda: ``>= 0``, multiplier step per unit of violation, per update.
      lambda0: initial multiplier, in ``[0, lambda_max]``.
      lambda_max: upper bound of the multiplier projection (``inf`` allowed).
    """

    base: sac.Config = struct.field(default_factory=sac.Config)
    num_cost_critics: int = static(default=4)  # E
    k: float = 0.5  # k, UCB width in ensemble standard deviations
    c: float = 10.0  # c, augmented-Lagrangian convexity
    eta_lambda: float = 1e-3  # η_λ
    lambda0: float = 0.0  # λ_0
    lambda_max: float = 100.0  # λ_max

    @property
    def num_chunks(self) -> int:
        """Static number of chunks (the base config's)."""
        return self.base.num_chunks

    @property
    def iters_per_chunk(self) -> int:
        """Static iterations per chunk (the base config's)."""
        return self.base.iters_per_chunk

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid field."""
        if not isinstance(self.base, sac.Config):
            raise ConfigError(
                f"base must be a jaxrl.agents.sac.Config, got {type(self.base).__name__}"
            )
        self.base.validate()
        config_lib.check_integer("num_cost_critics", self.num_cost_critics)
        config_lib.check_range("k", self.k, 0.0)
        config_lib.check_range("c", self.c, 0.0)
        config_lib.check_range("eta_lambda", self.eta_lambda, 0.0)
        config_lib.check_positive("lambda_max", self.lambda_max, allow_inf=True)
        config_lib.check_range("lambda0", self.lambda0, 0.0)
        if config_lib.is_concrete(self.lambda0) and config_lib.is_concrete(
            self.lambda_max
        ):
            if float(self.lambda0) > float(self.lambda_max):
                raise ConfigError(
                    f"lambda0 must not exceed lambda_max, got {self.lambda0} > "
                    f"{self.lambda_max}"
                )


def pendulum_config(**overrides: Any) -> Config:
    """Return the CAL preset for ``Pendulum-Constrained-v0``.

    SAC's Pendulum preset (:func:`jaxrl.agents.sac.pendulum_config`, 64x64
    networks, lr 1e-3, 1,000 uniform-action steps) with 10k env steps, an
    ensemble of ``E = 4`` cost critics, ``k = 0.5``, ``c = 10`` and
    ``eta_lambda = 1e-3`` per update (our choices for this task, not tuned
    values from the paper, whose tasks are Safety-Gym and MuJoCo).

    Args:
      **overrides: top-level fields to replace (``base=...`` included).
    """
    config = Config(
        base=sac.pendulum_config(num_chunks=5, iters_per_chunk=2_000),
        num_cost_critics=4,
        k=0.5,
        c=10.0,
        eta_lambda=1e-3,
        lambda0=0.0,
        lambda_max=100.0,
    )
    return config.replace(**overrides)


def pendulum_lagrangian_config(**overrides: Any) -> Config:
    """Return SAC-Lagrangian on ``Pendulum-Constrained-v0``: CAL with ``E=1, k=c=0``.

    One cost critic, no UCB and the plain Lagrangian term ``lambda * Q_c`` in
    the actor loss; everything else as :func:`pendulum_config`.

    Args:
      **overrides: top-level fields to replace.
    """
    config = pendulum_config(num_cost_critics=1, k=0.0, c=0.0)
    return config.replace(**overrides)


# ----------------------------------------------------------------------------- state


@struct.dataclass
class Params(sac.Params):
    """SAC's :class:`~jaxrl.agents.sac.Params` plus the cost ensemble and multiplier.

    Attributes:
      cost_critic: the ``E`` cost critics' parameters (a
        :class:`jaxrl.agents.sac.Critic` with ``E`` heads).
      lam: ``[]`` multiplier :math:`\\lambda` (set by :func:`update`, never by a
        gradient).
      budget: ``[]`` the budget :math:`\\xi` on the critics' scale (constant;
        :func:`jaxrl.ops.cal.q_budget`, saturated to the float range for
        ``cost_limit = inf``).
    """

    cost_critic: Any
    lam: Array
    budget: Array


@struct.dataclass
class OptState(sac.OptState):
    """SAC's Adam states plus the cost critics'."""

    cost_critic: Any


@struct.dataclass
class Targets:
    """Polyak-averaged target parameters of the reward and the cost critics."""

    critic: Any
    cost_critic: Any


@struct.dataclass
class State(sac.State):
    """CAL training state: :class:`jaxrl.agents.sac.State` with CAL's contents.

    ``params`` is a :class:`Params`, ``target_params`` a :class:`Targets`,
    ``opt_state`` an :class:`OptState`, and the replay stores
    ``extras["cost"]``.
    """
