"""Initialisation, evaluation and the training loop of the deep dual-RL agents."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl import buffer as buffer_lib
from jaxrl import config as config_lib
from jaxrl.agents.dual_rl.config import Batch, Config, State
from jaxrl.agents.dual_rl.data import _action_space, _bounds, check_data, default_data
from jaxrl.agents.dual_rl.losses import _optimizers, update
from jaxrl.agents.dual_rl.networks import (
    GaussianPolicy,
    Networks,
    StateActionCritic,
    _mlp_kw,
    _policy_out,
    _unscale_action,
)
from jaxrl.errors import ConfigError
from jaxrl.loop import EVAL_NAMES, chunked_train, greedy_evaluation, run_chunk
from jaxrl.nets import QNetwork
from jaxrl.ops.sampling import uniform_index
from jaxrl.transition import Transition
from jaxrl.types import Array, ArrayLike, ArrayTree, Metrics, PRNGKey

# --------------------------------------------------------------------- agent


def act(
    params: Networks,
    obs: ArrayTree,
    key: PRNGKey | None,
    config: Config,
    *,
    greedy: bool = False,
) -> Array:
    """Choose an action for ONE observation from the extracted policy.

    Discrete: the mode (``greedy``) or a sample of the categorical policy.
    Continuous: the mean (``greedy``) or a Gaussian sample, clipped to the
    action bounds and mapped to the environment's units.

    Args:
      params: the networks.
      obs: ``[*obs_shape]`` one observation (vmap for a batch).
      key: typed key (unused when ``greedy``).
      config: the config.
      greedy: static switch.

    Returns:
      ``[]`` int32 action, or ``[d]`` float32 action.
    """
    out = _policy_out(params, obs, config, jnp.ndim(obs))
    if params.discrete:
        if greedy:
            return jnp.argmax(out).astype(jnp.int32)
        return jax.random.categorical(key, out).astype(jnp.int32)
    mean, std = out
    u = mean if greedy else mean + std * jax.random.normal(key, mean.shape)
    return _unscale_action(params, u)


def init_from_data(
    key: PRNGKey,
    env: Any,
    env_params: Any,
    config: Config,
    data: Transition,
    expert: Transition | None = None,
    data_size: ArrayLike | None = None,
    expert_size: ArrayLike | None = None,
) -> State:
    """Return the initial state for a given dataset (and expert set for ReCOIL).

    Args:
      key: typed key (network initialisation; the rest is kept in the state).
      env: the environment (spaces only).
      env_params: its parameters.
      config: the config (validated here).
      data: ``Transition[N]`` dataset (see :func:`check_data`).
      expert: ``Transition[N_E]`` expert set; required by ``"recoil"``, refused
        by the other methods.
      data_size: rows of ``data`` to sample, the first ones (``[]`` int, may be
        traced; default ``N``). The rest is padding that is never sampled:
        datasets of different sizes padded to one ``N`` then share one
        compilation of the training loop.
      expert_size: the same for ``expert`` (default ``N_E``).

    Returns:
      The :class:`State`.

    Raises:
      ConfigError: invalid config or data, ``expert`` given / missing, or a
        concrete ``data_size`` / ``expert_size`` outside ``[1, N]``.
    """
    config_lib.validate(config)
    data = check_data(data, env, env_params, "data")
    if config.method == "recoil":
        if expert is None:
            raise ConfigError("method='recoil' needs an expert dataset (expert=...)")
        expert = check_data(expert, env, env_params, "expert")
    elif expert is not None:
        raise ConfigError(
            f"an expert dataset is used by method='recoil' only, not {config.method!r}"
        )
    data_size = _valid_rows("data_size", data_size, data)
    if expert is not None:
        expert_size = _valid_rows("expert_size", expert_size, expert)
    elif expert_size is not None:
        raise ConfigError("expert_size is given without an expert dataset")
    discrete, space = _action_space(env, env_params)
    obs_0 = data.obs[0]
    obs_ndim = jnp.ndim(obs_0)
    num_critics = 2 if config.double_q else 1
    key, k_critic, k_value, k_policy = jax.random.split(key, 4)
    critic_keys = jax.random.split(k_critic, num_critics)
    kw = _mlp_kw(config)
    if discrete:
        num_actions = int(space.n)
        critic_net = QNetwork(num_actions=num_actions, obs_ndim=obs_ndim, **kw)
        critic = jax.vmap(lambda k: critic_net.init(k, obs_0))(critic_keys)
        policy_net = QNetwork(num_actions=num_actions, obs_ndim=obs_ndim, **kw)
        policy = policy_net.init(k_policy, obs_0)
        low = high = None
    else:
        low, high = _bounds(space)
        critic_net = StateActionCritic(obs_ndim=obs_ndim, **kw)
        critic = jax.vmap(lambda k: critic_net.init(k, obs_0, jnp.zeros_like(low)))(
            critic_keys
        )
        policy_net = GaussianPolicy(action_dim=low.shape[0], obs_ndim=obs_ndim, **kw)
        policy = policy_net.init(k_policy, obs_0)
    value_net = QNetwork(
        num_actions=1, obs_ndim=obs_ndim, layer_norm=config.value_layer_norm, **kw
    )
    value = value_net.init(k_value, obs_0)
    params = Networks(
        critic=critic, value=value, policy=policy, action_low=low, action_high=high
    )
    opts = _optimizers(config)
    opt_state = {name: opts[name].init(getattr(params, name)) for name in opts}
    return State(
        params=params,
        target_params=jax.tree.map(jnp.copy, critic),
        opt_state=opt_state,
        data=data,
        expert=expert,
        key=key,
        step=jnp.zeros((), jnp.int32),
        data_size=data_size,
        expert_size=expert_size,
    )


def _valid_rows(name: str, size: ArrayLike | None, data: Transition) -> Array:
    """``size`` (default the leading axis) as int32, checked when concrete."""
    n = jnp.shape(data.reward)[0]
    if size is None:
        return jnp.asarray(n, jnp.int32)
    if config_lib.is_concrete(size):
        value = np.asarray(size)
        if value.shape != () or not np.issubdtype(value.dtype, np.integer):
            raise ConfigError(f"{name} must be an integer scalar, got {size!r}")
        if not 1 <= int(value) <= n:
            raise ConfigError(f"{name} must lie in [1, {n}], got {int(value)}")
    return jnp.asarray(size, jnp.int32)


def init(key: PRNGKey, env: Any, env_params: Any, config: Config) -> State:
    """Return the initial state on the default random dataset (:func:`default_data`).

    ReCOIL uses that dataset as its expert set too (the expert-only case).

    Args:
      key: typed key (dataset, then networks).
      env: the environment.
      env_params: its parameters.
      config: the config.

    Returns:
      The :class:`State`.
    """
    config_lib.validate(config)
    key, k_data = jax.random.split(key)
    data = default_data(k_data, env, env_params, config)
    expert = data if config.method == "recoil" else None
    return init_from_data(key, env, env_params, config, data, expert)


def _sample(data: Transition, key: PRNGKey, size: Array | None, batch: int):
    if size is None:
        return buffer_lib.sample_dataset(data, key, batch)
    idx = uniform_index(key, (batch,), size)
    return jax.tree.map(lambda x: jnp.asarray(x)[idx], data)


def sample_batch(
    data: Transition,
    expert: Transition | None,
    key: PRNGKey,
    config: Config,
    data_size: Array | None = None,
    expert_size: Array | None = None,
) -> Batch:
    """Sample ``batch_size`` transitions (and as many expert ones for ReCOIL).

    Uniform with replacement over the first ``data_size`` rows (all rows when
    ``None``), and likewise for the expert set.

    Args:
      data: ``Transition[N]``.
      expert: ``Transition[N_E]`` or ``None``.
      key: typed key (split here).
      config: the config.
      data_size: ``[]`` int rows of ``data`` to sample from, or ``None``.
      expert_size: ``[]`` int rows of ``expert`` to sample from, or ``None``.

    Returns:
      The :class:`Batch`.
    """
    k_data, k_expert = jax.random.split(key)
    sample = _sample(data, k_data, data_size, config.batch_size)
    if expert is None:
        return Batch(data=sample)
    return Batch(
        data=sample,
        expert=_sample(expert, k_expert, expert_size, config.batch_size),
    )


def _iteration(state: State, _: None, config: Config) -> tuple[State, Metrics]:
    """Scan body: sample a batch from the state's data, take one step."""
    key, k_batch = jax.random.split(state.key)
    batch = sample_batch(
        state.data, state.expert, k_batch, config, state.data_size, state.expert_size
    )
    return update(state.replace(key=key), batch, config)


def evaluate(
    params: Networks, key: PRNGKey, config: Config, env: Any, env_params: Any
) -> Metrics:
    """Run ``num_eval_episodes`` greedy episodes; return their mean statistics.

    Args:
      params: the networks.
      key: typed key.
      config: the config (episodes, step cap, reference returns).
      env: the environment.
      env_params: its parameters.

    Returns:
      ``{"eval/return", "eval/length", "eval/normalized_score"}`` scalars.
    """

    metrics = greedy_evaluation(
        act,
        params,
        key,
        config,
        env,
        env_params,
        num_episodes=config.num_eval_episodes,
        max_steps=config.eval_max_steps,
    )
    ret = metrics["eval/return"]
    low = jnp.asarray(config.random_return, jnp.float32)
    high = jnp.asarray(config.expert_return, jnp.float32)
    return {**metrics, "eval/normalized_score": 100.0 * (ret - low) / (high - low)}


_EVAL_NAMES = (*EVAL_NAMES, "eval/normalized_score")


def _run_chunk(
    state: State, config: Config, env: Any, env_params: Any
) -> tuple[State, Metrics]:
    def chunk_eval(state: State, key: PRNGKey) -> Metrics:
        return evaluate(state.params, key, config, env, env_params)

    return run_chunk(
        functools.partial(_iteration, config=config),
        state,
        config.iters_per_chunk,
        evaluate=chunk_eval if config.num_eval_episodes > 0 else None,
        eval_names=_EVAL_NAMES,
    )


def make_run(config: Config, env: Any, env_params: Any):
    """Return ``run(state) -> (state, metrics)`` advancing one chunk.

    ``iters_per_chunk`` gradient steps on batches of ``state.data`` (and
    ``state.expert``), then the greedy evaluation; metrics are
    ``[iters_per_chunk]``.

    Args:
      config: the config (validated here).
      env: the environment (evaluation).
      env_params: its parameters.

    Returns:
      ``run``.
    """
    config_lib.validate(config)

    def run(state: State) -> tuple[State, Metrics]:
        return _run_chunk(state, config, env, env_params)

    return run


def make_train(config: Config, env: Any, env_params: Any):
    """Return ``train(key) -> (state, metrics)`` on the default random dataset.

    :func:`init` then ``num_chunks`` runs (equal to calling them in turn);
    metrics are ``[num_chunks * iters_per_chunk]``. Use
    ``jax.jit(jax.vmap(train))(keys)`` for several seeds (each with its own
    random dataset).

    Args:
      config: the config.
      env: the environment.
      env_params: its parameters.

    Returns:
      ``train``.
    """
    run = make_run(config, env, env_params)
    return chunked_train(
        lambda key: init(key, env, env_params, config), run, config.num_chunks
    )


def make_train_from_data(config: Config, env: Any, env_params: Any):
    """Return ``train(key, data, expert=None, data_size=None, expert_size=None)``.

    ``train`` returns ``(state, metrics)``: :func:`init_from_data` then
    ``num_chunks`` runs. The datasets are arguments, so ``jax.vmap(train,
    in_axes=(0, None, None))`` maps seeds over one shared dataset (kept
    unbatched inside the scan) and a config ``vmap`` sweeps hyperparameters;
    ``data_size`` / ``expert_size`` (traced) let zero-padded datasets of
    different sizes reuse one compilation.

    Args:
      config: the config.
      env: the environment.
      env_params: its parameters.

    Returns:
      ``train``.
    """
    run = make_run(config, env, env_params)

    def train(
        key: PRNGKey,
        data: Transition,
        expert: Transition | None = None,
        data_size: ArrayLike | None = None,
        expert_size: ArrayLike | None = None,
    ) -> tuple[State, Metrics]:
        start = functools.partial(
            init_from_data,
            env=env,
            env_params=env_params,
            config=config,
            data=data,
            expert=expert,
            data_size=data_size,
            expert_size=expert_size,
        )
        return chunked_train(start, run, config.num_chunks)(key)

    return train
