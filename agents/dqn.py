"""Deep Q-Network (DQN): the plain value-based baseline for discrete-action gymnax envs.

One *iteration* steps ``num_envs`` environments once with an ε-greedy policy,
adds the ``num_envs`` transitions to a uniform replay buffer and, once
``learning_starts`` environment steps have been taken and on every
``train_frequency``-th iteration, does ``updates_per_iter`` gradient steps on
the Huber TD error against a target network. The target network moves towards
the online one every ``target_update_period`` gradient steps by Polyak
averaging with rate ``polyak`` (``polyak = 1``: a hard copy, as in Mnih et al.).
(The field is not called ``tau``: in the Munchausen agents built on the same
loop, :mod:`jaxrl.agents.mvi` and :mod:`jaxrl.agents.mviq`, τ is the entropy temperature.)

A *chunk* is ``iters_per_chunk`` iterations followed by a greedy evaluation of
``num_eval_episodes`` episodes (``jaxrl.rollout.evaluate``); a run is
``num_chunks`` chunks, i.e.
``total_env_steps = num_chunks * iters_per_chunk * num_envs`` training
environment steps (:attr:`Config.total_env_steps`; evaluation steps are extra).

Episode boundaries: the TD target uses ``discount_t = gamma * (1 - terminated)``
and the *pre-reset* ``next_obs`` stored in each :class:`jaxrl.transition.Transition`,
so truncation (time limit) bootstraps and termination does not.

Metrics (per iteration, stacked by ``scan`` to ``[iters]``):

* ``"loss/td"``, ``"q/mean"``, ``"td/abs"``, ``"train/grad_norm"``,
  ``"train/lr"``: from the last gradient step of the iteration; ``NaN`` on
  iterations without an update.
* ``"train/epsilon"``, ``"train/env_steps"``, ``"train/num_updates"``.
* ``"episode/return"``, ``"episode/length"``: mean over the episodes that
  ended in this iteration (``NaN`` if none did); ``"episode/count"`` is their
  number, so weighted means over iterations are exact.
* ``"eval/return"``, ``"eval/length"``: mean greedy-evaluation result, only on
  the last iteration of each chunk (``NaN`` elsewhere).

Usage::

    env, env_params = jaxrl.envs.make("CartPole-v1")
    config = dqn.cartpole_config()
    train = jax.jit(jax.vmap(dqn.make_train(config, env, env_params)))
    state, metrics = train(jax.random.split(jax.random.key(0), 4))

References:
  Mnih et al., "Human-level control through deep reinforcement learning",
  Nature 518, 2015. van Hasselt et al., "Deep RL with double Q-learning",
  AAAI 2016 (``double_q=True``).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxrl import buffer as buffer_lib
from jaxrl import transition as transition_lib
from jaxrl.agents import _value_loop
from jaxrl.agents._value_loop import State, epsilon_at
from jaxrl.config import check_positive, check_range, static
from jaxrl.errors import ConfigError
from jaxrl.nets import ACTIVATIONS
from jaxrl.ops.bellman import double_q_learning, q_learning
from jaxrl.ops.losses import huber_loss
from jaxrl.transition import Transition
from jaxrl.types import Array, ArrayTree, Metrics, Params, PRNGKey

__all__ = [
    "Config",
    "State",
    "init",
    "act",
    "loss",
    "update",
    "make_train",
    "make_run",
    "epsilon_at",
    "cartpole_config",
]


@struct.dataclass
class Config:
    """DQN hyperparameters.

    Static fields fix shapes, loop lengths and code paths (changing one
    recompiles); all other fields are traced and can be swept with ``vmap``.
    Integers that only *gate* an update (``learning_starts``,
    ``train_frequency``, ``target_update_period``) are traced too.

    The defaults are the CartPole-v1 preset (:func:`cartpole_config`), which
    follows CleanRL's DQN (Adam, lr 2.5e-4, 10k replay, batch 128, ε 1 → 0.05
    over half the run, 10k learning starts, one update per 10 env steps, hard
    target copy every 500 env steps = 50 updates). ``huber_delta`` defaults to
    1000, i.e. in effect a squared TD error: with δ = 1 (Nature DQN's error
    clipping, tuned for clipped Atari rewards) the Q-values diverged on
    CartPole, whose returns reach 100 per discounted horizon, because the few
    terminal transitions that anchor the values get clipped gradients.
    """

    # STATIC: shapes, loop lengths, code paths.
    num_envs: int = static(default=10)  # E, parallel environments
    buffer_size: int = static(default=10_000)  # replay capacity (transitions)
    batch_size: int = static(default=128)  # B, sampled transitions per update
    hidden_sizes: tuple[int, ...] = static(default=(120, 84))
    activation: str = static(default="relu")
    conv_features: tuple[int, ...] = static(default=())  # e.g. (16,) for MinAtar
    double_q: bool = static(default=False)  # double-DQN target
    num_chunks: int = static(default=10)
    iters_per_chunk: int = static(default=5_000)  # iterations per chunk
    updates_per_iter: int = static(default=1)  # gradient steps per learning iteration
    num_eval_episodes: int = static(default=10)  # 0 disables evaluation
    eval_max_steps: int = static(default=500)

    # TRACED: numeric hyperparameters.
    lr: float = 2.5e-4  # η, Adam step size (initial value)
    lr_end_fraction: float = 1.0  # final η as a fraction of lr (1: constant)
    adam_eps: float = 1e-8  # Adam ε
    max_grad_norm: float = 10.0  # global-norm gradient clipping
    gamma: float = 0.99  # γ, discount
    eps_start: float = 1.0  # ε-greedy exploration at step 0
    eps_end: float = 0.05  # ε after the decay
    eps_decay: float = 0.5  # fraction of total_env_steps over which ε decays linearly
    learning_starts: int = 10_000  # env steps before the first update
    train_frequency: int = 1  # iterations between learning iterations
    target_update_period: int = 50  # gradient steps between target updates
    polyak: float = 1.0  # Polyak rate of the target update (1: hard copy)
    huber_delta: float = (
        1000.0  # δ of the Huber loss (large: ≈ squared error, see below)
    )

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
            "num_chunks",
            "iters_per_chunk",
            "updates_per_iter",
            "eval_max_steps",
        ):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if (
            not isinstance(self.num_eval_episodes, int | np.integer)
            or self.num_eval_episodes < 0
        ):
            raise ConfigError(
                "num_eval_episodes must be a non-negative integer, "
                f"got {self.num_eval_episodes!r}"
            )
        if self.buffer_size > buffer_lib.MAX_CAPACITY:
            raise ConfigError(
                f"buffer_size must be <= {buffer_lib.MAX_CAPACITY} (int32 slot "
                f"indices), got {self.buffer_size}"
            )
        if self.batch_size > self.buffer_size:
            raise ConfigError(
                f"batch_size ({self.batch_size}) must not exceed "
                f"buffer_size ({self.buffer_size})"
            )
        if self.num_envs > self.buffer_size:
            raise ConfigError(
                f"num_envs ({self.num_envs}) must not exceed "
                f"buffer_size ({self.buffer_size})"
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
        check_positive("lr", self.lr)
        check_range("lr_end_fraction", self.lr_end_fraction, 0.0, 1.0)
        check_positive("adam_eps", self.adam_eps)
        check_positive("max_grad_norm", self.max_grad_norm)
        check_range("gamma", self.gamma, 0.0, 1.0)
        check_range("eps_start", self.eps_start, 0.0, 1.0)
        check_range("eps_end", self.eps_end, 0.0, 1.0)
        check_range("eps_decay", self.eps_decay, 0.0, 1.0)
        check_range("learning_starts", self.learning_starts, 0.0)
        check_range("train_frequency", self.train_frequency, 1.0)
        check_range("target_update_period", self.target_update_period, 1.0)
        check_range("polyak", self.polyak, 0.0, 1.0, low_inclusive=False)
        check_positive("huber_delta", self.huber_delta)


def cartpole_config(**overrides: Any) -> Config:
    """Return the DQN preset tuned for gymnax ``CartPole-v1`` (500k env steps).

    Args:
      **overrides: fields to replace in the preset.

    Returns:
      The config; ``total_env_steps`` is 500,000.
    """
    base = Config(
        num_envs=10,
        buffer_size=10_000,
        batch_size=128,
        hidden_sizes=(120, 84),
        num_chunks=10,
        iters_per_chunk=5_000,
        updates_per_iter=1,
        num_eval_episodes=10,
        eval_max_steps=500,
        lr=2.5e-4,
        lr_end_fraction=1.0,
        max_grad_norm=10.0,
        gamma=0.99,
        eps_start=1.0,
        eps_end=0.05,
        eps_decay=0.5,
        learning_starts=10_000,
        train_frequency=1,
        target_update_period=50,
        polyak=1.0,
        huber_delta=1000.0,
    )
    return base.replace(**overrides)


# ----------------------------------------------------------------------------- contract


def init(key: PRNGKey, env: Any, env_params: Any, config: Config) -> State:
    """Initialise networks, optimiser, replay buffer and ``num_envs`` environments.

    Args:
      key: a typed PRNG key (the only place keys enter).
      env: a gymnax environment with discrete actions (wrapped in ``LogWrapper``
        here unless it already is one).
      env_params: its parameters.
      config: the config.

    Returns:
      The initial :class:`State`.
    """
    return _value_loop.init(key, env, env_params, config)


def act(
    params: Params,
    obs: ArrayTree,
    key: PRNGKey,
    config: Config,
    *,
    greedy: bool = False,
    epsilon: Array | float | None = None,
) -> Array:
    """Choose an action for ONE observation, ε-greedily (or greedily).

    Args:
      params: Q-network parameters.
      obs: ``[*obs_shape]`` one observation (vmap for a batch).
      key: PRNG key (unused when ``greedy``).
      config: the config.
      greedy: static switch: return ``argmax_a Q(obs, a)``.
      epsilon: ``[]`` exploration rate; ``None`` uses ``config.eps_end``.

    Returns:
      ``[]`` int32 action.
    """
    q = _value_loop.q_values(params, obs, config, jnp.ndim(obs))
    if greedy:
        del key
        return jnp.argmax(q).astype(jnp.int32)
    eps = config.eps_end if epsilon is None else epsilon
    return _value_loop.epsilon_greedy(q, key, eps)


def loss(
    params: Params, target_params: Params, batch: Transition, config: Config
) -> tuple[Array, Metrics]:
    """Return the mean Huber TD error of a batch against the target network.

    ``td_b = r_b + gamma * (1 - terminated_b) * max_a Q_target(next_obs_b, a)
    - Q(obs_b, a_b)`` (with ``double_q`` the argmax uses the online network);
    the loss is ``mean_b huber(td_b, huber_delta)``.

    Args:
      params: online parameters (differentiated).
      target_params: target parameters (no gradient).
      batch: ``Transition[B]``.
      config: the config.

    Returns:
      ``(loss, metrics)`` with ``"loss/td"``, ``"q/mean"``, ``"td/abs"``.
    """
    obs_ndim = jnp.ndim(batch.obs) - 1
    q_tm1 = _value_loop.q_values(params, batch.obs, config, obs_ndim)  # [B, A]
    q_t = _value_loop.q_values(
        target_params, batch.next_obs, config, obs_ndim
    )  # [B, A]
    discount_t = transition_lib.discount(batch, config.gamma)  # [B]
    action = batch.action.astype(jnp.int32)
    if config.double_q:
        q_t_sel = _value_loop.q_values(params, batch.next_obs, config, obs_ndim)
        td = jax.vmap(double_q_learning)(
            q_tm1, action, batch.reward, discount_t, q_t, q_t_sel
        )
    else:
        td = jax.vmap(q_learning)(q_tm1, action, batch.reward, discount_t, q_t)
    value = jnp.mean(huber_loss(td, config.huber_delta))
    q_taken = jnp.take_along_axis(q_tm1, action[:, None], axis=-1)
    return value, {
        "loss/td": value,
        "q/mean": jnp.mean(q_taken),
        "td/abs": jnp.mean(jnp.abs(td)),
    }


def update(state: State, data: Transition, config: Config) -> tuple[State, Metrics]:
    """Do one gradient step on ``data``, then maybe move the target network.

    After the step, if ``num_updates % target_update_period == 0`` the target
    becomes ``polyak * params + (1 - polyak) * target_params`` (``polyak = 1``:
    copy).

    Args:
      state: the current state.
      data: ``Transition[B]`` sampled batch.
      config: the config.

    Returns:
      ``(state, metrics)``; ``state.num_updates`` is incremented.
    """
    return _value_loop.update(state, data, config, loss_fn=loss)


# ------------------------------------------------------------------------ training loop


def make_run(config: Config, env: Any, env_params: Any):
    """Return ``run(state) -> (state, metrics)`` advancing one chunk.

    A chunk is ``config.iters_per_chunk`` iterations then a greedy evaluation;
    metrics have a leading ``[iters_per_chunk]`` axis.
    """
    return _value_loop.make_run(config, env, env_params, loss_fn=loss, act_fn=act)


def make_train(config: Config, env: Any, env_params: Any):
    """Return ``train(key) -> (state, metrics)``: ``init`` then ``num_chunks`` chunks.

    ``train(key)`` equals ``init`` followed by ``num_chunks`` calls of
    :func:`make_run`'s ``run`` bitwise (both jitted, config closed over);
    metrics have a leading ``[num_chunks * iters_per_chunk]`` axis (one row
    per iteration). Use ``jax.jit(jax.vmap(train))(keys)`` for several seeds.
    Note: under a seed ``vmap`` XLA on CPU compiled the two programs with
    different rounding (1-ulp differences in the parameters after a few
    chunks), so compare vmapped resumption with a tolerance.
    """
    return _value_loop.make_train(config, env, env_params, loss_fn=loss, act_fn=act)
