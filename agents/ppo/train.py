"""PPO set-up, acting, rollouts and the training loop (see :mod:`jaxrl.agents.ppo`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jaxrl import envs
from jaxrl import rollout as rollout_lib
from jaxrl.agents import _onpolicy_loop
from jaxrl.agents.ppo.config import Config, State
from jaxrl.agents.ppo.losses import update
from jaxrl.agents.ppo.networks import (
    _log_prob,
    _num_actions,
    network,
    optimizer,
    policy_and_value,
)
from jaxrl.envs.wrappers import episode_metrics, log_unwrap, log_wrap
from jaxrl.errors import ConfigError
from jaxrl.loop import greedy_evaluation
from jaxrl.transition import Transition, from_gymnax_step
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
    env = log_wrap(env)
    num_actions = envs.num_actions(log_unwrap(env), env_params, user="ppo")
    key, k_env, k_net = jax.random.split(key, 3)
    obs, env_state = rollout_lib.reset(k_env, env, env_params, config.num_envs)
    obs_0 = jax.tree.map(lambda x: x[0], obs)
    if config.conv_features and jnp.ndim(obs_0) != 3:
        raise ConfigError(
            "conv_features needs image observations [H, W, C], "
            f"{env.name} gives shape {jnp.shape(obs_0)}"
        )
    net = network_fn(config, num_actions, jnp.ndim(obs_0))
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
    env = log_wrap(env)
    key, k_roll = jax.random.split(state.key)
    params = state.params
    obs_ndim = jnp.ndim(jax.tree.leaves(state.obs)[0]) - 1
    num_envs, num_actions = config.num_envs, _num_actions(params)

    # The keys of jaxrl.rollout.collect's loop (each step splits the carried key
    # into (key, k_act, k_step), k_act into one key per environment for the
    # action and k_step into one per environment for env.step), and the Gumbel
    # noise jax.random.categorical draws from each action key: none depends on
    # the environments, so everything but the serial key chain is drawn at
    # once for all T steps, outside the environment loop (the same numbers).
    def chain(k: PRNGKey, _: Any) -> tuple[PRNGKey, tuple[PRNGKey, PRNGKey]]:
        k, k_act, k_step = jax.random.split(k, 3)
        return k, (k_act, k_step)

    _, (k_act, k_step) = jax.lax.scan(chain, k_roll, None, length=config.num_steps)
    split_envs = jax.vmap(lambda k: jax.random.split(k, num_envs))
    gumbel = jax.vmap(jax.vmap(lambda k: jax.random.gumbel(k, (num_actions,))))(
        split_envs(k_act)
    )  # [T, E, A]

    def body(carry: Any, xs: tuple[Array, PRNGKey]) -> tuple[Any, Any]:
        # jaxrl.rollout.collect's step: act(params, o, k, config) for each
        # environment (jax.random.categorical is argmax(gumbel + logits)),
        # then step them, keeping the sampling policy's logits
        noise, keys = xs
        env_state, obs = carry
        logits, _ = policy_and_value(params, obs, config, obs_ndim)  # [E, A]
        action = jnp.argmax(noise + logits, axis=-1).astype(jnp.int32)
        out = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            keys, env_state, action, env_params
        )
        tr = from_gymnax_step(obs, action, out, tuple(extras_keys))
        next_obs, env_state, _, _, _, info = out
        return (env_state, next_obs), (tr, info, logits)

    (env_state, obs), (tr, info, logits) = jax.lax.scan(
        body, (state.env_state, state.obs), (gumbel, split_envs(k_step))
    )
    # log-probabilities of the sampling policy (no second actor pass)
    log_prob = _log_prob(logits, tr.action)
    value = policy_and_value(params, tr.obs, config, obs_ndim, value_only=True)
    next_value = policy_and_value(
        params, tr.next_obs, config, obs_ndim, value_only=True
    )
    extras = {
        **tr.extras,
        "log_prob": log_prob,
        "value": value,
        "next_value": next_value,
    }
    state = state.replace(env_state=env_state, obs=obs, key=key, step=state.step + 1)
    return state, tr.replace(extras=extras), info


# ------------------------------------------------------------------------ training loop


def evaluate(
    params: Params, key: PRNGKey, config: Config, env: Any, env_params: Any
) -> Metrics:
    """Return ``"eval/return"`` and ``"eval/length"`` of the greedy policy.

    Runs ``num_eval_episodes`` episodes (at most ``eval_max_steps`` steps) with
    :func:`jaxrl.rollout.evaluate` and averages them.
    """

    return greedy_evaluation(
        act,
        params,
        key,
        config,
        env,
        env_params,
        num_episodes=config.num_eval_episodes,
        max_steps=config.eval_max_steps,
    )


def make_run(
    config: Config, env: Any, env_params: Any
) -> Callable[[State], tuple[State, Metrics]]:
    """Return ``run(state) -> (state, metrics)`` advancing one chunk.

    A chunk is ``config.iters_per_chunk`` iterations then a greedy evaluation;
    metrics have a leading ``[iters_per_chunk]`` axis.
    """
    config.validate()
    return _onpolicy_loop.make_run(
        config, env, env_params, collect_fn=collect, update_fn=update, eval_fn=evaluate
    )


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
    return _onpolicy_loop.make_train(
        config,
        env,
        env_params,
        init_fn=init,
        collect_fn=collect,
        update_fn=update,
        eval_fn=evaluate,
    )
