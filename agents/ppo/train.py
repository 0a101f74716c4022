"""PPO set-up, acting, rollouts and the training loop (see :mod:`jaxrl.agents.ppo`)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jaxrl import rollout as rollout_lib
from jaxrl.agents.ppo.config import Config, State
from jaxrl.agents.ppo.learner import update
from jaxrl.agents.ppo.networks import (
    _inner_env,
    _log_env,
    _log_prob,
    network,
    optimizer,
    policy_and_value,
)
from jaxrl.errors import ConfigError
from jaxrl.loop import chunked_train
from jaxrl.optim import learning_rate_at
from jaxrl.transition import Transition
from jaxrl.types import Array, ArrayTree, Metrics, Params, PRNGKey

__all__ = [
    "init",
    "init_state",
    "act",
    "collect",
    "episode_metrics",
    "evaluate",
    "make_run",
    "make_train",
]


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
    return init_state(key, env, env_params, config)


def init_state(
    key: PRNGKey,
    env: Any,
    env_params: Any,
    config: Config,
    *,
    network_fn: Callable[[Config, int, int], Any] = network,
    opt: Any = None,
) -> State:
    """:func:`init` with another network module and/or optimiser.

    The key is split exactly as in :func:`init`, so a network whose
    submodules include :class:`ActorCritic`'s (same names) gets the same
    actor and critic parameters from the same key (flax derives each
    submodule's initialisation key from its name); derived agents, e.g.
    :mod:`jaxrl.agents.ppo_lagrangian` with an extra cost critic, use this to
    reduce exactly to PPO.

    Args:
      key: a typed PRNG key.
      env: a gymnax environment with a ``Discrete`` action space.
      env_params: its parameters.
      config: the config (``config.validate()`` is called).
      network_fn: ``network_fn(config, num_actions, obs_ndim) -> flax module``
        (default :func:`network`).
      opt: optax transformation whose state is initialised (default
        :func:`optimizer` of ``config``).

    Returns:
      The initial :class:`State`.
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
    net = network_fn(config, int(space.n), jnp.ndim(obs_0))
    params = net.init(k_net, obs_0)
    opt = optimizer(config) if opt is None else opt
    return State(
        params=params,
        opt_state=opt.init(params),
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
