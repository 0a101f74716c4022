"""CaT configuration and state (see :mod:`jaxrl.agents.cat`)."""

from __future__ import annotations

from typing import Any

from flax import struct

from jaxrl import config as config_lib
from jaxrl.agents import ppo
from jaxrl.errors import ConfigError
from jaxrl.types import Array, Params, PRNGKey

__all__ = ["Config", "State", "cartpole_config"]


@struct.dataclass
class Config:
    """CaT configuration: PPO's config plus the termination probabilities.

    Attributes:
      base: :class:`jaxrl.agents.ppo.Config` (shapes, loops, PPO hyperparameters).
      p_max: :math:`p^{max} \\in [0, 1]`, the termination probability of a
        violation at (or above) the running scale; 0 gives PPO.
      scale_decay: :math:`\\tau \\in [0, 1)`, decay of the running violation
        scale (an exponential moving average of each step's largest
        violation over the environments).
      scale_floor: :math:`\\epsilon > 0`, lower bound of the scale (also its
        initial value).
    """

    base: ppo.Config = struct.field(default_factory=ppo.Config)
    p_max: float = 0.1  # p^max
    scale_decay: float = 0.95  # τ
    scale_floor: float = 1e-6  # ε

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
        if not isinstance(self.base, ppo.Config):
            raise ConfigError(
                f"base must be an jaxrl.agents.ppo.Config, got {type(self.base).__name__}"
            )
        config_lib.validate(self.base)
        config_lib.check_range("p_max", self.p_max, 0.0, 1.0)
        config_lib.check_range(
            "scale_decay", self.scale_decay, 0.0, 1.0, high_inclusive=False
        )
        config_lib.check_positive("scale_floor", self.scale_floor)


def cartpole_config(**overrides: Any) -> Config:
    """Return the CaT preset for ``CartPole-Constrained-v0``.

    The base is PPO-Lagrangian's (:func:`jaxrl.agents.ppo_lagrangian.cartpole_config`:
    PPO's CartPole preset with 8 environments, 10 chunks of 49 rollouts of
    8 x 128 steps, 501,760 steps), so the two agents see the same data per
    iteration; CaT's own values are the paper's soft-constraint defaults
    (``p_max = 0.1``, ``scale_decay = 0.95``, ``scale_floor = 1e-6``).

    Args:
      **overrides: top-level fields to replace (``base=...`` included).
    """
    config = Config(base=ppo.cartpole_config(num_envs=8, iters_per_chunk=49))
    return config.replace(**overrides)


@struct.dataclass
class State:
    """Training state (one seed; ``vmap`` adds ``[S]``).

    Attributes:
      base: PPO's state (actor-critic, optimiser, environments, key, counters).
      cost_scale: ``[]`` float32 running violation scale :math:`c^{max}`.
    """

    base: ppo.State
    cost_scale: Array

    @property
    def params(self) -> Params:
        """The actor-critic parameters (the base state's)."""
        return self.base.params

    @property
    def key(self) -> PRNGKey:
        """The agent's key (the base state's)."""
        return self.base.key
