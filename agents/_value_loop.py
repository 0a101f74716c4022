"""Shared replay-buffer training loop of the value-based agents (dqn, mvi, mviq).

The agents built on this module differ only in their ``Config`` (a subclass of
:class:`agents.dqn.Config`, whose fields this loop reads), their ``loss`` and,
optionally, their acting policy ``act``; everything else lives here once:
network construction, :class:`State`, :func:`init`, the gradient step with the
target-network update (:func:`update`), the collect/store/learn iteration, the
greedy evaluation and the chunked :func:`make_run` / :func:`make_train`.

An agent module passes its own functions through::

    def update(state, data, config):
        return _value_loop.update(state, data, config, loss_fn=loss)

    def make_train(config, env, env_params):
        return _value_loop.make_train(config, env, env_params, loss_fn=loss, act_fn=act)

with ``loss_fn(params, target_params, batch, config) -> (loss, metrics)`` and
``act_fn(params, obs, key, config, *, greedy=False, epsilon=None) -> action``
(one observation; ``epsilon`` is the scheduled ε of :func:`epsilon_at`, which
an agent may ignore, e.g. when it samples from a stochastic policy).

One *iteration* steps ``num_envs`` environments once with ``act_fn``, adds the
``num_envs`` transitions to a uniform replay buffer and, once
``learning_starts`` environment steps have been taken and on every
``train_frequency``-th iteration, does ``updates_per_iter`` gradient steps on
``loss_fn``. The target network moves towards the online one every
``target_update_period`` gradient steps by Polyak averaging with rate
``polyak`` (``1``: a hard copy). A *chunk* is ``iters_per_chunk`` iterations
followed by a greedy evaluation of ``num_eval_episodes`` episodes.

This module is private to ``agents``; its names are not part of the public API.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from envs.wrappers import LogWrapper
from jaxrl import buffer as buffer_lib
from jaxrl import rollout
from jaxrl import transition as transition_lib
from jaxrl.loop import chunked_train
from jaxrl.nets import QNetwork
from jaxrl.optim import learning_rate_at, make_optimizer
from jaxrl.transition import Transition
from jaxrl.types import Array, ArrayTree, Metrics, Params, PRNGKey

__all__ = [
    "LossFn",
    "ActFn",
    "State",
    "network",
    "q_values",
    "epsilon_at",
    "epsilon_greedy",
    "explore",
    "init",
    "update",
    "make_run",
    "make_train",
]

LossFn = Callable[[Params, Params, Transition, Any], tuple[Array, Metrics]]
"""``loss(params, target_params, batch, config) -> (loss, metrics)``."""

ActFn = Callable[..., Array]
"""``act(params, obs, key, config, *, greedy=False, epsilon=None) -> []`` action."""

EvalFn = Callable[[Params, PRNGKey, Any, Any, Any], Metrics]
"""``evaluate(params, key, config, env, env_params) -> metrics`` (scalars)."""


@struct.dataclass
class State:
    """Training state of a replay-based value agent (one seed; ``vmap`` adds ``[S]``).

    Attributes:
      params: online Q-network parameters.
      target_params: target-network parameters.
      opt_state: optimiser state (Adam moments and step count).
      buffer: replay buffer state (``jaxrl.buffer``).
      env_state: ``[E]`` LogWrapper-wrapped environment states.
      obs: ``[E, *obs_shape]`` current observations (post auto-reset).
      key: the agent's PRNG key, split before every use.
      step: ``[]`` int32, iterations done (env steps = ``step * num_envs``).
      num_updates: ``[]`` int32, gradient steps done.
    """

    params: Params
    target_params: Params
    opt_state: Any
    buffer: Any
    env_state: Any
    obs: ArrayTree
    key: PRNGKey
    step: Array
    num_updates: Array


# ----------------------------------------------------------------------------- helpers


def network(config: Any, num_actions: int, obs_ndim: int) -> QNetwork:
    """Return the Q-network described by the config's static fields."""
    return QNetwork(
        num_actions=num_actions,
        hidden_sizes=tuple(config.hidden_sizes),
        activation=config.activation,
        obs_ndim=obs_ndim,
        conv_features=tuple(config.conv_features),
    )


def _num_actions(params: Params) -> int:
    return params["params"]["head"]["kernel"].shape[-1]


def q_values(params: Params, obs: Array, config: Any, obs_ndim: int) -> Array:
    """Return ``[..., A]`` action values of ``[..., *obs_shape]`` observations.

    Args:
      params: Q-network parameters (the number of actions is read from the head).
      obs: observations with ``obs_ndim`` trailing observation axes.
      config: the agent config (network fields).
      obs_ndim: number of trailing observation axes (1 vectors, 3 images).
    """
    return network(config, _num_actions(params), obs_ndim).apply(params, obs)


def _optimizer(config: Any) -> Any:
    return make_optimizer(
        config.lr,
        max_grad_norm=config.max_grad_norm,
        eps=config.adam_eps,
        decay_steps=_expected_updates(config),
        end_fraction=config.lr_end_fraction,
    )


def _expected_updates(config: Any) -> Array:
    """Gradient steps in a run (the length of the learning-rate decay)."""
    learning_iters = jnp.maximum(
        config.total_iters
        - jnp.asarray(config.learning_starts, jnp.float32) / config.num_envs,
        0.0,
    )
    return (
        learning_iters
        / jnp.asarray(config.train_frequency, jnp.float32)
        * config.updates_per_iter
    )


def _log_env(env: Any) -> Any:
    return env if isinstance(env, LogWrapper) else LogWrapper(env)


def _inner_env(env: Any) -> Any:
    return env.env if isinstance(env, LogWrapper) else env


def epsilon_at(step: Array, config: Any) -> Array:
    """Return ε after ``step`` iterations: linear from ``eps_start`` to ``eps_end``.

    The decay lasts ``eps_decay * total_env_steps`` environment steps.

    Args:
      step: ``[]`` iterations done.
      config: the config (traced fields allowed).

    Returns:
      ``[]`` float32 ε.
    """
    env_steps = jnp.asarray(step, jnp.float32) * config.num_envs
    duration = jnp.asarray(config.eps_decay, jnp.float32) * config.total_env_steps
    frac = jnp.where(
        duration > 0, jnp.clip(env_steps / jnp.maximum(duration, 1.0), 0.0, 1.0), 1.0
    )
    eps_start = jnp.asarray(config.eps_start, jnp.float32)
    eps_end = jnp.asarray(config.eps_end, jnp.float32)
    return eps_end + (1.0 - frac) * (eps_start - eps_end)


def epsilon_greedy(q: Array, key: PRNGKey, epsilon: Array | float) -> Array:
    """Return ``argmax_a q`` with probability ``1 - ε``, else a uniform action.

    Args:
      q: ``[A]`` action values.
      key: PRNG key (split here into the coin and the random action).
      epsilon: ``[]`` exploration rate.

    Returns:
      ``[]`` int32 action.
    """
    return explore(jnp.argmax(q).astype(jnp.int32), key, epsilon, q.shape[-1])


def explore(
    best: Array, key: PRNGKey, epsilon: Array | float, num_actions: int
) -> Array:
    """Return ``best`` with probability ``1 - ε``, else a uniform action.

    Args:
      best: ``[]`` int32 the greedy action (of whatever rule the agent uses).
      key: PRNG key (split here into the coin and the random action).
      epsilon: ``[]`` exploration rate.
      num_actions: static ``A``.

    Returns:
      ``[]`` int32 action.
    """
    k_explore, k_random = jax.random.split(key)
    coin = jax.random.uniform(k_explore) < epsilon
    random_action = jax.random.randint(k_random, (), 0, num_actions, dtype=jnp.int32)
    return jnp.where(coin, random_action, best)


def _global_norm(tree: Any) -> Array:
    leaves = jax.tree.leaves(tree)
    return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in leaves))


# ------------------------------------------------------------------------ init / update


def init(
    key: PRNGKey,
    env: Any,
    env_params: Any,
    config: Any,
    *,
    outputs_per_action: int = 1,
) -> State:
    """Initialise networks, optimiser, replay buffer and ``num_envs`` environments.

    Args:
      key: a typed PRNG key (the only place keys enter).
      env: a gymnax environment with discrete actions (wrapped in ``LogWrapper``
        here unless it already is one).
      env_params: its parameters.
      config: the agent config (``config.validate()`` is called).
      outputs_per_action: static, network outputs per action (``1``: a Q-value;
        ``N``: a return law of ``N`` atoms, the head has ``A * N`` outputs,
        action-major).

    Returns:
      The initial :class:`State`.
    """
    config.validate()
    env = _log_env(env)
    key, k_env, k_net = jax.random.split(key, 3)
    obs, env_state = rollout.reset(k_env, env, env_params, config.num_envs)
    obs_0 = jax.tree.map(lambda x: x[0], obs)
    num_actions = env.action_space(env_params).n
    net = network(config, int(num_actions) * int(outputs_per_action), jnp.ndim(obs_0))
    params = net.init(k_net, obs_0)
    opt_state = _optimizer(config).init(params)
    example = transition_lib.example(obs_0, jnp.zeros((), jnp.int32))
    buffer = buffer_lib.init(example, config.buffer_size)
    return State(
        params=params,
        target_params=jax.tree.map(jnp.copy, params),
        opt_state=opt_state,
        buffer=buffer,
        env_state=env_state,
        obs=obs,
        key=key,
        step=jnp.zeros((), jnp.int32),
        num_updates=jnp.zeros((), jnp.int32),
    )


def update(
    state: State, data: Transition, config: Any, *, loss_fn: LossFn
) -> tuple[State, Metrics]:
    """Do one gradient step of ``loss_fn`` on ``data``, then maybe move the target.

    After the step, if ``num_updates % target_update_period == 0`` the target
    becomes ``polyak * params + (1 - polyak) * target_params`` (``1``: copy).

    Args:
      state: the current state.
      data: ``Transition[B]`` sampled batch.
      config: the agent config.
      loss_fn: ``loss(params, target_params, batch, config) -> (loss, metrics)``.

    Returns:
      ``(state, metrics)``: the loss metrics plus ``"train/grad_norm"`` and
      ``"train/lr"``; ``state.num_updates`` is incremented.
    """
    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
    (_, metrics), grads = grad_fn(state.params, state.target_params, data, config)
    optimizer = _optimizer(config)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = jax.tree.map(lambda p, u: p + u, state.params, updates)
    num_updates = state.num_updates + 1
    period = jnp.asarray(config.target_update_period, jnp.int32)
    do_target = jnp.mod(num_updates, jnp.maximum(period, 1)) == 0
    polyak = jnp.asarray(config.polyak, jnp.float32)
    target_params = jax.tree.map(
        lambda t, p: jnp.where(do_target, polyak * p + (1.0 - polyak) * t, t),
        state.target_params,
        params,
    )
    metrics = {
        **metrics,
        "train/grad_norm": _global_norm(grads),
        "train/lr": learning_rate_at(
            state.num_updates,
            config.lr,
            decay_steps=_expected_updates(config),
            end_fraction=config.lr_end_fraction,
        ),
    }
    new_state = state.replace(
        params=params,
        target_params=target_params,
        opt_state=opt_state,
        num_updates=num_updates,
    )
    return new_state, metrics


# ------------------------------------------------------------------------ training loop


def _learn(
    state: State, batches: Transition, config: Any, loss_fn: LossFn
) -> tuple[State, Metrics]:
    """Do one gradient step per batch of ``Transition[U, B]``; return last metrics."""
    state, metrics = jax.lax.scan(
        lambda s, b: update(s, b, config, loss_fn=loss_fn), state, batches
    )
    return state, jax.tree.map(lambda x: x[-1], metrics)


def _episode_metrics(info: dict[str, Array]) -> Metrics:
    done = info["returned_episode"].astype(bool)  # [E]
    count = jnp.sum(done)
    safe = jnp.maximum(count, 1).astype(jnp.float32)
    mean_of = lambda x: jnp.where(
        count > 0, jnp.sum(jnp.where(done, x.astype(jnp.float32), 0.0)) / safe, jnp.nan
    )
    return {
        "episode/return": mean_of(info["episode_return"]),
        "episode/length": mean_of(info["episode_length"]),
        "episode/count": count.astype(jnp.int32),
    }


def _iteration(
    state: State,
    _: Any,
    config: Any,
    env: Any,
    env_params: Any,
    loss_fn: LossFn,
    act_fn: ActFn,
) -> tuple[State, Metrics]:
    """One iteration: act in ``num_envs`` envs, store, maybe learn (scan body)."""
    key, k_act, k_step, k_learn = jax.random.split(state.key, 4)
    # COLLECT
    epsilon = epsilon_at(state.step, config)
    act_keys = jax.random.split(k_act, config.num_envs)
    policy = lambda o, k: act_fn(state.params, o, k, config, epsilon=epsilon)
    action = jax.vmap(policy)(state.obs, act_keys)
    tr, env_state, obs, info = rollout.step(
        k_step, env, env_params, state.env_state, state.obs, action
    )
    buffer = buffer_lib.add(state.buffer, tr)
    step = state.step + 1
    state = state.replace(
        buffer=buffer, env_state=env_state, obs=obs, key=key, step=step
    )
    # LEARN: batches are sampled outside the cond so no key crosses it (under a
    # seed-vmap the cond becomes a select, which the key-reuse checker rejects);
    # the learner sees the state without its key and buffer (nothing to select).
    batch_keys = jax.random.split(k_learn, config.updates_per_iter)
    batches = jax.vmap(lambda k: buffer_lib.sample(buffer, k, config.batch_size))(
        batch_keys
    )
    env_steps = step * config.num_envs
    frequency = jnp.maximum(jnp.asarray(config.train_frequency, jnp.int32), 1)
    should_learn = (env_steps >= config.learning_starts) & (
        jnp.mod(step, frequency) == 0
    )
    learner = state.replace(key=None, buffer=None)
    learn = functools.partial(_learn, config=config, loss_fn=loss_fn)
    metric_shapes = jax.eval_shape(learn, learner, batches)[1]

    def skip(s: State, b: Transition) -> tuple[State, Metrics]:
        del b
        return s, jax.tree.map(
            lambda x: jnp.full(x.shape, jnp.nan, x.dtype), metric_shapes
        )

    learner, learn_metrics = jax.lax.cond(should_learn, learn, skip, learner, batches)
    state = learner.replace(key=key, buffer=buffer)
    metrics = {
        **learn_metrics,
        **_episode_metrics(info),
        "train/epsilon": epsilon,
        "train/env_steps": env_steps,
        "train/num_updates": state.num_updates,
    }
    return state, metrics


def _evaluate(
    params: Params,
    key: PRNGKey,
    config: Any,
    env: Any,
    env_params: Any,
    act_fn: ActFn,
) -> Metrics:
    def policy(k: PRNGKey, obs: ArrayTree) -> Array:
        del k
        return jax.vmap(lambda o: act_fn(params, o, None, config, greedy=True))(obs)

    out = rollout.evaluate(
        key, env, env_params, policy, config.num_eval_episodes, config.eval_max_steps
    )
    return {
        "eval/return": jnp.mean(out["return"].astype(jnp.float32)),
        "eval/length": jnp.mean(out["length"].astype(jnp.float32)),
    }


def _run_chunk(
    state: State,
    config: Any,
    env: Any,
    env_params: Any,
    loss_fn: LossFn,
    act_fn: ActFn,
    eval_fn: EvalFn | None,
) -> tuple[State, Metrics]:
    body = functools.partial(
        _iteration,
        config=config,
        env=_log_env(env),
        env_params=env_params,
        loss_fn=loss_fn,
        act_fn=act_fn,
    )
    state, metrics = jax.lax.scan(body, state, None, length=config.iters_per_chunk)
    # EVALUATE (greedy, at the end of the chunk; NaN on the chunk's other iterations)
    nan_row = jnp.full((config.iters_per_chunk,), jnp.nan, jnp.float32)
    if config.num_eval_episodes > 0:
        key, k_eval = jax.random.split(state.key)
        state = state.replace(key=key)
        if eval_fn is None:
            eval_fn = functools.partial(_evaluate, act_fn=act_fn)
        eval_metrics = eval_fn(state.params, k_eval, config, env, env_params)
        for name, value in eval_metrics.items():
            metrics[name] = nan_row.at[-1].set(value)
    else:
        names = ("eval/return", "eval/length")
        if eval_fn is not None:
            shapes = jax.eval_shape(
                eval_fn, state.params, state.key, config, env, env_params
            )
            names = tuple(shapes)
        for name in names:
            metrics[name] = nan_row
    return state, metrics


def make_run(
    config: Any,
    env: Any,
    env_params: Any,
    *,
    loss_fn: LossFn,
    act_fn: ActFn,
    eval_fn: EvalFn | None = None,
) -> Callable[[State], tuple[State, Metrics]]:
    """Return ``run(state) -> (state, metrics)`` advancing one chunk.

    A chunk is ``config.iters_per_chunk`` iterations then an evaluation:
    ``eval_fn(params, key, config, env, env_params)`` if given, else the
    greedy evaluation of ``act_fn(..., greedy=True)`` (``"eval/return"``,
    ``"eval/length"``); metrics have a leading ``[iters_per_chunk]`` axis.
    """
    config.validate()
    inner = _inner_env(env)

    def run(state: State) -> tuple[State, Metrics]:
        return _run_chunk(state, config, inner, env_params, loss_fn, act_fn, eval_fn)

    return run


def make_train(
    config: Any,
    env: Any,
    env_params: Any,
    *,
    loss_fn: LossFn,
    act_fn: ActFn,
    eval_fn: EvalFn | None = None,
    outputs_per_action: int = 1,
) -> Callable[[PRNGKey], tuple[State, Metrics]]:
    """Return ``train(key) -> (state, metrics)``: :func:`init`, then the chunks.

    Metrics have a leading ``[num_chunks * iters_per_chunk]`` axis (one row
    per iteration). Use ``jax.jit(jax.vmap(train))(keys)`` for several seeds.
    ``eval_fn`` and ``outputs_per_action``: see :func:`make_run` and
    :func:`init`.
    """
    config.validate()
    run = make_run(
        config, env, env_params, loss_fn=loss_fn, act_fn=act_fn, eval_fn=eval_fn
    )
    inner = _inner_env(env)

    return chunked_train(
        lambda key: init(
            key, inner, env_params, config, outputs_per_action=outputs_per_action
        ),
        run,
        config.num_chunks,
    )
