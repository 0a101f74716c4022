"""SAC set-up, acting and the training loop (see :mod:`jaxrl.agents.sac`)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jaxrl import buffer as buffer_lib
from jaxrl import rollout
from jaxrl import transition as transition_lib
from jaxrl.agents.sac.config import Config, OptState, Params, State
from jaxrl.agents.sac.losses import update
from jaxrl.agents.sac.networks import (
    _actor,
    _bounds,
    _critic,
    _dist,
    _optimizers,
)
from jaxrl.envs.wrappers import episode_metrics, log_unwrap, log_wrap
from jaxrl.loop import EVAL_NAMES, chunked_train, greedy_evaluation, run_chunk
from jaxrl.ops import sac as sac_ops
from jaxrl.types import Array, ArrayTree, Metrics, PRNGKey

__all__ = ["init", "act", "make_run", "make_train"]


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
    return _init(key, env, env_params, config)


def _init(
    key: PRNGKey,
    env: Any,
    env_params: Any,
    config: Config,
    extras_keys: tuple[str, ...] = (),
) -> State:
    """:func:`init` without validation; the replay also stores ``extras_keys``."""
    low, high = _bounds(env, env_params)
    env = log_wrap(env)
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
    extras = {k: jnp.zeros((), jnp.float32) for k in extras_keys} or None
    example = transition_lib.example(obs_0, y_0, extras)
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


# ------------------------------------------------------------------------ training loop


def _iteration(
    state: State,
    _: Any,
    config: Config,
    env: Any,
    env_params: Any,
    *,
    act_fn: Callable[..., Array] = act,
    update_fn: Callable[..., tuple[State, Metrics]] = update,
    agent_config: Any = None,
    extras_keys: tuple[str, ...] = (),
) -> tuple[State, Metrics]:
    """Act in ``num_envs`` envs, store, then do ``updates_per_iter`` updates.

    ``config`` is the SAC config that sizes the loop. An agent that extends SAC
    passes its own ``act_fn(params, obs, key, agent_config)`` and
    ``update_fn(state, batch, agent_config)``, its config and the step ``info``
    keys stored in the replay's ``extras`` (``"cost"`` also adds
    ``"episode/cost"``); its state is a :class:`State` subclass.
    """
    agent_config = config if agent_config is None else agent_config
    key, k_act, k_uniform, k_step, k_sample = jax.random.split(state.key, 5)
    # COLLECT: uniform actions during the warm-up, policy samples afterwards.
    p = state.params
    keys = jax.random.split(k_act, config.num_envs)
    policy = jax.vmap(lambda o, k: act_fn(p, o, k, agent_config))(state.obs, keys)
    shape = (config.num_envs, p.action_low.shape[-1])
    uniform = jax.random.uniform(
        k_uniform, shape, jnp.float32, p.action_low, p.action_high
    )
    warm = state.step * config.num_envs < config.learning_starts
    action = jnp.where(warm, uniform, policy)
    tr, env_state, obs, info = rollout.step(
        k_step, env, env_params, state.env_state, state.obs, action, extras_keys
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
        lambda s, b: update_fn(s, b, agent_config), learner, batches
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
        **episode_metrics(info, with_cost="cost" in extras_keys),
        "train/env_steps": env_steps,
        "train/num_updates": state.num_updates,
    }
    return state, metrics


def make_run(config: Config, env: Any, env_params: Any):
    """Return ``run(state) -> (state, metrics)`` advancing one chunk.

    A chunk is ``config.iters_per_chunk`` iterations then a greedy evaluation;
    metrics have a leading ``[iters_per_chunk]`` axis.
    """
    config.validate()
    _bounds(env, env_params)
    return _make_run(config, env, env_params)


def _make_run(
    config: Config,
    env: Any,
    env_params: Any,
    *,
    act_fn: Callable[..., Array] = act,
    update_fn: Callable[..., tuple[State, Metrics]] = update,
    agent_config: Any = None,
    extras_keys: tuple[str, ...] = (),
):
    """:func:`make_run` without validation, with :func:`_iteration`'s hooks.

    The greedy evaluation also sums ``extras_keys`` per episode
    (``"eval/<key>"``).
    """
    agent_config = config if agent_config is None else agent_config
    inner = log_unwrap(env)
    body = functools.partial(
        _iteration,
        config=config,
        env=log_wrap(inner),
        env_params=env_params,
        act_fn=act_fn,
        update_fn=update_fn,
        agent_config=agent_config,
        extras_keys=tuple(extras_keys),
    )

    def evaluate(state: State, key: PRNGKey) -> Metrics:
        return greedy_evaluation(
            act_fn,
            state.params,
            key,
            agent_config,
            inner,
            env_params,
            num_episodes=config.num_eval_episodes,
            max_steps=config.eval_max_steps,
            extras_keys=tuple(extras_keys),
        )

    def run(state: State) -> tuple[State, Metrics]:
        return run_chunk(
            body,
            state,
            config.iters_per_chunk,
            evaluate=evaluate if config.num_eval_episodes > 0 else None,
            eval_names=EVAL_NAMES + tuple(f"eval/{k}" for k in extras_keys),
        )

    return run


def make_train(config: Config, env: Any, env_params: Any):
    """Return ``train(key) -> (state, metrics)``: :func:`init`, then the chunks.

    Metrics have a leading ``[num_chunks * iters_per_chunk]`` axis. Use
    ``jax.jit(jax.vmap(train))(keys)`` for several seeds (every traced field
    of a stacked config may differ too).
    """
    run = make_run(config, env, env_params)
    inner = log_unwrap(env)
    return chunked_train(
        lambda key: init(key, inner, env_params, config), run, config.num_chunks
    )
