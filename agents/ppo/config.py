"""PPO configuration and training state (see :mod:`jaxrl.agents.ppo`)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from flax import struct

from jaxrl.config import check_positive, check_range, static
from jaxrl.errors import ConfigError
from jaxrl.nets import ACTIVATIONS
from jaxrl.types import Array, ArrayTree, Params, PRNGKey

__all__ = ["Config", "State", "cartpole_config", "minatar_config"]


@struct.dataclass
class Config:
    """PPO hyperparameters.

    Static fields fix shapes, loop lengths and code paths (changing one
    recompiles); all other fields are traced and can be swept with ``vmap``.
    The defaults are the CartPole-v1 preset (:func:`cartpole_config`): the
    usual PPO settings for classic control (Schulman et al. 2017 Atari/Mujoco
    values adapted as in CleanRL and PureJaxRL: 4 envs x 128 steps, 4 epochs x
    4 minibatches, Adam 2.5e-4 annealed linearly to 0, ε = 0.2, GAE λ = 0.95,
    γ = 0.99, c_e = 0.01, c_v = 0.5, gradient norm 0.5, 64x64 tanh networks),
    500k environment steps.
    """

    # STATIC: shapes, loop lengths, code paths.
    num_envs: int = static(default=4)  # E, parallel environments
    num_steps: int = static(default=128)  # T, rollout length per iteration
    num_minibatches: int = static(default=4)  # M, minibatches per epoch
    update_epochs: int = static(default=4)  # K, passes over each rollout
    hidden_sizes: tuple[int, ...] = static(default=(64, 64))  # actor and critic
    activation: str = static(default="tanh")
    conv_features: tuple[int, ...] = static(default=())  # e.g. (16,) for MinAtar
    normalize_advantages: bool = static(default=True)  # per minibatch
    num_chunks: int = static(default=10)
    iters_per_chunk: int = static(default=98)  # iterations (rollouts) per chunk
    num_eval_episodes: int = static(default=10)  # 0 disables evaluation
    eval_max_steps: int = static(default=500)

    # TRACED: numeric hyperparameters.
    lr: float = 2.5e-4  # η, Adam step size (initial value)
    lr_end_fraction: float = 0.0  # final η as a fraction of lr (0: anneal to 0)
    adam_eps: float = 1e-5  # Adam ε
    max_grad_norm: float = 0.5  # global-norm gradient clipping
    gamma: float = 0.99  # γ, discount
    gae_lambda: float = 0.95  # λ of GAE
    clip_eps: float = 0.2  # ε, ratio clipping radius
    vf_clip_eps: float = math.inf  # value clipping radius (inf: no clipping)
    ent_coef: float = 0.01  # c_e, entropy bonus weight
    vf_coef: float = 0.5  # c_v, value loss weight

    @property
    def batch_size(self) -> int:
        """Transitions per rollout, ``num_steps * num_envs``."""
        return self.num_steps * self.num_envs

    @property
    def minibatch_size(self) -> int:
        """Transitions per gradient step, ``batch_size // num_minibatches``."""
        return self.batch_size // self.num_minibatches

    @property
    def total_iters(self) -> int:
        """Iterations (rollouts) in a run, ``num_chunks * iters_per_chunk``."""
        return self.num_chunks * self.iters_per_chunk

    @property
    def total_env_steps(self) -> int:
        """Training environment steps in a run, ``total_iters * batch_size``."""
        return self.total_iters * self.batch_size

    @property
    def updates_per_iter(self) -> int:
        """Gradient steps per iteration, ``update_epochs * num_minibatches``."""
        return self.update_epochs * self.num_minibatches

    @property
    def total_updates(self) -> int:
        """Gradient steps in a run (the length of the learning-rate decay)."""
        return self.total_iters * self.updates_per_iter

    def validate(self) -> None:
        """Raise :class:`~jaxrl.errors.ConfigError` naming the first invalid field."""
        for name in (
            "num_envs",
            "num_steps",
            "num_minibatches",
            "update_epochs",
            "num_chunks",
            "iters_per_chunk",
            "eval_max_steps",
        ):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | np.integer)
                or value < 1
            ):
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if (
            not isinstance(self.num_eval_episodes, int | np.integer)
            or self.num_eval_episodes < 0
        ):
            raise ConfigError(
                "num_eval_episodes must be a non-negative integer, "
                f"got {self.num_eval_episodes!r}"
            )
        if self.batch_size % self.num_minibatches:
            raise ConfigError(
                f"num_minibatches ({self.num_minibatches}) must divide "
                f"num_steps * num_envs ({self.batch_size})"
            )
        if self.normalize_advantages and self.minibatch_size < 2:
            raise ConfigError(
                "num_minibatches leaves minibatches of one transition; "
                "normalize_advantages needs at least two"
            )
        for name in ("hidden_sizes", "conv_features"):
            sizes = getattr(self, name)
            if not isinstance(sizes, tuple) or not all(
                isinstance(s, int | np.integer) and s > 0 for s in sizes
            ):
                raise ConfigError(
                    f"{name} must be a tuple of positive integers, got {sizes!r}"
                )
        if self.activation not in ACTIVATIONS:
            raise ConfigError(
                f"activation must be one of {', '.join(sorted(ACTIVATIONS))}, "
                f"got {self.activation!r}"
            )
        if not isinstance(self.normalize_advantages, bool):
            raise ConfigError(
                "normalize_advantages must be a bool, "
                f"got {self.normalize_advantages!r}"
            )
        check_positive("lr", self.lr)
        check_range("lr_end_fraction", self.lr_end_fraction, 0.0, 1.0)
        check_positive("adam_eps", self.adam_eps)
        check_positive("max_grad_norm", self.max_grad_norm)
        check_range("gamma", self.gamma, 0.0, 1.0)
        check_range("gae_lambda", self.gae_lambda, 0.0, 1.0)
        check_range("clip_eps", self.clip_eps, 0.0, 1.0, low_inclusive=False)
        check_positive("vf_clip_eps", self.vf_clip_eps, allow_inf=True)  # inf: no clip
        check_range("ent_coef", self.ent_coef, 0.0, math.inf, high_inclusive=False)
        check_range("vf_coef", self.vf_coef, 0.0, math.inf, high_inclusive=False)


def cartpole_config(**overrides: Any) -> Config:
    """Return the PPO preset for gymnax ``CartPole-v1`` (about 500k env steps).

    Args:
      **overrides: fields to replace in the preset.

    Returns:
      The config; ``total_env_steps`` is 501,760 (980 rollouts of 4 x 128).
    """
    return Config().replace(**overrides)


def minatar_config(**overrides: Any) -> Config:
    """Return a PPO preset for gymnax MinAtar games (about 5M env steps).

    Our choice, not a tuned setting from a paper: :func:`cartpole_config`'s
    PPO numbers (clip 0.2, GAE 0.95, gamma 0.99, entropy 0.01, value 0.5,
    gradient norm 0.5, Adam 2.5e-4 annealed to 0, 4 epochs) with the MinAtar
    network of the value agents (one 3x3 convolution with 16 channels, then
    128 ReLU units, after Young and Tian 2019; separate actor and critic), 16
    environments x 128 steps and 8 minibatches of 256, for MinAtar's usual
    5M frames.

    Args:
      **overrides: fields to replace in the preset.

    Returns:
      The config; ``total_env_steps`` is 5,017,600 (2,450 rollouts of 16 x 128).
    """
    return Config(
        num_envs=16,
        num_steps=128,
        num_minibatches=8,
        update_epochs=4,
        hidden_sizes=(128,),
        activation="relu",
        conv_features=(16,),
        num_chunks=10,
        iters_per_chunk=245,
        eval_max_steps=1000,
    ).replace(**overrides)


@struct.dataclass
class State:
    """Training state of PPO (one seed; ``vmap`` adds ``[S]``).

    PPO keeps no target network: :func:`loss` takes ``target_params`` only to
    share the agent contract and ignores it.

    Attributes:
      params: actor-critic parameters (:class:`ActorCritic`).
      opt_state: optimiser state (Adam moments and step count).
      env_state: ``[E]`` LogWrapper-wrapped environment states.
      obs: ``[E, *obs_shape]`` current observations (post auto-reset).
      key: the agent's PRNG key, split before every use.
      step: ``[]`` int32, rollouts collected (env steps = ``step * T * E``).
      num_updates: ``[]`` int32, gradient steps done.
    """

    params: Params
    opt_state: Any
    env_state: Any
    obs: ArrayTree
    key: PRNGKey
    step: Array
    num_updates: Array
