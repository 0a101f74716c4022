"""PPO-Lagrangian configuration and state (see :mod:`jaxrl.agents.ppo_lagrangian`)."""

from __future__ import annotations

import math
from typing import Any

from flax import struct

from jaxrl import config as config_lib
from jaxrl.agents import constrained, ppo
from jaxrl.config import static
from jaxrl.errors import ConfigError
from jaxrl.types import Array, ArrayTree, PRNGKey

__all__ = [
    "METHODS",
    "COST_DISCOUNTS",
    "Config",
    "Params",
    "State",
    "cartpole_config",
]


METHODS = constrained.METHODS
"""``Config.method``: projected GDA or optimistic (ReLOAD) multiplier steps."""

COST_DISCOUNTS = ("agent", "env")
"""``Config.cost_discount``: the cost GAE's discount (agent's γ or the budget's γ_c)."""

_EXTRAS = ("cost", "discounted_cost")
_USER = "jaxrl.agents.ppo_lagrangian"


@struct.dataclass
class Config:
    """PPO-Lagrangian configuration: PPO's config plus the cost critic and multiplier.

    Attributes:
      method: static, ``"lagrangian"`` or ``"reload"`` (:data:`METHODS`).
      cost_discount: static, ``"agent"`` or ``"env"`` (:data:`COST_DISCOUNTS`).
      optimistic_policy: static, with ``"reload"``: the policy steps on the
        extrapolated multiplier ``2 lambda_{k+1} - lambda_k`` (module docstring).
      base: :class:`jaxrl.agents.ppo.Config` (shapes, loops, PPO hyperparameters).
      eta_lambda: eta_lambda >= 0, multiplier step per observed violation.
      lambda0: lambda_0 in ``[0, lambda_max]``, initial multiplier.
      lambda_max: upper bound of the multiplier projection.
      cost_vf_coef: weight of the cost critic's value loss.
    """

    method: str = static(default="lagrangian")
    cost_discount: str = static(default="agent")
    optimistic_policy: bool = static(default=True)
    base: ppo.Config = struct.field(default_factory=ppo.Config)
    eta_lambda: float = 0.01  # η_λ
    lambda0: float = 0.0  # λ_0
    lambda_max: float = 100.0  # λ_max
    cost_vf_coef: float = 0.5  # c_v of the cost critic

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
        if self.method not in METHODS:
            raise ConfigError(
                f"method must be one of {', '.join(METHODS)}, got {self.method!r}"
            )
        if self.cost_discount not in COST_DISCOUNTS:
            raise ConfigError(
                f"cost_discount must be one of {', '.join(COST_DISCOUNTS)}, got "
                f"{self.cost_discount!r}"
            )
        if not isinstance(self.optimistic_policy, bool):
            raise ConfigError(
                f"optimistic_policy must be a bool, got {self.optimistic_policy!r}"
            )
        if not isinstance(self.base, ppo.Config):
            raise ConfigError(
                f"base must be an jaxrl.agents.ppo.Config, got {type(self.base).__name__}"
            )
        config_lib.validate(self.base)
        config_lib.check_range("eta_lambda", self.eta_lambda, 0.0, math.inf)
        # inf: no upper bound
        config_lib.check_positive("lambda_max", self.lambda_max, allow_inf=True)
        config_lib.check_range("lambda0", self.lambda0, 0.0, math.inf)
        config_lib.check_range("cost_vf_coef", self.cost_vf_coef, 0.0, math.inf)
        if config_lib.is_concrete(self.lambda0) and config_lib.is_concrete(
            self.lambda_max
        ):
            if float(self.lambda0) > float(self.lambda_max):
                raise ConfigError(
                    f"lambda0 must not exceed lambda_max, got {self.lambda0} > "
                    f"{self.lambda_max}"
                )


def cartpole_config(method: str = "lagrangian", **overrides: Any) -> Config:
    """Return the PPO-Lagrangian preset for ``CartPole-Constrained-v0``.

    PPO's CartPole preset (:func:`jaxrl.agents.ppo.cartpole_config`) with 8
    environments instead of 4 (twice as many finished episodes per multiplier
    step; 10 chunks of 49 rollouts of 8 x 128 steps, 501,760 steps), and the
    multiplier at ``eta_lambda = 0.002`` per observed violation (in cost units
    per episode, up to ~500 on CartPole), ``lambda_max = 10``.

    Args:
      method: ``"lagrangian"`` or ``"reload"``.
      **overrides: top-level fields to replace (``base=...`` included).
    """
    config = Config(
        method=method,
        base=ppo.cartpole_config(num_envs=8, iters_per_chunk=49),
        eta_lambda=0.002,
        lambda0=0.0,
        lambda_max=10.0,
    )
    return config.replace(**overrides)


@struct.dataclass
class Params:
    """What acting and the loss need: the networks and the policy's multiplier.

    Attributes:
      net: :class:`ActorCostCritic` parameters (actor, reward and cost critics).
      lam: ``[]`` the multiplier weighting the cost advantage in the policy loss.
    """

    net: ArrayTree
    lam: Array


@struct.dataclass
class State:
    """Training state (one seed; ``vmap`` adds ``[S]``).

    Attributes:
      base: PPO's state (its ``params`` hold the cost critic too, its
        ``opt_state`` is :func:`optimizer`'s).
      lam: ``[]`` float32 multiplier :math:`\\lambda_k`.
      prev_lam: ``[]`` float32 multiplier before the last :func:`multiplier_step`
        (:math:`\\lambda_{k-1}`, for ReLOAD's extrapolated policy multiplier).
      prev_violation: ``[]`` float32 last observed violation (ReLOAD's memory).
      num_violations: ``[]`` int32 observed violations (multiplier steps).
      episode_cost: ``[E]`` float32 discounted cost of each running episode.
      cost_gamma: ``[]`` float32 the budget's :math:`\\gamma_c` (from the env
        params at :func:`init`; the cost GAE's discount with
        ``cost_discount="env"``).
    """

    base: ppo.State
    lam: Array
    prev_lam: Array
    prev_violation: Array
    num_violations: Array
    episode_cost: Array
    cost_gamma: Array

    @property
    def params(self) -> Params:
        """:class:`Params` ``(net, lam)``."""
        return Params(net=self.base.params, lam=self.lam)

    @property
    def key(self) -> PRNGKey:
        """The agent's key (the base state's)."""
        return self.base.key
