"""SAC configuration, presets and training state (see :mod:`jaxrl.agents.sac`)."""

from __future__ import annotations

from typing import Any

import numpy as np
from flax import struct

from jaxrl.config import check_positive, check_range, is_concrete, static
from jaxrl.errors import ConfigError
from jaxrl.nets import ACTIVATIONS
from jaxrl.types import Array, ArrayTree, PRNGKey

__all__ = [
    "Config",
    "Params",
    "OptState",
    "State",
    "pendulum_config",
    "mountaincar_config",
]


@struct.dataclass
class Config:
    """SAC hyperparameters (defaults: Haarnoja et al. 2018b, table 1).

    Static fields fix shapes, loop lengths and code paths; every other field is
    traced (sweep it with ``vmap``; changing it never recompiles).
    """

    # STATIC: shapes, loop lengths, code paths.
    num_envs: int = static(default=1)  # E, parallel environments
    buffer_size: int = static(default=1_000_000)  # replay capacity
    batch_size: int = static(default=256)  # B
    hidden_sizes: tuple[int, ...] = static(default=(256, 256))  # actor and critics
    activation: str = static(default="relu")
    num_critics: int = static(default=2)  # K, clipped double-Q over K critics
    learn_alpha: bool = static(default=True)  # automatic temperature tuning
    num_chunks: int = static(default=10)
    iters_per_chunk: int = static(default=10_000)
    updates_per_iter: int = static(default=1)  # U, gradient steps per iteration
    num_eval_episodes: int = static(default=10)  # 0 disables evaluation
    eval_max_steps: int = static(default=1_000)

    # TRACED: numeric hyperparameters.
    lr: float = 3e-4  # actor and critic Adam step size
    alpha_lr: float = 3e-4  # temperature Adam step size
    adam_eps: float = 1e-8
    gamma: float = 0.99  # γ, discount
    tau: float = 0.005  # τ, Polyak rate of the target critics
    init_alpha: float = 1.0  # α at step 0 (fixed α when learn_alpha=False)
    target_entropy_per_dim: float = -1.0  # H̄ / d (SAC: H̄ = -dim(A))
    log_std_min: float = -5.0  # clip of the actor's log-std
    log_std_max: float = 2.0
    learning_starts: int = 5_000  # env steps with uniform actions, no updates

    @property
    def total_iters(self) -> int:
        """Training iterations in a whole run, ``num_chunks * iters_per_chunk``."""
        return self.num_chunks * self.iters_per_chunk

    @property
    def total_env_steps(self) -> int:
        """Training environment steps in a run, ``total_iters * num_envs``."""
        return self.total_iters * self.num_envs

    def validate(self) -> None:
        """Raise :class:`~jaxrl.errors.ConfigError` naming the first invalid field."""
        for name in (
            "num_envs",
            "buffer_size",
            "batch_size",
            "num_critics",
            "num_chunks",
            "iters_per_chunk",
            "updates_per_iter",
            "eval_max_steps",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
            if value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.num_eval_episodes, int | np.integer) or (
            self.num_eval_episodes < 0
        ):
            raise ConfigError(
                "num_eval_episodes must be a non-negative integer, "
                f"got {self.num_eval_episodes!r}"
            )
        if self.num_envs > self.buffer_size:
            raise ConfigError(
                f"num_envs ({self.num_envs}) must not exceed "
                f"buffer_size ({self.buffer_size})"
            )
        sizes = self.hidden_sizes
        if not isinstance(sizes, tuple) or not all(
            isinstance(s, int | np.integer) and s > 0 for s in sizes
        ):
            raise ConfigError(
                f"hidden_sizes must be a tuple of positive integers, got {sizes!r}"
            )
        if self.activation not in ACTIVATIONS:
            raise ConfigError(
                f"activation must be one of {', '.join(sorted(ACTIVATIONS))}, "
                f"got {self.activation!r}"
            )
        if not isinstance(self.learn_alpha, bool):
            raise ConfigError(f"learn_alpha must be a bool, got {self.learn_alpha!r}")
        check_positive("lr", self.lr)
        check_positive("alpha_lr", self.alpha_lr)
        check_positive("adam_eps", self.adam_eps)
        check_range("gamma", self.gamma, 0.0, 1.0)
        check_range("tau", self.tau, 0.0, 1.0, low_inclusive=False)
        check_positive("init_alpha", self.init_alpha)
        check_range("learning_starts", self.learning_starts, 0.0)
        if is_concrete(self.log_std_min) and is_concrete(self.log_std_max):
            if np.any(np.asarray(self.log_std_min) >= np.asarray(self.log_std_max)):
                raise ConfigError(
                    f"log_std_min ({self.log_std_min}) must be below "
                    f"log_std_max ({self.log_std_max})"
                )


def pendulum_config(**overrides: Any) -> Config:
    """Return the preset for gymnax ``Pendulum-v1``: 20k env steps (one env).

    SAC's published settings with a 20k-step budget, 1,000 uniform-action
    steps, then one update per env step; lr 1e-3 (dense rewards and a short
    horizon make the larger step safe and faster) and 64x64 networks (four
    times cheaper than 256x256 on CPU). Measured: greedy return about -150
    after 4k env steps and -120 to -140 at 20k (2 seeds).

    Args:
      **overrides: fields to replace in the preset.
    """
    base = Config(
        num_envs=1,
        buffer_size=100_000,
        batch_size=256,
        hidden_sizes=(64, 64),
        num_chunks=10,
        iters_per_chunk=2_000,
        updates_per_iter=1,
        num_eval_episodes=10,
        eval_max_steps=200,
        lr=1e-3,
        alpha_lr=1e-3,
        gamma=0.99,
        tau=0.005,
        learning_starts=1_000,
    )
    return base.replace(**overrides)


def mountaincar_config(**overrides: Any) -> Config:
    """Return the preset for gymnax ``MountainCarContinuous-v0``: 50k env steps.

    The goal (+100) is rarely reached by uniform actions within an episode of
    999 steps, so SAC often settles on "do nothing" (return about 0, better than
    the uniform policy's about -33): a local optimum, not the solved task.
    The 10k uniform-action warm-up steps and α0 = 1 give exploration a chance.

    Args:
      **overrides: fields to replace in the preset.
    """
    base = Config(
        num_envs=1,
        buffer_size=100_000,
        batch_size=256,
        hidden_sizes=(64, 64),
        num_chunks=10,
        iters_per_chunk=5_000,
        updates_per_iter=1,
        num_eval_episodes=10,
        eval_max_steps=1_000,
        lr=3e-4,
        alpha_lr=3e-4,
        gamma=0.99,
        tau=0.005,
        learning_starts=10_000,
    )
    return base.replace(**overrides)


# ----------------------------------------------------------------------------- state


@struct.dataclass
class Params:
    """Everything :func:`~jaxrl.agents.sac.act` and :func:`~jaxrl.agents.sac.loss` read.

    Attributes:
      actor: actor parameters.
      critic: the ``K`` critics' parameters.
      log_alpha: ``[]`` log temperature.
      action_low: ``[d]`` env action lower bounds (constant, never trained).
      action_high: ``[d]`` upper bounds.
    """

    actor: Any
    critic: Any
    log_alpha: Array
    action_low: Array
    action_high: Array


@struct.dataclass
class OptState:
    """Adam states of the actor, the critics and the temperature."""

    actor: Any
    critic: Any
    alpha: Any


@struct.dataclass
class State:
    """SAC training state.

    Attributes:
      params: :class:`Params`.
      target_params: Polyak-averaged critic parameters.
      opt_state: :class:`OptState`.
      buffer: replay buffer (``jaxrl.buffer``) of float32 ``[d]`` env actions.
      env_state: ``[E]`` LogWrapper-wrapped env states.
      obs: ``[E, *obs_shape]`` current observations.
      key: PRNG key, split before every use.
      step: ``[]`` int32 iterations done.
      num_updates: ``[]`` int32 gradient steps done.
    """

    params: Params
    target_params: Any
    opt_state: OptState
    buffer: Any
    env_state: Any
    obs: ArrayTree
    key: PRNGKey
    step: Array
    num_updates: Array
