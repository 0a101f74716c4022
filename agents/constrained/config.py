"""Configuration, parameters and state of :mod:`jaxrl.agents.constrained`."""

from __future__ import annotations

import math
from typing import Any

from flax import struct

from jaxrl import config as config_lib
from jaxrl.agents import _value_loop, mvi
from jaxrl.config import static
from jaxrl.errors import ConfigError
from jaxrl.types import Array, ArrayTree, PRNGKey

__all__ = [
    "METHODS",
    "BASE_AGENTS",
    "CRITICS",
    "Config",
    "Params",
    "State",
    "cartpole_config",
]

METHODS = ("lagrangian", "reload")
"""``Config.method``: projected GDA or optimistic (ReLOAD) multiplier steps."""

BASE_AGENTS = ("mdqn",)
"""``Config.base_agent``: the policy player (``"mdqn"``: :mod:`jaxrl.agents.mvi`)."""

CRITICS = ("penalised", "separate")
"""``Config.critic``: one critic of ``r - lambda c``, or reward and cost critics."""


@struct.dataclass
class Config:
    """Constrained-agent configuration: the base agent's config plus the multiplier.

    Attributes:
      method: static, ``"lagrangian"`` or ``"reload"`` (:data:`METHODS`).
      base_agent: static, the policy player (:data:`BASE_AGENTS`).
      critic: static, ``"penalised"`` (one critic of ``r - lambda c``) or
        ``"separate"`` (reward and cost heads, :data:`CRITICS`).
      base: the base agent's config (:class:`jaxrl.agents.mvi.Config`); its static
        fields set shapes and loop lengths, its traced fields are sweepable.
      eta_lambda: eta_lambda >= 0, multiplier step size per observed violation
        (0 freezes the multiplier at ``lambda0``).
      lambda0: lambda_0 in ``[0, lambda_max]``, initial multiplier.
      lambda_max: upper bound of the multiplier projection (``inf``: none).
    """

    method: str = static(default="lagrangian")
    base_agent: str = static(default="mdqn")
    critic: str = static(default="penalised")
    base: mvi.Config = struct.field(default_factory=mvi.Config)
    eta_lambda: float = 0.01  # eta_lambda
    lambda0: float = 0.0  # lambda_0
    lambda_max: float = 100.0  # lambda_max

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
        if self.base_agent not in BASE_AGENTS:
            raise ConfigError(
                f"base_agent must be one of {', '.join(BASE_AGENTS)}, got "
                f"{self.base_agent!r}"
            )
        if self.critic not in CRITICS:
            raise ConfigError(
                f"critic must be one of {', '.join(CRITICS)}, got {self.critic!r}"
            )
        if not isinstance(self.base, mvi.Config):
            raise ConfigError(
                f"base must be an jaxrl.agents.mvi.Config for base_agent='mdqn', got "
                f"{type(self.base).__name__}"
            )
        config_lib.validate(self.base)
        config_lib.check_range("eta_lambda", self.eta_lambda, 0.0, math.inf)
        # inf: no upper bound
        config_lib.check_positive("lambda_max", self.lambda_max, allow_inf=True)
        config_lib.check_range("lambda0", self.lambda0, 0.0, math.inf)
        if config_lib.is_concrete(self.lambda0) and config_lib.is_concrete(
            self.lambda_max
        ):
            if float(self.lambda0) > float(self.lambda_max):
                raise ConfigError(
                    f"lambda0 must not exceed lambda_max, got {self.lambda0} > "
                    f"{self.lambda_max}"
                )


@struct.dataclass
class Params:
    """What acting and the loss need: the network and the multiplier.

    Attributes:
      q: the network parameters (a critic of ``r - lambda c``, or the reward
        and cost heads, see :data:`CRITICS`).
      lam: ``[]`` multiplier :math:`\\lambda \\ge 0`.
    """

    q: ArrayTree
    lam: Array


@struct.dataclass
class State:
    """Training state (one seed; ``vmap`` adds ``[S]``).

    Attributes:
      base: the base agent's state (networks, optimiser, replay buffer with
        ``extras["cost"]``, environments, key, counters).
      lam: ``[]`` float32 multiplier :math:`\\lambda_k`.
      prev_violation: ``[]`` float32 last observed violation :math:`g_{k-1}`
        (ReLOAD's memory; 0 before the first).
      num_violations: ``[]`` int32 number of observed violations (multiplier
        steps taken).
      episode_cost: ``[E]`` float32 discounted cost of each environment's
        running episode so far.
    """

    base: _value_loop.State
    lam: Array
    prev_violation: Array
    num_violations: Array
    episode_cost: Array

    @property
    def params(self) -> Params:
        """The :class:`Params` ``(q, lam)`` used by ``act`` and ``loss``."""
        return Params(q=self.base.params, lam=self.lam)

    @property
    def key(self) -> PRNGKey:
        """The agent's key (the base state's)."""
        return self.base.key


def cartpole_config(method: str = "lagrangian", **overrides: Any) -> Config:
    """Return a constrained M-DQN preset for ``CartPole-Constrained-v0``.

    The base is :func:`jaxrl.agents.mvi.cartpole_config` shortened to 100k environment
    steps (4 environments, 25 chunks of 1000 iterations, learning after 2k
    steps, ε decayed over the first 20%, learning rate decayed linearly to 10%,
    as this preset was tuned with), which learns to balance on CartPole;
    the multiplier uses ``eta_lambda = 0.002`` per observed episode-cost
    violation (violations are in cost units per episode, up to ~500) and
    ``lambda_max = 10`` (a cost step then outweighs ten reward steps).

    Args:
      method: ``"lagrangian"`` or ``"reload"``.
      **overrides: top-level fields to replace (``base=...`` included).

    Returns:
      The config.
    """
    base = mvi.cartpole_config(
        num_envs=4,
        num_chunks=25,
        iters_per_chunk=1_000,
        learning_starts=2_000,
        eps_decay=0.2,
        lr_end_fraction=0.1,
        buffer_size=50_000,
        num_eval_episodes=8,
        eval_max_steps=500,
    )
    config = Config(
        method=method, base=base, eta_lambda=0.002, lambda0=0.0, lambda_max=10.0
    )
    return config.replace(**overrides)
