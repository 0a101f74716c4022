"""Soft Actor-Critic (SAC): off-policy maximum-entropy RL for continuous (Box) actions.

The actor is a tanh-squashed diagonal Gaussian: an MLP gives a mean and a
(clipped) log-std per action dimension, ``y = tanh(u)``, ``u ~ N(mean, std²)``,
and ``y`` in ``(-1, 1)^d`` is mapped affinely onto the env's box ``[low, high]``
(:func:`jaxrl.ops.sac.scale_action`). Twin critics ``Q_1, Q_2`` (``num_critics``)
see the observation and the *normalised* action ``y``; their targets use
Polyak-averaged copies (rate ``tau``) and the clipped double-Q soft target
:func:`jaxrl.ops.sac.soft_q_target`. The temperature α is learned by
:func:`jaxrl.ops.sac.temperature_loss` towards the entropy target
``target_entropy_per_dim * d`` (SAC's ``-|A|`` with the default ``-1``) unless
``learn_alpha=False``. All three parts take one gradient step together on one
batch (:func:`update`): :func:`loss` is the sum of the critic, actor and
temperature losses, each with stop-gradients so that it moves only its own
parameters (the actor sees the critics of the same step, not updated ones).

One *iteration* steps ``num_envs`` environments once, with uniform random
actions until ``learning_starts`` environment steps have been taken and with
policy samples afterwards, stores the transitions in the shared replay buffer
(:mod:`jaxrl.buffer`) and then does ``updates_per_iter`` gradient steps (none
before ``learning_starts``). A *chunk* is ``iters_per_chunk`` iterations and a
greedy evaluation (``act(..., greedy=True)``: ``tanh(mean)``) of
``num_eval_episodes`` episodes; a run is ``num_chunks`` chunks
(:attr:`Config.total_env_steps` training steps).

Episode boundaries: ``discount_t = gamma * (1 - terminated)`` with the
pre-reset ``next_obs`` of each :class:`~jaxrl.transition.Transition`, so time
limits (Pendulum's 200 steps) bootstrap and true ends do not.

Metrics (per iteration; learning metrics ``NaN`` before ``learning_starts``):
``"loss/critic"``, ``"loss/actor"``, ``"loss/alpha"``, ``"q/mean"``,
``"policy/entropy"`` (``-log pi`` of fresh samples, normalised space),
``"train/alpha"``, ``"train/grad_norm"``, ``"train/env_steps"``,
``"train/num_updates"``, ``"episode/return"``, ``"episode/length"``,
``"episode/count"`` and, on each chunk's last iteration, ``"eval/return"``,
``"eval/length"``.

Usage::

    env, env_params = envs.make("Pendulum-v1")
    config = sac.pendulum_config()
    train = jax.jit(jax.vmap(sac.make_train(config, env, env_params)))
    state, metrics = train(jax.random.split(jax.random.key(0), 4))

References:
  Haarnoja et al., "Soft Actor-Critic: Off-Policy Maximum Entropy Deep RL
  with a Stochastic Actor", ICML 2018; Haarnoja et al., "Soft Actor-Critic
  Algorithms and Applications", arXiv:1812.05905, 2018 (learned temperature).
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from agents._value_loop import _episode_metrics, _global_norm
from envs.wrappers import LogWrapper
from jaxrl import buffer as buffer_lib
from jaxrl import rollout
from jaxrl import transition as transition_lib
from jaxrl.config import check_positive, check_range, is_concrete, static
from jaxrl.errors import ConfigError
from jaxrl.loop import chunked_train
from jaxrl.nets import ACTIVATIONS, MLP
from jaxrl.ops import sac as sac_ops
from jaxrl.optim import make_optimizer
from jaxrl.transition import Transition
from jaxrl.types import Array, ArrayTree, Metrics, PRNGKey

__all__ = [
    "Config",
    "Params",
    "OptState",
    "State",
    "Actor",
    "Critic",
    "init",
    "act",
    "loss",
    "update",
    "make_train",
    "make_run",
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


# ----------------------------------------------------------------------------- networks


class Actor(nn.Module):
    """Gaussian head over an MLP torso: ``obs [..., *obs] -> (mean, log_std) [..., d]``.

    The log-std is unclipped here (:func:`act` and :func:`loss` clip it with the
    traced ``log_std_min``/``log_std_max``).
    """

    action_dim: int
    hidden_sizes: tuple[int, ...] = (256, 256)
    activation: str = "relu"
    obs_ndim: int = 1

    @nn.compact
    def __call__(self, obs: Array) -> tuple[Array, Array]:
        """Return ``(mean, log_std)``, each ``[..., d]``."""
        x = jnp.asarray(obs, jnp.float32)
        x = jnp.reshape(x, (*x.shape[: x.ndim - self.obs_ndim], -1))
        x = MLP(self.hidden_sizes, self.activation, name="torso")(x)
        mean = nn.Dense(self.action_dim, name="mean")(x)
        log_std = nn.Dense(self.action_dim, name="log_std")(x)
        return mean, log_std


class Critic(nn.Module):
    """``K`` Q-networks ``(obs, y) -> [..., K]`` (``y``: normalised action)."""

    num_critics: int = 2
    hidden_sizes: tuple[int, ...] = (256, 256)
    activation: str = "relu"
    obs_ndim: int = 1

    @nn.compact
    def __call__(self, obs: Array, action: Array) -> Array:
        """Return ``[..., K]`` action values of ``[..., *obs]`` and ``[..., d]``."""
        x = jnp.asarray(obs, jnp.float32)
        x = jnp.reshape(x, (*x.shape[: x.ndim - self.obs_ndim], -1))
        x = jnp.concatenate([x, jnp.asarray(action, jnp.float32)], axis=-1)
        qs = [
            nn.Dense(1, name=f"head_{k}")(
                MLP(self.hidden_sizes, self.activation, name=f"torso_{k}")(x)
            )[..., 0]
            for k in range(self.num_critics)
        ]
        return jnp.stack(qs, axis=-1)


# ----------------------------------------------------------------------------- state


@struct.dataclass
class Params:
    """Everything :func:`act` and :func:`loss` read.

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


def _actor(config: Config, d: int, obs_ndim: int) -> Actor:
    return Actor(d, tuple(config.hidden_sizes), config.activation, obs_ndim)


def _critic(config: Config, obs_ndim: int) -> Critic:
    return Critic(
        config.num_critics, tuple(config.hidden_sizes), config.activation, obs_ndim
    )


def _dist(params: Params, obs: Array, config: Config, obs_ndim: int):
    d = params.action_low.shape[-1]
    mean, log_std = _actor(config, d, obs_ndim).apply(params.actor, obs)
    return mean, jnp.clip(log_std, config.log_std_min, config.log_std_max)


def _bounds(env: Any, env_params: Any) -> tuple[Array, Array]:
    space = env.action_space(env_params)
    if not (hasattr(space, "low") and hasattr(space, "high")) or hasattr(space, "n"):
        raise ConfigError(
            f"sac needs a Box (continuous) action space, got {type(space).__name__}"
        )
    shape = tuple(space.shape)
    if len(shape) != 1:
        raise ConfigError(f"sac needs vector actions [d], got shape {shape}")
    low = jnp.broadcast_to(jnp.asarray(space.low, jnp.float32), shape)
    high = jnp.broadcast_to(jnp.asarray(space.high, jnp.float32), shape)
    if is_concrete(low) and is_concrete(high):
        lo, hi = np.asarray(low), np.asarray(high)
        if not (
            np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)) and np.all(lo < hi)
        ):
            raise ConfigError(
                "sac needs finite action bounds with low < high, "
                f"got low={lo.tolist()}, high={hi.tolist()}"
            )
    return low, high


def _optimizers(config: Config):
    net = make_optimizer(config.lr, eps=config.adam_eps)
    temp = make_optimizer(config.alpha_lr, eps=config.adam_eps)
    return net, temp


def _log_env(env: Any) -> Any:
    return env if isinstance(env, LogWrapper) else LogWrapper(env)


def _inner_env(env: Any) -> Any:
    return env.env if isinstance(env, LogWrapper) else env


# ----------------------------------------------------------------------------- contract


def init(key: PRNGKey, env: Any, env_params: Any, config: Config) -> State:
    """Initialise actor, critics, targets, optimisers, buffer and ``num_envs`` envs.

    Args:
      key: typed PRNG key (the only place keys enter).
      env: a gymnax env with a ``Box`` action space of shape ``[d]``.
      env_params: its parameters.
      config: the config (validated here).

    Returns:
      The initial :class:`State`.

    Raises:
      ConfigError: invalid config, or a non-Box / unbounded action space.
    """
    config.validate()
    low, high = _bounds(env, env_params)
    env = _log_env(env)
    key, k_env, k_actor, k_critic = jax.random.split(key, 4)
    obs, env_state = rollout.reset(k_env, env, env_params, config.num_envs)
    obs_0 = jax.tree.map(lambda x: x[0], obs)
    obs_ndim = jnp.ndim(obs_0)
    y_0 = jnp.zeros(low.shape, jnp.float32)
    params = Params(
        actor=_actor(config, low.shape[0], obs_ndim).init(k_actor, obs_0),
        critic=_critic(config, obs_ndim).init(k_critic, obs_0, y_0),
        log_alpha=jnp.log(jnp.asarray(config.init_alpha, jnp.float32)),
        action_low=low,
        action_high=high,
    )
    net_opt, temp_opt = _optimizers(config)
    opt_state = OptState(
        actor=net_opt.init(params.actor),
        critic=net_opt.init(params.critic),
        alpha=temp_opt.init(params.log_alpha),
    )
    example = transition_lib.example(obs_0, y_0)
    return State(
        params=params,
        target_params=jax.tree.map(jnp.copy, params.critic),
        opt_state=opt_state,
        buffer=buffer_lib.init(example, config.buffer_size),
        env_state=env_state,
        obs=obs,
        key=key,
        step=jnp.zeros((), jnp.int32),
        num_updates=jnp.zeros((), jnp.int32),
    )


def act(
    params: Params,
    obs: ArrayTree,
    key: PRNGKey | None,
    config: Config,
    *,
    greedy: bool = False,
) -> Array:
    """Return the env action for ONE observation: a policy sample or ``tanh(mean)``.

    Args:
      params: :class:`Params`.
      obs: ``[*obs_shape]`` one observation (vmap for a batch).
      key: PRNG key (unused, may be ``None``, when ``greedy``).
      config: the config.
      greedy: static switch: the deterministic ``tanh(mean)`` action.

    Returns:
      ``[d]`` float32 action inside ``[low, high]``.
    """
    mean, log_std = _dist(params, obs, config, jnp.ndim(obs))
    if greedy:
        del key
        y = jnp.tanh(mean)
    else:
        y, _ = sac_ops.sample_tanh_gaussian(key, mean, log_std)
    return sac_ops.scale_action(y, params.action_low, params.action_high)


def loss(
    params: Params,
    target_params: Any,
    batch: Transition,
    config: Config,
    *,
    key: PRNGKey,
) -> tuple[Array, Metrics]:
    """Return the critic + actor + temperature loss of a batch.

    Stop-gradients separate the three terms: each moves only its own parameters.

    * critic: ``0.5 * mean_b sum_k (Q_k(s, y) - target)²`` with the
      :func:`jaxrl.ops.sac.soft_q_target` of the target critics at a fresh
      policy action for ``next_obs`` (no gradient through the target);
    * actor: ``mean_b soft_policy_loss`` at reparameterised samples (critics
      and α held fixed);
    * temperature: ``mean_b temperature_loss`` (0 when ``learn_alpha=False``).

    Args:
      params: :class:`Params` (differentiated).
      target_params: target critic parameters.
      batch: ``Transition[B]`` with float32 env actions ``[B, d]``.
      config: the config.
      key: PRNG key for the two policy samples (keyword-only; SAC's losses are
        stochastic).

    Returns:
      ``(loss, metrics)``: ``"loss/critic"``, ``"loss/actor"``,
      ``"loss/alpha"``, ``"q/mean"``, ``"policy/entropy"``, ``"train/alpha"``.
    """
    obs_ndim = jnp.ndim(batch.obs) - 1
    b = batch.reward.shape[0]
    k_next, k_pi = jax.random.split(key)
    critic = _critic(config, obs_ndim)
    low = jax.lax.stop_gradient(params.action_low)  # constants, never trained
    high = jax.lax.stop_gradient(params.action_high)
    alpha = jnp.exp(jax.lax.stop_gradient(params.log_alpha))
    sample = jax.vmap(sac_ops.sample_tanh_gaussian)

    # CRITIC
    frozen = jax.lax.stop_gradient(params)
    mean_t, log_std_t = _dist(frozen, batch.next_obs, config, obs_ndim)
    y_t, log_pi_t = sample(jax.random.split(k_next, b), mean_t, log_std_t)
    q_t = critic.apply(target_params, batch.next_obs, y_t)  # [B, K]
    discount_t = transition_lib.discount(batch, config.gamma)
    target = jax.vmap(sac_ops.soft_q_target, in_axes=(0, 0, 0, 0, None))(
        batch.reward, discount_t, q_t, log_pi_t, alpha
    )
    target = jax.lax.stop_gradient(target)
    y_tm1 = jax.vmap(sac_ops.unscale_action)(
        batch.action, jnp.broadcast_to(low, batch.action.shape),
        jnp.broadcast_to(high, batch.action.shape),
    )  # fmt: skip
    q_tm1 = critic.apply(params.critic, batch.obs, y_tm1)  # [B, K]
    critic_loss = 0.5 * jnp.mean(jnp.sum((q_tm1 - target[:, None]) ** 2, axis=-1))

    # ACTOR (critics and alpha fixed)
    mean, log_std = _dist(params, batch.obs, config, obs_ndim)
    y_pi, log_pi = sample(jax.random.split(k_pi, b), mean, log_std)
    q_pi = critic.apply(frozen.critic, batch.obs, y_pi)
    actor_loss = jnp.mean(
        jax.vmap(sac_ops.soft_policy_loss, in_axes=(0, 0, None))(q_pi, log_pi, alpha)
    )

    # TEMPERATURE
    entropy_target = config.target_entropy_per_dim * low.shape[-1]
    if config.learn_alpha:
        alpha_loss = jnp.mean(
            jax.vmap(sac_ops.temperature_loss, in_axes=(None, 0, None))(
                params.log_alpha, log_pi, entropy_target
            )
        )
    else:
        alpha_loss = jnp.zeros((), jnp.float32)
    total = critic_loss + actor_loss + alpha_loss
    return total, {
        "loss/critic": critic_loss,
        "loss/actor": actor_loss,
        "loss/alpha": alpha_loss,
        "q/mean": jnp.mean(q_tm1),
        "policy/entropy": -jnp.mean(log_pi),
        "train/alpha": alpha,
    }


def update(state: State, data: Transition, config: Config) -> tuple[State, Metrics]:
    """Do one gradient step of actor, critics and temperature, then Polyak the targets.

    Args:
      state: the current state (its key is split for the loss's samples).
      data: ``Transition[B]`` sampled batch.
      config: the config.

    Returns:
      ``(state, metrics)``: :func:`loss`'s metrics plus ``"train/grad_norm"``;
      ``state.num_updates`` is incremented.
    """
    key, k_loss = jax.random.split(state.key)
    grad_fn = jax.value_and_grad(functools.partial(loss, key=k_loss), has_aux=True)
    (_, metrics), grads = grad_fn(state.params, state.target_params, data, config)
    net_opt, temp_opt = _optimizers(config)
    p, o = state.params, state.opt_state
    step = lambda opt, g, s, x: opt.update(g, s, x)
    u_actor, s_actor = step(net_opt, grads.actor, o.actor, p.actor)
    u_critic, s_critic = step(net_opt, grads.critic, o.critic, p.critic)
    add = lambda x, u: jax.tree.map(lambda a, b: a + b, x, u)
    log_alpha, s_alpha = p.log_alpha, o.alpha
    if config.learn_alpha:
        u_alpha, s_alpha = step(temp_opt, grads.log_alpha, o.alpha, p.log_alpha)
        log_alpha = p.log_alpha + u_alpha
    params = p.replace(
        actor=add(p.actor, u_actor), critic=add(p.critic, u_critic), log_alpha=log_alpha
    )
    target = sac_ops.polyak_update(state.target_params, params.critic, config.tau)
    norm = _global_norm((grads.actor, grads.critic, grads.log_alpha))
    new_state = state.replace(
        params=params,
        target_params=target,
        opt_state=OptState(actor=s_actor, critic=s_critic, alpha=s_alpha),
        key=key,
        num_updates=state.num_updates + 1,
    )
    return new_state, {**metrics, "train/grad_norm": norm}


# ------------------------------------------------------------------------ training loop


def _iteration(
    state: State, _: Any, config: Config, env: Any, env_params: Any
) -> tuple[State, Metrics]:
    """Act in ``num_envs`` envs, store, then do ``updates_per_iter`` updates."""
    key, k_act, k_uniform, k_step, k_sample = jax.random.split(state.key, 5)
    # COLLECT: uniform actions during the warm-up, policy samples afterwards.
    p = state.params
    keys = jax.random.split(k_act, config.num_envs)
    policy = jax.vmap(lambda o, k: act(p, o, k, config))(state.obs, keys)
    shape = (config.num_envs, p.action_low.shape[-1])
    uniform = jax.random.uniform(
        k_uniform, shape, jnp.float32, p.action_low, p.action_high
    )
    warm = state.step * config.num_envs < config.learning_starts
    action = jnp.where(warm, uniform, policy)
    tr, env_state, obs, info = rollout.step(
        k_step, env, env_params, state.env_state, state.obs, action
    )
    buffer = buffer_lib.add(state.buffer, tr)
    step = state.step + 1
    # LEARN: always computed and kept by select (a cond becomes a select under a
    # seed vmap anyway, and no key has to cross it).
    batches = jax.vmap(lambda k: buffer_lib.sample(buffer, k, config.batch_size))(
        jax.random.split(k_sample, config.updates_per_iter)
    )
    learner = state.replace(buffer=None, key=key)
    learned, learn_metrics = jax.lax.scan(
        lambda s, b: update(s, b, config), learner, batches
    )
    learn_metrics = jax.tree.map(lambda x: x[-1], learn_metrics)
    env_steps = step * config.num_envs
    ok = env_steps >= config.learning_starts
    learner = jax.tree.map(
        lambda a, b: jnp.where(ok, a, b),
        learned.replace(key=None),
        learner.replace(key=None),
    )
    learn_metrics = jax.tree.map(lambda x: jnp.where(ok, x, jnp.nan), learn_metrics)
    state = learner.replace(
        buffer=buffer, env_state=env_state, obs=obs, key=learned.key, step=step
    )
    metrics = {
        **learn_metrics,
        **_episode_metrics(info),
        "train/env_steps": env_steps,
        "train/num_updates": state.num_updates,
    }
    return state, metrics


def _evaluate(params: Params, key: PRNGKey, config: Config, env: Any, env_params: Any):
    def policy(k: PRNGKey, obs: Array) -> Array:
        del k
        return jax.vmap(lambda o: act(params, o, None, config, greedy=True))(obs)

    out = rollout.evaluate(
        key, env, env_params, policy, config.num_eval_episodes, config.eval_max_steps
    )
    return {
        "eval/return": jnp.mean(out["return"].astype(jnp.float32)),
        "eval/length": jnp.mean(out["length"].astype(jnp.float32)),
    }


def make_run(config: Config, env: Any, env_params: Any):
    """Return ``run(state) -> (state, metrics)`` advancing one chunk.

    A chunk is ``config.iters_per_chunk`` iterations then a greedy evaluation;
    metrics have a leading ``[iters_per_chunk]`` axis.
    """
    config.validate()
    _bounds(env, env_params)
    inner = _inner_env(env)
    body = functools.partial(
        _iteration, config=config, env=_log_env(inner), env_params=env_params
    )

    def run(state: State) -> tuple[State, Metrics]:
        state, metrics = jax.lax.scan(body, state, None, length=config.iters_per_chunk)
        # EVALUATE (greedy; NaN on the chunk's other iterations)
        nan_row = jnp.full((config.iters_per_chunk,), jnp.nan, jnp.float32)
        names = ("eval/return", "eval/length")
        if config.num_eval_episodes > 0:
            key, k_eval = jax.random.split(state.key)
            state = state.replace(key=key)
            out = _evaluate(state.params, k_eval, config, inner, env_params)
            for name in names:
                metrics[name] = nan_row.at[-1].set(out[name])
        else:
            for name in names:
                metrics[name] = nan_row
        return state, metrics

    return run


def make_train(config: Config, env: Any, env_params: Any):
    """Return ``train(key) -> (state, metrics)``: :func:`init`, then the chunks.

    Metrics have a leading ``[num_chunks * iters_per_chunk]`` axis. Use
    ``jax.jit(jax.vmap(train))(keys)`` for several seeds (every traced field
    of a stacked config may differ too).
    """
    run = make_run(config, env, env_params)
    inner = _inner_env(env)
    return chunked_train(
        lambda key: init(key, inner, env_params, config), run, config.num_chunks
    )
