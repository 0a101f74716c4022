"""Shared replay-buffer training loop of the value-based agents.

The agents built on this module (dqn, mvi, mviq, dist_dqn, constrained) differ
only in their ``Config`` (a subclass of :class:`jaxrl.agents.dqn.Config`, whose fields
this loop reads), their ``loss`` and, optionally, their acting policy ``act``,
their evaluation and an :class:`Extension`; everything else lives here once:
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
followed by a greedy evaluation of ``num_eval_episodes`` episodes. One
iteration splits the state's key into ``(key, act, step, learn)``; the
evaluation splits ``(key, eval)`` off at the end of the chunk.

Speed without changing a number: whether to learn and whether to move the
target are branches whose index is shared by the vmapped seeds
(``_shared_branch``), so a seed ``vmap`` skips the work instead of computing
and discarding it. With one update per iteration only the gradient is in the
branch: the optimiser step and the target move (elementwise) run after it and
are kept where the seed learns, since a branch's outputs are copied into the
loop's carry (docs/decisions.md D27). The gradient's global norm is computed
once for the clipping and the ``"train/grad_norm"`` metric; MinAtar's 0/1
observations are stored as ``bool`` in the replay and cast back when sampled.

Hooks (all optional; without them the loop is the plain one above):

* ``outputs_per_action`` (:func:`init`): the head has ``A * N`` outputs,
  action-major (a return law of ``N`` atoms, or ``N`` critics per action);
* ``eval_fn`` (:func:`make_run`): the chunk's evaluation, replacing the greedy
  one (its metric names are the chunk's ``"eval/..."`` rows; with
  ``num_eval_episodes = 0`` they are read from its shapes at one episode and
  the rows are NaN);
* ``extension`` (:class:`Extension`): extra agent state carried next to the
  loop's :class:`State`, and extra work in every iteration. With an extension
  the loop's carry is the agent's own state, a flax struct whose field
  ``base`` is this module's :class:`State` (created by ``extension.init``);
  the iteration becomes

  1. ``params = extension.params(base.params, state)``: what ``act_fn``,
     ``loss_fn`` (first argument) and ``eval_fn`` receive, e.g. the network
     together with a Lagrange multiplier. The gradient step differentiates
     ``loss_fn(extension.params(p, state), ...)`` in the network parameters
     ``p`` only: the extension's state is a constant of the learning step;
  2. COLLECT with ``rollout.step(..., extras_keys=extension.info_keys)`` (the
     ``info`` entries copied into ``Transition.extras``); the buffer stores the
     ``extension.buffer_keys`` among them (float32 scalars per transition);
  3. LEARN exactly as without the extension (same keys, same cadence);
  4. ``state, metrics = extension.after_iteration(state, transitions, info)``
     with the base already advanced (learning done) and ``transitions[E]``,
     ``info[E]`` of this iteration's step; its metrics join the iteration's.

  The key splits are those of the plain loop, so an extension whose
  ``params`` and ``after_iteration`` leave the computation unchanged gives the
  plain run bitwise (the constrained agent at ``lambda = 0`` is M-DQN). The
  extension is the Lagrangian multiplier of :mod:`jaxrl.agents.constrained`; any
  per-iteration statistic of the collected data (a running cost, a
  temperature schedule, a dual variable) fits the same slot.

This module is private to ``agents``; its names are not part of the public API.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxrl import buffer as buffer_lib
from jaxrl import envs, rollout
from jaxrl import transition as transition_lib
from jaxrl.envs.wrappers import episode_metrics, log_unwrap, log_wrap
from jaxrl.errors import ConfigError
from jaxrl.loop import EVAL_NAMES, chunked_train, greedy_evaluation, run_chunk
from jaxrl.nets import QNetwork
from jaxrl.ops import sampling
from jaxrl.optim import clip_by_global_norm, learning_rate_at, make_optimizer
from jaxrl.transition import Transition
from jaxrl.types import Array, ArrayTree, Metrics, Params, PRNGKey

__all__ = [
    "LossFn",
    "ActFn",
    "EvalFn",
    "Extension",
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


@dataclasses.dataclass(frozen=True)
class Extension:
    """Extra agent state and per-iteration work around the shared loop.

    See the module docstring for where each hook runs. The functions are
    called at trace time; they may close over the agent's config and the
    environment parameters (traced or not).

    Attributes:
      init: ``init(base) -> state``: the agent's state, a flax struct with a
        field ``base`` holding ``base`` (a :class:`State`).
      params: ``params(network_params, state) -> agent_params``: what
        ``act_fn``, ``loss_fn`` and ``eval_fn`` receive as ``params``.
      after_iteration: ``after_iteration(state, transitions, info) ->
        (state, metrics)``, called at the end of every iteration with the
        ``Transition[E]`` (extras: ``info_keys``) and ``info[E]`` collected.
      info_keys: ``info`` keys copied into ``Transition.extras`` when stepping.
      buffer_keys: the subset of ``info_keys`` stored in the replay buffer.
    """

    init: Callable[[State], Any]
    params: Callable[[Params, Any], Any]
    after_iteration: Callable[[Any, Transition, dict[str, Array]], tuple[Any, Metrics]]
    info_keys: tuple[str, ...] = ()
    buffer_keys: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        missing = [k for k in self.buffer_keys if k not in self.info_keys]
        if missing:
            raise ConfigError(
                f"Extension.buffer_keys must be among info_keys, got {missing}"
            )


def _base(state: Any, extension: Extension | None) -> State:
    return state if extension is None else state.base


def _with_base(state: Any, base: State, extension: Extension | None) -> Any:
    return base if extension is None else state.replace(base=base)


def _agent_params(params: Params, state: Any, extension: Extension | None) -> Any:
    return params if extension is None else extension.params(params, state)


# ----------------------------------------------------------------------------- helpers


@jax.custom_batching.custom_vmap
def _any_over_batch(pred: Array) -> Array:
    """``pred``; under ``vmap``, ``any`` over the mapped axis, NOT batched."""
    return pred


@_any_over_batch.def_vmap
def _any_over_batch_rule(
    axis_size: int, in_batched: list[bool], pred: Array
) -> tuple[Array, bool]:
    del axis_size
    if in_batched[0]:
        pred = jnp.any(pred, axis=0)
    return _any_over_batch(pred), False  # recurse: nested vmaps reduce too


@jax.custom_batching.custom_vmap
def _all_over_batch(pred: Array) -> Array:
    """``pred``; under ``vmap``, ``all`` over the mapped axis, NOT batched."""
    return pred


@_all_over_batch.def_vmap
def _all_over_batch_rule(
    axis_size: int, in_batched: list[bool], pred: Array
) -> tuple[Array, bool]:
    del axis_size
    if in_batched[0]:
        pred = jnp.all(pred, axis=0)
    return _all_over_batch(pred), False


def _shared_branch(pred: Array) -> Array:
    """``int32[]`` branch index of a per-seed ``pred``, shared by every vmapped seed.

    0: ``pred`` is false for all seeds (under every enclosing ``vmap``), 2: true
    for all, 1: mixed. The index is not batched, so a ``lax.switch`` on it stays
    a real branch under a seed ``vmap`` (a ``lax.cond`` on the batched ``pred``
    becomes a ``select`` that runs both branches on every iteration); only
    the mixed case (e.g. a vmapped sweep over ``learning_starts``) has to
    compute the work and select per seed. Without ``vmap`` it is ``2 * pred``.
    """
    return _any_over_batch(pred).astype(jnp.int32) + _all_over_batch(pred).astype(
        jnp.int32
    )


def _select_tree(pred: Array, on_true: Any, on_false: Any) -> Any:
    return jax.tree.map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


def _nan_like(tree: Any) -> Any:
    """NaN arrays of ``tree``'s shapes and dtypes (arrays or shape structs)."""
    return jax.tree.map(lambda x: jnp.full(x.shape, jnp.nan, x.dtype), tree)


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


def _binary_obs(env: Any) -> bool:
    """Whether ``env`` (unwrapped) is a gymnax MinAtar game: 0/1 float32 grids.

    The replay stores such observations as ``bool`` (a quarter of the bytes)
    and casts them back to the env's dtype when sampling: exact, so runs are
    bitwise those of a float32 replay.
    """
    inner = getattr(env, "unwrapped", env)  # through StickyActions and the like
    return type(inner).__module__.startswith("gymnax.environments.minatar")


def _to_replay(tr: Transition) -> Transition:
    return tr.replace(
        obs=tr.obs.astype(jnp.bool_), next_obs=tr.next_obs.astype(jnp.bool_)
    )


def _from_replay(tr: Transition, dtype: Any) -> Transition:
    return tr.replace(obs=tr.obs.astype(dtype), next_obs=tr.next_obs.astype(dtype))


def _optimizer(config: Any, *, clip: bool = True) -> Any:
    return make_optimizer(
        config.lr,
        max_grad_norm=config.max_grad_norm,
        eps=config.adam_eps,
        decay_steps=_expected_updates(config),
        end_fraction=config.lr_end_fraction,
        clip=clip,
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

    The coin and the random action come from three words of ONE call of the
    key's bit generator (:mod:`jaxrl.ops.sampling`): the coin is ``U < ε`` with
    ``U`` uniform on ``[0, 1)`` from the first word, the action uniform on
    ``{0, ..., A - 1}`` from the other two (instead of a split, a uniform and a
    ``randint``: five calls).

    Args:
      best: ``[]`` int32 the greedy action (of whatever rule the agent uses).
      key: PRNG key (consumed).
      epsilon: ``[]`` exploration rate.
      num_actions: static ``A``.

    Returns:
      ``[]`` int32 action.
    """
    words = jax.random.bits(key, (3,), jnp.uint32)
    coin = sampling.unit_float_from_word(words[0]) < epsilon
    random_action = sampling.index_from_words(words[1], words[2], num_actions)
    return jnp.where(coin, random_action, best)


# ------------------------------------------------------------------------ init / update


def init(
    key: PRNGKey,
    env: Any,
    env_params: Any,
    config: Any,
    *,
    outputs_per_action: int = 1,
    extension: Extension | None = None,
) -> Any:
    """Initialise networks, optimiser, replay buffer and ``num_envs`` environments.

    Args:
      key: a typed PRNG key (the only place keys enter).
      env: a gymnax environment with discrete actions (wrapped in ``LogWrapper``
        here unless it already is one).
      env_params: its parameters.
      config: the agent config (``config.validate()`` is called).
      outputs_per_action: static, network outputs per action (``1``: a Q-value;
        ``N``: a return law of ``N`` atoms, or ``N`` critics; the head has
        ``A * N`` outputs, action-major).
      extension: optional :class:`Extension`; its ``buffer_keys`` become float32
        ``extras`` of the buffer's items, and its ``init`` wraps the state.

    Returns:
      The initial :class:`State`, or ``extension.init`` of it.
    """
    config.validate()
    env = log_wrap(env)
    key, k_env, k_net = jax.random.split(key, 3)
    obs, env_state = rollout.reset(k_env, env, env_params, config.num_envs)
    obs_0 = jax.tree.map(lambda x: x[0], obs)
    user = type(config).__module__.rsplit(".", 1)[-1]  # dqn, mvi, mviq, dist_dqn
    num_actions = envs.num_actions(log_unwrap(env), env_params, user=user)
    net = network(config, int(num_actions) * int(outputs_per_action), jnp.ndim(obs_0))
    params = net.init(k_net, obs_0)
    opt_state = _optimizer(config).init(params)
    extras = {}
    if extension is not None:
        extras = {k: jnp.zeros((), jnp.float32) for k in extension.buffer_keys}
    example = transition_lib.example(obs_0, jnp.zeros((), jnp.int32), extras)
    if _binary_obs(log_unwrap(env)):
        example = _to_replay(example)
    buffer = buffer_lib.init(example, config.buffer_size)
    state = State(
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
    return state if extension is None else extension.init(state)


def _gradient(
    state: State, data: Transition, config: Any, loss_fn: LossFn
) -> tuple[Params, Metrics]:
    """The gradient of ``loss_fn`` on ``data`` at ``state.params`` and its metrics."""
    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
    (_, metrics), grads = grad_fn(state.params, state.target_params, data, config)
    return grads, metrics


def _apply_gradient(
    state: State, grads: Params, metrics: Metrics, config: Any
) -> tuple[State, Metrics]:
    """The optimiser step on ``grads``, then maybe the target move (see :func:`update`)."""
    # One global norm for the clipping and the metric; the optimiser's own
    # clipping stage is an identity (same state), so the numbers are unchanged.
    grad_norm = optax.tree.norm(grads)
    grads = clip_by_global_norm(grads, grad_norm, config.max_grad_norm)
    optimizer = _optimizer(config, clip=False)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = jax.tree.map(lambda p, u: p + u, state.params, updates)
    num_updates = state.num_updates + 1
    period = jnp.asarray(config.target_update_period, jnp.int32)
    do_target = jnp.mod(num_updates, jnp.maximum(period, 1)) == 0
    polyak = jnp.asarray(config.polyak, jnp.float32)

    def keep(t: Params, p: Params) -> Params:
        del p
        return t

    def move(t: Params, p: Params) -> Params:
        return jax.tree.map(lambda t, p: polyak * p + (1.0 - polyak) * t, t, p)

    def move_some(t: Params, p: Params) -> Params:
        return _select_tree(do_target, move(t, p), t)

    # A real branch (every seed has the same update count): the target moves
    # once per period instead of a select over the parameters at every step.
    target_params = jax.lax.switch(
        _shared_branch(do_target), (keep, move_some, move), state.target_params, params
    )
    metrics = {
        **metrics,
        "train/grad_norm": grad_norm,
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
    grads, metrics = _gradient(state, data, config, loss_fn)
    return _apply_gradient(state, grads, metrics, config)


# ------------------------------------------------------------------------ training loop


def _learn(
    state: State, batches: Transition, config: Any, loss_fn: LossFn
) -> tuple[State, Metrics]:
    """Do one gradient step per batch of ``Transition[U, B]``; return last metrics."""
    state, metrics = jax.lax.scan(
        lambda s, b: update(s, b, config, loss_fn=loss_fn), state, batches
    )
    return state, jax.tree.map(lambda x: x[-1], metrics)


def _learn_once(
    state: State,
    batches: Transition,
    should_learn: Array,
    config: Any,
    loss_fn: LossFn,
) -> tuple[State, Metrics]:
    """:func:`update` on ``batches[0]`` where ``should_learn``; else NaN metrics.

    Only the gradient is a branch (``_shared_branch``: skipped when no seed
    learns); the optimiser step and the target move run outside it and are
    kept by a select where ``should_learn``. A branch's outputs are copied
    into the loop's carry, so returning the new parameters, target and Adam
    moments from the branch cost four parameter-sized copies an iteration;
    the gradient is a temporary.
    """
    batch = jax.tree.map(lambda x: x[0], batches)
    grad = functools.partial(_gradient, config=config, loss_fn=loss_fn)
    grad_shapes, metric_shapes = jax.eval_shape(grad, state, batch)

    def skip(s: State, b: Transition) -> tuple[Params, Metrics]:
        del s, b
        return (
            jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), grad_shapes),
            _nan_like(metric_shapes),
        )

    grads, metrics = jax.lax.switch(
        _shared_branch(should_learn), (skip, grad, grad), state, batch
    )
    stepped, metrics = _apply_gradient(state, grads, metrics, config)
    return _select_tree(should_learn, (stepped, metrics), (state, _nan_like(metrics)))


def _learn_some(
    state: State,
    batches: Transition,
    should_learn: Array,
    config: Any,
    loss_fn: LossFn,
) -> tuple[State, Metrics]:
    """:func:`_learn` (one update per batch) where ``should_learn``; else NaN metrics.

    The whole scan of updates is the branch (``_shared_branch``); seeds of one
    vmap that disagree compute it and keep it by a select.
    """
    learn = functools.partial(_learn, config=config, loss_fn=loss_fn)
    metric_shapes = jax.eval_shape(learn, state, batches)[1]

    def skip(s: State, b: Transition) -> tuple[State, Metrics]:
        del b
        return s, _nan_like(metric_shapes)

    def select(s: State, b: Transition) -> tuple[State, Metrics]:
        return _select_tree(should_learn, learn(s, b), skip(s, b))

    return jax.lax.switch(
        _shared_branch(should_learn), (skip, select, learn), state, batches
    )


def _bind_loss(loss_fn: LossFn, extension: Extension, state: Any) -> LossFn:
    """``loss_fn`` of the network parameters, the extension's state held fixed."""

    def bound(
        params: Params, target_params: Params, batch: Transition, config: Any
    ) -> tuple[Array, Metrics]:
        return loss_fn(extension.params(params, state), target_params, batch, config)

    return bound


def _iteration(
    state: Any,
    _: Any,
    config: Any,
    env: Any,
    env_params: Any,
    loss_fn: LossFn,
    act_fn: ActFn,
    extension: Extension | None = None,
) -> tuple[Any, Metrics]:
    """One iteration: act in ``num_envs`` envs, store, maybe learn (scan body).

    ``state`` is a :class:`State`, or the agent's state around one when an
    :class:`Extension` is given (see the module docstring).
    """
    base = _base(state, extension)
    key, k_act, k_step, k_learn = jax.random.split(base.key, 4)
    # COLLECT
    epsilon = epsilon_at(base.step, config)
    act_keys = jax.random.split(k_act, config.num_envs)
    params = _agent_params(base.params, state, extension)
    policy = lambda o, k: act_fn(params, o, k, config, epsilon=epsilon)
    action = jax.vmap(policy)(base.obs, act_keys)
    info_keys = () if extension is None else extension.info_keys
    tr, env_state, obs, info = rollout.step(
        k_step, env, env_params, base.env_state, base.obs, action, info_keys
    )
    stored = tr
    if extension is not None and extension.buffer_keys != info_keys:
        stored = tr.replace(extras={k: tr.extras[k] for k in extension.buffer_keys})
    binary_obs = _binary_obs(log_unwrap(env))
    if binary_obs:
        stored = _to_replay(stored)
    buffer = buffer_lib.add(base.buffer, stored)
    step = base.step + 1
    base = base.replace(buffer=buffer, env_state=env_state, obs=obs, key=key, step=step)
    # LEARN: batches are sampled outside the branch so no key crosses it (a
    # branch with a batched index becomes a select, which the key-reuse checker
    # rejects); the learner sees only the fields learning changes (a branch
    # output is copied into the loop's carry: the environments and the step
    # stay out of it). The branch index is shared by the vmapped seeds
    # (``_shared_branch``): every seed of a run has the same step, so learning
    # is a real branch.
    batch_keys = jax.random.split(k_learn, config.updates_per_iter)
    batches = jax.vmap(lambda k: buffer_lib.sample(buffer, k, config.batch_size))(
        batch_keys
    )
    if binary_obs:
        batches = _from_replay(batches, jax.tree.leaves(base.obs)[0].dtype)
    env_steps = step * config.num_envs
    frequency = jnp.maximum(jnp.asarray(config.train_frequency, jnp.int32), 1)
    should_learn = (env_steps >= config.learning_starts) & (
        jnp.mod(step, frequency) == 0
    )
    if extension is not None:
        # The extension's (pre-iteration) state is a constant of the step.
        loss_fn = _bind_loss(loss_fn, extension, state)
    learner = base.replace(key=None, buffer=None, env_state=None, obs=None, step=None)
    learn = _learn_once if config.updates_per_iter == 1 else _learn_some
    learner, learn_metrics = learn(learner, batches, should_learn, config, loss_fn)
    base = base.replace(
        params=learner.params,
        target_params=learner.target_params,
        opt_state=learner.opt_state,
        num_updates=learner.num_updates,
    )
    state = _with_base(state, base, extension)
    extra_metrics = {}
    if extension is not None:
        state, extra_metrics = extension.after_iteration(state, tr, info)
    metrics = {
        **learn_metrics,
        **episode_metrics(info),
        **extra_metrics,
        "train/epsilon": epsilon,
        "train/env_steps": env_steps,
        "train/num_updates": base.num_updates,
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
    return greedy_evaluation(
        act_fn,
        params,
        key,
        config,
        env,
        env_params,
        num_episodes=config.num_eval_episodes,
        max_steps=config.eval_max_steps,
    )


def _split_key(state: Any, extension: Extension | None) -> tuple[Any, PRNGKey]:
    base = _base(state, extension)
    key, sub = jax.random.split(base.key)
    return _with_base(state, base.replace(key=key), extension), sub


def _run_chunk(
    state: Any,
    config: Any,
    env: Any,
    env_params: Any,
    loss_fn: LossFn,
    act_fn: ActFn,
    eval_fn: EvalFn | None,
    extension: Extension | None = None,
) -> tuple[Any, Metrics]:
    body = functools.partial(
        _iteration,
        config=config,
        env=log_wrap(env),
        env_params=env_params,
        loss_fn=loss_fn,
        act_fn=act_fn,
        extension=extension,
    )
    names = EVAL_NAMES
    if eval_fn is None:
        eval_fn = functools.partial(_evaluate, act_fn=act_fn)
    elif config.num_eval_episodes == 0:
        # The names of eval_fn's metrics, from its shapes at one episode.
        base = _base(state, extension)
        probe = config.replace(num_eval_episodes=1)
        params = _agent_params(base.params, state, extension)
        shapes = jax.eval_shape(
            lambda p, k: eval_fn(p, k, probe, env, env_params), params, base.key
        )
        names = tuple(shapes)

    def evaluate(state: Any, key: PRNGKey) -> Metrics:
        params = _agent_params(_base(state, extension).params, state, extension)
        return eval_fn(params, key, config, env, env_params)

    return run_chunk(
        body,
        state,
        config.iters_per_chunk,
        evaluate=evaluate if config.num_eval_episodes > 0 else None,
        eval_names=names,
        split_key=functools.partial(_split_key, extension=extension),
    )


def make_run(
    config: Any,
    env: Any,
    env_params: Any,
    *,
    loss_fn: LossFn,
    act_fn: ActFn,
    eval_fn: EvalFn | None = None,
    extension: Extension | None = None,
) -> Callable[[Any], tuple[Any, Metrics]]:
    """Return ``run(state) -> (state, metrics)`` advancing one chunk.

    A chunk is ``config.iters_per_chunk`` iterations then an evaluation:
    ``eval_fn(params, key, config, env, env_params)`` if given, else the
    greedy evaluation of ``act_fn(..., greedy=True)`` (``"eval/return"``,
    ``"eval/length"``); metrics have a leading ``[iters_per_chunk]`` axis.
    With an :class:`Extension`, ``state`` is the agent's state around the
    loop's (``state.base``) and its ``after_iteration`` metrics are rows too.
    """
    config.validate()
    inner = log_unwrap(env)

    def run(state: Any) -> tuple[Any, Metrics]:
        return _run_chunk(
            state, config, inner, env_params, loss_fn, act_fn, eval_fn, extension
        )

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
    extension: Extension | None = None,
) -> Callable[[PRNGKey], tuple[Any, Metrics]]:
    """Return ``train(key) -> (state, metrics)``: :func:`init`, then the chunks.

    Metrics have a leading ``[num_chunks * iters_per_chunk]`` axis (one row
    per iteration). Use ``jax.jit(jax.vmap(train))(keys)`` for several seeds.
    ``eval_fn``, ``outputs_per_action`` and ``extension``: see :func:`make_run`
    and :func:`init`.
    """
    config.validate()
    run = make_run(
        config,
        env,
        env_params,
        loss_fn=loss_fn,
        act_fn=act_fn,
        eval_fn=eval_fn,
        extension=extension,
    )
    inner = log_unwrap(env)

    return chunked_train(
        lambda key: init(
            key,
            inner,
            env_params,
            config,
            outputs_per_action=outputs_per_action,
            extension=extension,
        ),
        run,
        config.num_chunks,
    )
