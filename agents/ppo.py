r"""Proximal Policy Optimization (PPO) for discrete-action gymnax environments.

One *iteration* rolls the current policy for ``num_steps`` steps in
``num_envs`` environments (:func:`collect`, a time-major
``Transition[T, E]``), computes GAE(λ) advantages and λ-return value targets
(:func:`compute_gae`, built on :func:`jaxrl.ops.gae.gae_returns`), then does
``update_epochs`` passes over the ``T * E`` transitions in ``num_minibatches``
shuffled minibatches (:func:`sgd`), each an Adam step on

.. math::
   L(\theta) = \mathbb{E}\big[-\min(\rho A, \mathrm{clip}(\rho, 1 \pm \epsilon) A)\big]
   + c_v\,\mathbb{E}\big[\tfrac12 (V_\theta(s) - G^\lambda)^2\big]
   - c_e\,\mathbb{E}\big[\mathcal{H}(\pi_\theta(\cdot|s))\big],

with :math:`\rho = \pi_\theta(a|s)/\pi_{old}(a|s)`
(:func:`jaxrl.ops.policy_gradient.clipped_surrogate_loss`, ``clip_eps`` = ε,
``vf_coef`` = :math:`c_v`, ``ent_coef`` = :math:`c_e`; the value error is
clipped PPO2-style when ``vf_clip_eps`` is finite). The actor and the critic
are separate networks (:class:`ActorCritic`).

Episode boundaries: each transition keeps ``terminated`` and ``truncated``
apart and its own *pre-reset* ``next_obs`` (``info["final_observation"]``), and
the critic is evaluated on it (``extras["next_value"]``). GAE uses
``discount_t = gamma * (1 - terminated)`` and stops at every episode end, so a
time limit bootstraps from the value of the observation it cut off, a true
termination bootstraps nothing, and no advantage leaks from one episode into
the next. (The usual ``done``-only implementation treats CartPole's 500-step
time limit as a failure and bootstraps the new episode's first value instead.)

Building blocks for derived agents (e.g. PPO-Lagrangian / ReLOAD, which nest
this :class:`Config` and :class:`State`):

* :func:`collect` accepts ``extras_keys`` (e.g. ``("cost",)``) copied from the
  environment ``info`` into ``Transition.extras``;
* :func:`compute_gae` takes any reward / value / next-value arrays (a cost
  critic's GAE is the same call with ``reward=extras["cost"]``);
* :func:`learn` takes a ``reward_fn(rollout) -> [T, E]`` (e.g. the shaped
  reward ``r - λ c``), or an ``advantage_fn(rollout, config) -> extras`` that
  replaces GAE altogether, and a ``loss_fn`` with :func:`loss`'s signature;
* :func:`sgd` runs the epochs/minibatches on any parameter pytree with any
  such loss; :func:`evaluate` and :func:`episode_metrics` give the standard
  metrics.

A *chunk* is ``iters_per_chunk`` iterations followed by a greedy evaluation of
``num_eval_episodes`` episodes; a run is ``num_chunks`` chunks, i.e.
``total_env_steps = num_chunks * iters_per_chunk * num_steps * num_envs``.

Metrics (per iteration, stacked by ``scan`` to ``[iters]``):

* ``"loss/total"``, ``"loss/policy"``, ``"loss/value"``, ``"policy/entropy"``,
  ``"policy/approx_kl"``, ``"policy/clip_fraction"``, ``"train/grad_norm"``:
  means over the iteration's ``update_epochs * num_minibatches`` gradient steps.
* ``"value/mean"``, ``"value/explained_variance"``, ``"advantage/mean"``: of
  the rollout's values, targets and (unnormalised) advantages.
* ``"train/lr"``, ``"train/env_steps"``, ``"train/num_updates"``.
* ``"episode/return"``, ``"episode/length"``: mean over the episodes that
  ended during the iteration's rollout (``NaN`` if none did);
  ``"episode/count"`` is their number.
* ``"eval/return"``, ``"eval/length"``: greedy evaluation, only on the last
  iteration of each chunk (``NaN`` elsewhere).

Usage::

    env, env_params = envs.make("CartPole-v1")
    config = ppo.cartpole_config()
    train = jax.jit(jax.vmap(ppo.make_train(config, env, env_params)))
    state, metrics = train(jax.random.split(jax.random.key(0), 4))

References:
  Schulman et al., "Proximal policy optimization algorithms",
  arXiv:1707.06347, 2017. Schulman et al., "High-dimensional continuous
  control using generalized advantage estimation", ICLR 2016. Huang et al.,
  "The 37 implementation details of PPO", ICLR blog track 2022 (orthogonal
  initialisation, advantage normalisation, learning-rate annealing).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from envs.wrappers import LogWrapper
from jaxrl import rollout as rollout_lib
from jaxrl import transition as transition_lib
from jaxrl.config import check_positive, check_range, static
from jaxrl.errors import ConfigError
from jaxrl.loop import chunked_train
from jaxrl.nets import ACTIVATIONS, MLP, ConvTorso
from jaxrl.ops.gae import gae_returns
from jaxrl.ops.policy_gradient import (
    approx_kl,
    categorical_entropy,
    categorical_log_prob,
    clipped_surrogate_loss,
    clipped_value_loss,
    importance_ratio,
)
from jaxrl.optim import learning_rate_at, make_optimizer
from jaxrl.transition import Transition
from jaxrl.types import Array, ArrayLike, ArrayTree, Metrics, Params, PRNGKey

__all__ = [
    "Config",
    "State",
    "ActorCritic",
    "LossFn",
    "network",
    "policy_and_value",
    "optimizer",
    "init",
    "act",
    "collect",
    "compute_gae",
    "loss",
    "sgd",
    "learn",
    "update",
    "episode_metrics",
    "evaluate",
    "make_run",
    "make_train",
    "cartpole_config",
]

LossFn = Callable[[Params, Any, Transition, Any], tuple[Array, Metrics]]
"""``loss(params, target_params, batch, config) -> (loss, metrics)``."""

_log_prob = jnp.vectorize(categorical_log_prob, signature="(a),()->()")
_entropy = jnp.vectorize(categorical_entropy, signature="(a)->()")


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
        check_positive("vf_clip_eps", self.vf_clip_eps)
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


# ----------------------------------------------------------------------------- network


class ActorCritic(nn.Module):
    """Separate actor (policy logits) and critic (state value) networks.

    Each is a torso (optional :class:`~jaxrl.nets.ConvTorso`, then
    :class:`~jaxrl.nets.MLP`) with a linear head, orthogonally initialised
    with gain 0.01 for the logits (a near-uniform initial policy) and 1 for
    the value. The observation's ``obs_ndim`` trailing axes are flattened for
    the MLP; any leading axes are batch axes.

    Attributes:
      num_actions: ``A``.
      hidden_sizes: MLP widths of both torsos (static tuple).
      activation: activation name.
      obs_ndim: trailing observation axes (1 vectors, 3 images).
      conv_features: conv channels; ``()`` means no conv torso.
    """

    num_actions: int
    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    obs_ndim: int = 1
    conv_features: tuple[int, ...] = ()

    def setup(self) -> None:
        if self.conv_features:
            if self.obs_ndim != 3:
                raise ValueError("conv_features needs image observations (obs_ndim=3)")
            self.actor_conv = ConvTorso(self.conv_features, self.activation)
            self.critic_conv = ConvTorso(self.conv_features, self.activation)
        self.actor_torso = MLP(self.hidden_sizes, self.activation)
        self.critic_torso = MLP(self.hidden_sizes, self.activation)
        self.actor_head = nn.Dense(
            self.num_actions, kernel_init=nn.initializers.orthogonal(0.01)
        )
        self.critic_head = nn.Dense(1, kernel_init=nn.initializers.orthogonal(1.0))

    def _features(self, obs: Any, conv: Any) -> Array:
        x = jnp.asarray(obs, jnp.float32)
        if x.ndim < self.obs_ndim:
            raise ValueError(
                f"observation has {x.ndim} axes, fewer than obs_ndim={self.obs_ndim}"
            )
        if self.conv_features:
            return conv(x)
        return jnp.reshape(x, (*x.shape[: x.ndim - self.obs_ndim], -1))

    def policy(self, obs: Any) -> Array:
        """Return ``[..., A]`` logits of ``[..., *obs_shape]`` observations."""
        conv = self.actor_conv if self.conv_features else None
        return self.actor_head(self.actor_torso(self._features(obs, conv)))

    def value(self, obs: Any) -> Array:
        """Return ``[...]`` state values of ``[..., *obs_shape]`` observations."""
        conv = self.critic_conv if self.conv_features else None
        return self.critic_head(self.critic_torso(self._features(obs, conv)))[..., 0]

    def __call__(self, obs: Any) -> tuple[Array, Array]:
        """Return ``(logits [..., A], value [...])``."""
        return self.policy(obs), self.value(obs)


def network(config: Config, num_actions: int, obs_ndim: int) -> ActorCritic:
    """Return the :class:`ActorCritic` described by the config's static fields."""
    return ActorCritic(
        num_actions=int(num_actions),
        hidden_sizes=tuple(config.hidden_sizes),
        activation=config.activation,
        obs_ndim=int(obs_ndim),
        conv_features=tuple(config.conv_features),
    )


def _num_actions(params: Params) -> int:
    return params["params"]["actor_head"]["kernel"].shape[-1]


def policy_and_value(
    params: Params,
    obs: ArrayTree,
    config: Config,
    obs_ndim: int,
    *,
    value_only: bool = False,
) -> Any:
    """Return ``(logits [..., A], value [...])`` of observations with any batch axes.

    Args:
      params: :class:`ActorCritic` parameters (``A`` is read from them).
      obs: ``[..., *obs_shape]`` observations.
      config: the config (network fields).
      obs_ndim: number of trailing observation axes (static; 1 for vectors).
      value_only: static switch: return only ``value [...]``.
    """
    net = network(config, _num_actions(params), obs_ndim)
    if value_only:
        return net.apply(params, obs, method=ActorCritic.value)
    return net.apply(params, obs)


def optimizer(config: Config) -> Any:
    """Return ``clip_by_global_norm -> adam -> -lr_k`` with ``lr`` decayed linearly.

    The decay runs over :attr:`Config.total_updates` gradient steps from
    ``lr`` to ``lr * lr_end_fraction``; every number may be traced.
    """
    return make_optimizer(
        config.lr,
        max_grad_norm=config.max_grad_norm,
        eps=config.adam_eps,
        decay_steps=config.total_updates,
        end_fraction=config.lr_end_fraction,
    )


def _log_env(env: Any) -> Any:
    return env if isinstance(env, LogWrapper) else LogWrapper(env)


def _inner_env(env: Any) -> Any:
    return env.env if isinstance(env, LogWrapper) else env


# ----------------------------------------------------------------------------- contract


def init(key: PRNGKey, env: Any, env_params: Any, config: Config) -> State:
    """Initialise the actor-critic, the optimiser and ``num_envs`` environments.

    Args:
      key: a typed PRNG key (the only place keys enter).
      env: a gymnax environment with a ``Discrete`` action space (wrapped in
        ``LogWrapper`` here unless it already is one).
      env_params: its parameters.
      config: the config (``config.validate()`` is called).

    Returns:
      The initial :class:`State`.

    Raises:
      ConfigError: on an invalid config, a non-discrete action space or
        ``conv_features`` with non-image observations.
    """
    config.validate()
    env = _log_env(env)
    space = env.action_space(env_params)
    if not hasattr(space, "n"):
        raise ConfigError(
            f"ppo needs a Discrete action space, {env.name} has {type(space).__name__}"
        )
    key, k_env, k_net = jax.random.split(key, 3)
    obs, env_state = rollout_lib.reset(k_env, env, env_params, config.num_envs)
    obs_0 = jax.tree.map(lambda x: x[0], obs)
    if config.conv_features and jnp.ndim(obs_0) != 3:
        raise ConfigError(
            "conv_features needs image observations [H, W, C], "
            f"{env.name} gives shape {jnp.shape(obs_0)}"
        )
    net = network(config, int(space.n), jnp.ndim(obs_0))
    params = net.init(k_net, obs_0)
    return State(
        params=params,
        opt_state=optimizer(config).init(params),
        env_state=env_state,
        obs=obs,
        key=key,
        step=jnp.zeros((), jnp.int32),
        num_updates=jnp.zeros((), jnp.int32),
    )


def act(
    params: Params,
    obs: ArrayTree,
    key: PRNGKey,
    config: Config,
    *,
    greedy: bool = False,
) -> Array:
    """Sample an action for ONE observation from the policy (or take its mode).

    Args:
      params: actor-critic parameters.
      obs: ``[*obs_shape]`` one observation (vmap for a batch).
      key: PRNG key (unused when ``greedy``; may then be ``None``).
      config: the config.
      greedy: static switch: return ``argmax_a logits``.

    Returns:
      ``[]`` int32 action.
    """
    logits, _ = policy_and_value(params, obs, config, jnp.ndim(obs))
    if greedy:
        del key
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    return jax.random.categorical(key, logits).astype(jnp.int32)


def collect(
    state: State,
    config: Config,
    env: Any,
    env_params: Any,
    *,
    extras_keys: tuple[str, ...] = (),
) -> tuple[State, Transition, dict[str, Array]]:
    """Roll the current policy for ``num_steps`` steps in the ``num_envs`` environments.

    Args:
      state: the current state (its key is split; ``env_state``, ``obs`` and
        ``step`` advance).
      config: the config.
      env: the environment (wrapped in ``LogWrapper`` unless it already is one,
        so ``info`` has the episode statistics).
      env_params: its parameters.
      extras_keys: ``info`` keys (e.g. ``("cost",)``) copied into
        ``Transition.extras``.

    Returns:
      ``(state, rollout, info)``: ``rollout`` is a time-major
      ``Transition[T, E]`` whose ``extras`` hold, besides ``extras_keys``,
      ``"log_prob"`` (log-probability of the action under the collecting
      policy), ``"value"`` (critic at ``obs``) and ``"next_value"`` (critic at
      the pre-reset ``next_obs``); ``info`` is the ``[T, E]`` step info.
    """
    env = _log_env(env)
    key, k_roll = jax.random.split(state.key)
    params = state.params

    def policy(k: PRNGKey, obs: ArrayTree) -> Array:
        keys = jax.random.split(k, config.num_envs)
        return jax.vmap(lambda o, kk: act(params, o, kk, config))(obs, keys)

    tr, env_state, obs, info = rollout_lib.collect(
        k_roll,
        env,
        env_params,
        state.env_state,
        state.obs,
        policy,
        config.num_steps,
        tuple(extras_keys),
    )
    obs_ndim = jnp.ndim(tr.obs) - 2
    logits, value = policy_and_value(params, tr.obs, config, obs_ndim)
    next_value = policy_and_value(
        params, tr.next_obs, config, obs_ndim, value_only=True
    )
    extras = {
        **tr.extras,
        "log_prob": _log_prob(logits, tr.action.astype(jnp.int32)),
        "value": value,
        "next_value": next_value,
    }
    state = state.replace(env_state=env_state, obs=obs, key=key, step=state.step + 1)
    return state, tr.replace(extras=extras), info


def compute_gae(
    rollout: Transition,
    config: Config,
    *,
    reward: Array | None = None,
    value: Array | None = None,
    next_value: Array | None = None,
    gamma: ArrayLike | None = None,
    gae_lambda: ArrayLike | None = None,
) -> tuple[Array, Array]:
    """Return GAE(λ) advantages and λ-return targets of a time-major rollout.

    :func:`jaxrl.ops.gae.gae_returns` vmapped over the environment axis, with
    ``discount_t = gamma * (1 - terminated)`` and episode ends
    ``terminated | truncated`` from the rollout.

    Args:
      rollout: ``Transition[T, E]`` (from :func:`collect`).
      config: the config (``gamma``, ``gae_lambda``).
      reward: ``[T, E]`` rewards; default ``rollout.reward`` (pass e.g. a cost
        or a shaped reward ``r - λ c``).
      value: ``[T, E]`` values of ``obs``; default ``extras["value"]``.
      next_value: ``[T, E]`` values of the pre-reset ``next_obs``; default
        ``extras["next_value"]``.
      gamma: ``[]`` discount; default ``config.gamma`` (e.g. a cost discount).
      gae_lambda: ``[]`` λ; default ``config.gae_lambda``.

    Returns:
      ``(advantage [T, E], target [T, E])``, gradients stopped.
    """
    r = rollout.reward if reward is None else reward
    v_tm1 = rollout.extras["value"] if value is None else value
    v_t = rollout.extras["next_value"] if next_value is None else next_value
    gamma = config.gamma if gamma is None else gamma
    lam = config.gae_lambda if gae_lambda is None else gae_lambda
    discount_t = transition_lib.discount(rollout, gamma)
    end_t = transition_lib.episode_end(rollout)
    fn = jax.vmap(gae_returns, in_axes=(1, 1, 1, 1, None, 1), out_axes=1)
    return fn(r, discount_t, v_tm1, v_t, lam, end_t)


def loss(
    params: Params, target_params: Any, batch: Transition, config: Config
) -> tuple[Array, Metrics]:
    """Return the PPO loss of a batch and its parts.

    ``loss/policy + vf_coef * loss/value - ent_coef * policy/entropy``, with
    the batch means of :func:`jaxrl.ops.policy_gradient.clipped_surrogate_loss`
    (advantages standardised over the batch when ``normalize_advantages``),
    :func:`jaxrl.ops.policy_gradient.clipped_value_loss` (radius
    ``vf_clip_eps``) and :func:`jaxrl.ops.policy_gradient.categorical_entropy`.

    Args:
      params: actor-critic parameters (differentiated).
      target_params: unused (PPO has no target network); kept for the shared
        agent contract, pass anything (e.g. ``None``).
      batch: ``Transition[B]`` whose ``extras`` hold ``"log_prob"`` (behaviour
        log-probability), ``"value"`` (behaviour value), ``"advantage"`` and
        ``"target"`` (value target); a missing key raises ``KeyError``.
      config: the config.

    Returns:
      ``(loss, metrics)`` with ``"loss/total"``, ``"loss/policy"``,
      ``"loss/value"``, ``"policy/entropy"``, ``"policy/approx_kl"`` and
      ``"policy/clip_fraction"``.
    """
    del target_params
    obs_ndim = jnp.ndim(batch.obs) - 1
    logits, v = policy_and_value(params, batch.obs, config, obs_ndim)  # [B, A], [B]
    log_pi = _log_prob(logits, batch.action.astype(jnp.int32))
    log_mu = batch.extras["log_prob"]
    adv = batch.extras["advantage"]
    if config.normalize_advantages:
        adv = (adv - jnp.mean(adv)) / (jnp.std(adv) + 1e-8)
    policy_loss = jnp.mean(
        jax.vmap(clipped_surrogate_loss, (0, 0, 0, None))(
            log_pi, log_mu, adv, config.clip_eps
        )
    )
    value_loss = jnp.mean(
        jax.vmap(clipped_value_loss, (0, 0, 0, None))(
            v, batch.extras["value"], batch.extras["target"], config.vf_clip_eps
        )
    )
    entropy = jnp.mean(_entropy(logits))
    total = policy_loss + config.vf_coef * value_loss - config.ent_coef * entropy
    log_pi_sg = jax.lax.stop_gradient(log_pi)
    rho = jax.vmap(importance_ratio)(log_pi_sg, log_mu)
    return total, {
        "loss/total": total,
        "loss/policy": policy_loss,
        "loss/value": value_loss,
        "policy/entropy": entropy,
        "policy/approx_kl": jnp.mean(jax.vmap(approx_kl)(log_pi_sg, log_mu)),
        "policy/clip_fraction": jnp.mean(
            (jnp.abs(rho - 1.0) > config.clip_eps).astype(jnp.float32)
        ),
    }


def _global_norm(tree: Any) -> Array:
    return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in jax.tree.leaves(tree)))


def _sgd_step(
    carry: tuple[Params, Any],
    minibatch: Transition,
    config: Config,
    loss_fn: LossFn,
    target_params: Any,
    opt: Any,
) -> tuple[tuple[Params, Any], Metrics]:
    """One Adam step of ``loss_fn`` on a minibatch (scan body of :func:`sgd`)."""
    params, opt_state = carry
    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
    (_, metrics), grads = grad_fn(params, target_params, minibatch, config)
    updates, opt_state = opt.update(grads, opt_state, params)
    params = jax.tree.map(lambda p, u: p + u, params, updates)
    return (params, opt_state), {**metrics, "train/grad_norm": _global_norm(grads)}


def _sgd_epoch(
    carry: tuple[Params, Any, PRNGKey],
    _: Any,
    batch: Transition,
    config: Config,
    loss_fn: LossFn,
    target_params: Any,
    opt: Any,
) -> tuple[tuple[Params, Any, PRNGKey], Metrics]:
    """Shuffle ``batch`` into ``num_minibatches`` minibatches and step on each."""
    params, opt_state, key = carry
    key, k_perm = jax.random.split(key)
    n = jax.tree.leaves(batch)[0].shape[0]
    perm = jax.random.permutation(k_perm, n)
    shuffled = jax.tree.map(
        lambda x: jnp.reshape(x[perm], (config.num_minibatches, -1, *x.shape[1:])),
        batch,
    )
    step = functools.partial(
        _sgd_step,
        config=config,
        loss_fn=loss_fn,
        target_params=target_params,
        opt=opt,
    )
    (params, opt_state), metrics = jax.lax.scan(step, (params, opt_state), shuffled)
    return (params, opt_state, key), metrics


def sgd(
    params: Params,
    opt_state: Any,
    key: PRNGKey,
    batch: Transition,
    config: Config,
    *,
    loss_fn: LossFn = loss,
    opt: Any = None,
    target_params: Any = None,
) -> tuple[Params, Any, Metrics]:
    """Do ``update_epochs`` passes of minibatch Adam steps over a flat batch.

    Each epoch draws a fresh permutation of the ``N`` transitions and cuts it
    into ``num_minibatches`` minibatches; ``loss_fn`` sees one minibatch
    ``Transition[N / M]`` at a time. Works for any parameter pytree (e.g. an
    actor-critic plus a cost critic) whose ``loss_fn`` has :func:`loss`'s
    signature.

    Args:
      params: parameters to optimise.
      opt_state: ``opt``'s state for them.
      key: PRNG key for the permutations (carried and split per epoch).
      batch: ``Transition[N]`` with whatever ``extras`` ``loss_fn`` reads.
      config: the config (``update_epochs``, ``num_minibatches``).
      loss_fn: ``loss_fn(params, target_params, minibatch, config)``.
      opt: an optax transformation; default :func:`optimizer` of ``config``.
      target_params: passed through to ``loss_fn``.

    Returns:
      ``(params, opt_state, metrics)``: the loss metrics and
      ``"train/grad_norm"``, each averaged over the
      ``update_epochs * num_minibatches`` steps.
    """
    opt = optimizer(config) if opt is None else opt
    epoch = functools.partial(
        _sgd_epoch,
        batch=batch,
        config=config,
        loss_fn=loss_fn,
        target_params=target_params,
        opt=opt,
    )
    (params, opt_state, _), metrics = jax.lax.scan(
        epoch, (params, opt_state, key), None, length=config.update_epochs
    )
    return params, opt_state, jax.tree.map(jnp.mean, metrics)


def _explained_variance(value: Array, target: Array) -> Array:
    var_target = jnp.var(target)
    return jnp.where(
        var_target > 0, 1.0 - jnp.var(target - value) / var_target, jnp.nan
    )


def learn(
    state: State,
    rollout: Transition,
    config: Config,
    *,
    reward_fn: Callable[[Transition], Array] | None = None,
    advantage_fn: Callable[[Transition, Config], dict[str, Array]] | None = None,
    loss_fn: LossFn = loss,
) -> tuple[State, Metrics]:
    """Compute advantages of a rollout, then run :func:`sgd` on it.

    Args:
      state: the current state (its key is split for the permutations).
      rollout: ``Transition[T, E]`` from :func:`collect`.
      config: the config.
      reward_fn: ``rollout -> [T, E]`` reward fed to GAE (default: the
        environment reward), e.g. ``lambda tr: tr.reward - lam *
        tr.extras["cost"]`` for a Lagrangian.
      advantage_fn: ``(rollout, config) -> {name: [T, E]}`` entries added to
        ``rollout.extras`` instead of GAE's ``"advantage"`` and ``"target"``
        (it must provide what ``loss_fn`` reads); excludes ``reward_fn``.
      loss_fn: the loss (default :func:`loss`).

    Returns:
      ``(state, metrics)``: :func:`sgd`'s metrics plus ``"value/mean"``,
      ``"value/explained_variance"`` and ``"advantage/mean"`` of the rollout.
    """
    if advantage_fn is None:
        reward = None if reward_fn is None else reward_fn(rollout)
        advantage, target = compute_gae(rollout, config, reward=reward)
        new = {"advantage": advantage, "target": target}
    else:
        if reward_fn is not None:
            raise ConfigError("pass either reward_fn or advantage_fn, not both")
        new = dict(advantage_fn(rollout, config))
    rollout = rollout.replace(extras={**rollout.extras, **new})
    batch = transition_lib.flatten_batch(rollout, 2)
    key, k_sgd = jax.random.split(state.key)
    params, opt_state, metrics = sgd(
        state.params, state.opt_state, k_sgd, batch, config, loss_fn=loss_fn
    )
    extras = rollout.extras
    metrics = {
        **metrics,
        "value/mean": jnp.mean(extras["value"]),
        "value/explained_variance": _explained_variance(
            extras["value"], extras["target"]
        )
        if "target" in extras
        else jnp.float32(jnp.nan),
        "advantage/mean": jnp.mean(extras["advantage"])
        if "advantage" in extras
        else jnp.float32(jnp.nan),
    }
    state = state.replace(
        params=params,
        opt_state=opt_state,
        key=key,
        num_updates=state.num_updates + config.updates_per_iter,
    )
    return state, metrics


def update(state: State, data: Transition, config: Config) -> tuple[State, Metrics]:
    """Do one PPO update on a rollout: GAE, then the epochs of minibatch steps.

    Args:
      state: the current state.
      data: ``Transition[T, E]`` from :func:`collect` (extras ``"log_prob"``,
        ``"value"``, ``"next_value"``).
      config: the config.

    Returns:
      ``(state, metrics)``; see :func:`learn` (this is ``learn`` with the
      environment reward and :func:`loss`).
    """
    return learn(state, data, config)


# ------------------------------------------------------------------------ training loop


def episode_metrics(info: dict[str, Array], *, with_cost: bool = False) -> Metrics:
    """Return mean return/length (and count) of the episodes that ended in ``info``.

    Args:
      info: ``LogWrapper`` step info with any leading axes (e.g. ``[T, E]``).
      with_cost: static switch: also report ``"episode/cost"`` (the mean of
        ``info["episode_cost"]``, the summed ``info["cost"]``).

    Returns:
      ``"episode/return"``, ``"episode/length"`` (``NaN`` when no episode
      ended), ``"episode/count"`` (int32) and, with ``with_cost``,
      ``"episode/cost"``.
    """
    done = jnp.asarray(info["returned_episode"], bool)
    count = jnp.sum(done)
    safe = jnp.maximum(count, 1).astype(jnp.float32)

    def mean_of(x: Array) -> Array:
        total = jnp.sum(jnp.where(done, jnp.asarray(x, jnp.float32), 0.0))
        return jnp.where(count > 0, total / safe, jnp.nan)

    metrics = {
        "episode/return": mean_of(info["episode_return"]),
        "episode/length": mean_of(info["episode_length"]),
        "episode/count": count.astype(jnp.int32),
    }
    if with_cost:
        metrics["episode/cost"] = mean_of(info["episode_cost"])
    return metrics


def evaluate(
    params: Params, key: PRNGKey, config: Config, env: Any, env_params: Any
) -> Metrics:
    """Return ``"eval/return"`` and ``"eval/length"`` of the greedy policy.

    Runs ``num_eval_episodes`` episodes (at most ``eval_max_steps`` steps) with
    :func:`jaxrl.rollout.evaluate` and averages them.
    """

    def policy(k: PRNGKey, obs: ArrayTree) -> Array:
        del k
        return jax.vmap(lambda o: act(params, o, None, config, greedy=True))(obs)

    out = rollout_lib.evaluate(
        key, env, env_params, policy, config.num_eval_episodes, config.eval_max_steps
    )
    return {
        "eval/return": jnp.mean(out["return"].astype(jnp.float32)),
        "eval/length": jnp.mean(out["length"].astype(jnp.float32)),
    }


def _iteration(
    state: State, _: Any, config: Config, env: Any, env_params: Any
) -> tuple[State, Metrics]:
    """One iteration: collect a rollout, then one PPO update (scan body)."""
    # COLLECT
    state, rollout, info = collect(state, config, env, env_params)
    # LEARN
    lr = learning_rate_at(
        state.num_updates,
        config.lr,
        decay_steps=config.total_updates,
        end_fraction=config.lr_end_fraction,
    )
    state, metrics = update(state, rollout, config)
    return state, {
        **metrics,
        **episode_metrics(info),
        "train/lr": lr,
        "train/env_steps": state.step * config.batch_size,
        "train/num_updates": state.num_updates,
    }


def _run_chunk(
    state: State, config: Config, env: Any, env_params: Any
) -> tuple[State, Metrics]:
    body = functools.partial(
        _iteration, config=config, env=_log_env(env), env_params=env_params
    )
    state, metrics = jax.lax.scan(body, state, None, length=config.iters_per_chunk)
    # EVALUATE (greedy, at the end of the chunk; NaN on the chunk's other iterations)
    nan_row = jnp.full((config.iters_per_chunk,), jnp.nan, jnp.float32)
    if config.num_eval_episodes > 0:
        key, k_eval = jax.random.split(state.key)
        state = state.replace(key=key)
        for name, value in evaluate(
            state.params, k_eval, config, env, env_params
        ).items():
            metrics[name] = nan_row.at[-1].set(value)
    else:
        metrics["eval/return"] = nan_row
        metrics["eval/length"] = nan_row
    return state, metrics


def make_run(
    config: Config, env: Any, env_params: Any
) -> Callable[[State], tuple[State, Metrics]]:
    """Return ``run(state) -> (state, metrics)`` advancing one chunk.

    A chunk is ``config.iters_per_chunk`` iterations then a greedy evaluation;
    metrics have a leading ``[iters_per_chunk]`` axis.
    """
    config.validate()
    inner = _inner_env(env)

    def run(state: State) -> tuple[State, Metrics]:
        return _run_chunk(state, config, inner, env_params)

    return run


def make_train(
    config: Config, env: Any, env_params: Any
) -> Callable[[PRNGKey], tuple[State, Metrics]]:
    """Return ``train(key) -> (state, metrics)``: :func:`init`, then the chunks.

    ``train(key)`` is ``init`` followed by ``num_chunks`` calls of
    :func:`make_run`'s ``run`` (:func:`jaxrl.loop.chunked_train`); metrics
    have a leading ``[num_chunks * iters_per_chunk]`` axis. Use
    ``jax.jit(jax.vmap(train))(keys)`` for several seeds.
    """
    config.validate()
    run = make_run(config, env, env_params)
    inner = _inner_env(env)
    return chunked_train(
        lambda key: init(key, inner, env_params, config), run, config.num_chunks
    )
