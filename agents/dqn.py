"""Deep Q-Network (DQN): the plain value-based baseline for discrete-action gymnax envs.

One *iteration* steps ``num_envs`` environments once with an ε-greedy policy,
adds the ``num_envs`` transitions to a uniform replay buffer and, once
``learning_starts`` environment steps have been taken and on every
``train_frequency``-th iteration, does ``updates_per_iter`` gradient steps on
the Huber TD error against a target network. The target network moves towards
the online one every ``target_update_period`` gradient steps by Polyak
averaging with rate ``tau`` (``tau = 1``: a hard copy, as in Mnih et al.).

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

    env, env_params = envs.make("CartPole-v1")
    config = dqn.cartpole_config()
    train = jax.jit(jax.vmap(dqn.make_train(config, env, env_params)))
    state, metrics = train(jax.random.split(jax.random.key(0), 4))

References:
  Mnih et al., "Human-level control through deep reinforcement learning",
  Nature 518, 2015. van Hasselt et al., "Deep RL with double Q-learning",
  AAAI 2016 (``double_q=True``).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from envs.wrappers import LogWrapper
from jaxrl import buffer as buffer_lib
from jaxrl import rollout
from jaxrl import transition as transition_lib
from jaxrl.config import check_positive, check_range, static
from jaxrl.errors import ConfigError
from jaxrl.nets import ACTIVATIONS, QNetwork
from jaxrl.ops.bellman import double_q_learning, q_learning
from jaxrl.ops.losses import huber_loss
from jaxrl.optim import learning_rate_at, make_optimizer
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
    tau: float = 1.0  # Polyak rate of the target update (1: hard copy)
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
        check_range("tau", self.tau, 0.0, 1.0, low_inclusive=False)
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
        tau=1.0,
        huber_delta=1000.0,
    )
    return base.replace(**overrides)


@struct.dataclass
class State:
    """DQN training state (one seed; ``vmap`` adds a leading ``[S]``).

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


def _network(config: Config, num_actions: int, obs_ndim: int) -> QNetwork:
    return QNetwork(
        num_actions=num_actions,
        hidden_sizes=tuple(config.hidden_sizes),
        activation=config.activation,
        obs_ndim=obs_ndim,
        conv_features=tuple(config.conv_features),
    )


def _num_actions(params: Params) -> int:
    return params["params"]["head"]["kernel"].shape[-1]


def _q_values(params: Params, obs: Array, config: Config, obs_ndim: int) -> Array:
    return _network(config, _num_actions(params), obs_ndim).apply(params, obs)


def _optimizer(config: Config) -> Any:
    return make_optimizer(
        config.lr,
        max_grad_norm=config.max_grad_norm,
        eps=config.adam_eps,
        decay_steps=_expected_updates(config),
        end_fraction=config.lr_end_fraction,
    )


def _expected_updates(config: Config) -> Array:
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


def epsilon_at(step: Array, config: Config) -> Array:
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
    config.validate()
    env = _log_env(env)
    key, k_env, k_net = jax.random.split(key, 3)
    obs, env_state = rollout.reset(k_env, env, env_params, config.num_envs)
    obs_0 = jax.tree.map(lambda x: x[0], obs)
    num_actions = env.action_space(env_params).n
    net = _network(config, int(num_actions), jnp.ndim(obs_0))
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
    q = _q_values(params, obs, config, jnp.ndim(obs))
    best = jnp.argmax(q).astype(jnp.int32)
    if greedy:
        del key
        return best
    eps = config.eps_end if epsilon is None else epsilon
    k_explore, k_random = jax.random.split(key)
    explore = jax.random.uniform(k_explore) < eps
    random_action = jax.random.randint(k_random, (), 0, q.shape[-1], dtype=jnp.int32)
    return jnp.where(explore, random_action, best)


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
    q_tm1 = _q_values(params, batch.obs, config, obs_ndim)  # [B, A]
    q_t = _q_values(target_params, batch.next_obs, config, obs_ndim)  # [B, A]
    discount_t = transition_lib.discount(batch, config.gamma)  # [B]
    action = batch.action.astype(jnp.int32)
    if config.double_q:
        q_t_sel = _q_values(params, batch.next_obs, config, obs_ndim)
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
    becomes ``tau * params + (1 - tau) * target_params`` (``tau = 1``: copy).

    Args:
      state: the current state.
      data: ``Transition[B]`` sampled batch.
      config: the config.

    Returns:
      ``(state, metrics)``; ``state.num_updates`` is incremented.
    """
    grad_fn = jax.value_and_grad(loss, has_aux=True)
    (_, metrics), grads = grad_fn(state.params, state.target_params, data, config)
    optimizer = _optimizer(config)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = jax.tree.map(lambda p, u: p + u, state.params, updates)
    num_updates = state.num_updates + 1
    period = jnp.asarray(config.target_update_period, jnp.int32)
    do_target = jnp.mod(num_updates, jnp.maximum(period, 1)) == 0
    tau = jnp.asarray(config.tau, jnp.float32)
    target_params = jax.tree.map(
        lambda t, p: jnp.where(do_target, tau * p + (1.0 - tau) * t, t),
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


def _global_norm(tree: Any) -> Array:
    leaves = jax.tree.leaves(tree)
    return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in leaves))


# ------------------------------------------------------------------------ training loop


def _learn(state: State, batches: Transition, config: Config) -> tuple[State, Metrics]:
    """Do one gradient step per batch of ``Transition[U, B]``; return last metrics."""
    state, metrics = jax.lax.scan(lambda s, b: update(s, b, config), state, batches)
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
    state: State, _: Any, config: Config, env: Any, env_params: Any
) -> tuple[State, Metrics]:
    """One iteration: act in ``num_envs`` envs, store, maybe learn (scan body)."""
    key, k_act, k_step, k_learn = jax.random.split(state.key, 4)
    # COLLECT
    epsilon = epsilon_at(state.step, config)
    act_keys = jax.random.split(k_act, config.num_envs)
    policy = lambda o, k: act(state.params, o, k, config, epsilon=epsilon)
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
    learn = functools.partial(_learn, config=config)
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
    params: Params, key: PRNGKey, config: Config, env: Any, env_params: Any
) -> Metrics:
    def policy(k: PRNGKey, obs: ArrayTree) -> Array:
        del k
        return jax.vmap(lambda o: act(params, o, None, config, greedy=True))(obs)

    out = rollout.evaluate(
        key, env, env_params, policy, config.num_eval_episodes, config.eval_max_steps
    )
    return {
        "eval/return": jnp.mean(out["return"].astype(jnp.float32)),
        "eval/length": jnp.mean(out["length"].astype(jnp.float32)),
    }


def _run_chunk(
    state: State, config: Config, env: Any, env_params: Any
) -> tuple[State, Metrics]:
    log_env = _log_env(env)
    body = functools.partial(
        _iteration, config=config, env=log_env, env_params=env_params
    )
    state, metrics = jax.lax.scan(body, state, None, length=config.iters_per_chunk)
    # EVALUATE (greedy, at the end of the chunk; NaN on the chunk's other iterations)
    nan_row = jnp.full((config.iters_per_chunk,), jnp.nan, jnp.float32)
    if config.num_eval_episodes > 0:
        key, k_eval = jax.random.split(state.key)
        state = state.replace(key=key)
        eval_metrics = _evaluate(state.params, k_eval, config, env, env_params)
        for name, value in eval_metrics.items():
            metrics[name] = nan_row.at[-1].set(value)
    else:
        metrics["eval/return"] = nan_row
        metrics["eval/length"] = nan_row
    return state, metrics


def make_run(config: Config, env: Any, env_params: Any):
    """Return ``run(state) -> (state, metrics)`` advancing one chunk.

    A chunk is ``config.iters_per_chunk`` iterations then a greedy evaluation;
    metrics have a leading ``[iters_per_chunk]`` axis.
    """
    config.validate()
    inner = env.env if isinstance(env, LogWrapper) else env

    def run(state: State) -> tuple[State, Metrics]:
        return _run_chunk(state, config, inner, env_params)

    return run


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
    config.validate()
    run = make_run(config, env, env_params)
    inner = env.env if isinstance(env, LogWrapper) else env

    def train(key: PRNGKey) -> tuple[State, Metrics]:
        state = init(key, inner, env_params, config)
        state, metrics = jax.lax.scan(
            lambda s, _: run(s), state, None, length=config.num_chunks
        )
        flat = jax.tree.map(lambda x: jnp.reshape(x, (-1, *x.shape[2:])), metrics)
        return state, flat

    return train
