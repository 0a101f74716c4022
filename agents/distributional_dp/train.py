"""The agent contract of :mod:`jaxrl.agents.distributional_dp` (one update = one sweep)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxrl.agents import _tabular_loop
from jaxrl.agents.distributional_dp.config import Config, State
from jaxrl.agents.distributional_dp.losses import update
from jaxrl.agents.distributional_dp.solvers import _check_gamma, objective_metrics
from jaxrl.envs import finite_mdp
from jaxrl.errors import ConfigError
from jaxrl.mdp import FiniteMDP
from jaxrl.ops import distributional_dp as ddp
from jaxrl.types import Array, ArrayTree, Metrics, PRNGKey

__all__ = ["init", "act", "make_run", "make_train"]


def init(key: PRNGKey, env: object, env_params: ArrayTree, config: Config) -> State:
    """Return the initial state: delta_0 laws mixed with ``init_noise`` random laws.

    Args:
      key: typed key (split: one subkey draws the random laws, the rest is kept).
      env: the environment (unused; sizes come from ``env_params.mdp``).
      env_params: params holding the ``FiniteMDP`` in ``.mdp``.
      config: the config.

    Returns:
      The :class:`State` (policy greedy w.r.t. the initial laws).
    """
    del env
    return _tabular_loop.init(
        key, env_params, config, agent="distributional_dp", init_fn=_init_state
    )


def _init_state(key: PRNGKey, mdp: FiniteMDP, config: Config) -> State:
    key, k_laws = jax.random.split(key)
    dtype = mdp.P.dtype
    support = config.support.astype(dtype)
    shape = (mdp.num_states, config.num_stocks, mdp.num_actions)
    delta = ddp.delta_laws(shape, support).astype(dtype)
    noise = jax.random.exponential(k_laws, (*shape, config.num_atoms), dtype)
    noise = noise / jnp.sum(noise, axis=-1, keepdims=True)  # Dirichlet(1)
    eps = jnp.asarray(config.init_noise, dtype)
    laws = (1.0 - eps) * delta + eps * noise
    policy = ddp.stock_greedy_policy(
        laws, config.stocks.astype(dtype), support, config.inner_utility
    )
    return State(laws=laws, policy=policy, key=key, step=jnp.asarray(0, jnp.int32))


def act(
    params: dict[str, Array] | Array,
    obs: ArrayTree,
    key: PRNGKey,
    config: Config,
    *,
    greedy: bool = False,
) -> Array:
    """Pick the stock-Markov policy's action at ``(state, grid stock)``.

    ``obs = (env_obs, stock_index)``: the environment observation (a one-hot
    ``[S]`` vector or an int index) and the policy's memory, an int index into
    the stock grid (started by rounding c0 onto the grid and advanced with
    :func:`next_stock_index`, see :func:`rollout`). The action is
    ``policy[s, k]``; with ``greedy=False`` a uniform action is taken with
    probability ``config.epsilon``.

    Args:
      params: ``{"laws", "policy"}`` (:attr:`State.params`) or a ``[S, K]`` int
        policy table (e.g. ``Solution.policy``).
      obs: ``(env_obs, stock_index)`` (unbatched; vmap for a batch).
      key: typed key (split into an exploration and an action key).
      config: the config.
      greedy: act greedily (static).

    Returns:
      ``[]`` int32 action.
    """
    policy = params["policy"] if isinstance(params, dict) else jnp.asarray(params)
    env_obs, k = obs
    s = finite_mdp.state_index(env_obs, policy.shape[0])
    best = policy[s, jnp.asarray(k, jnp.int32)].astype(jnp.int32)
    if greedy:
        return best
    num_actions = params["laws"].shape[2] if isinstance(params, dict) else None
    if num_actions is None:
        raise ConfigError(
            "act(greedy=False) needs params={'laws', 'policy'} to know the "
            "number of actions"
        )
    k_explore, k_action = jax.random.split(key)
    explore = jax.random.uniform(k_explore) < config.epsilon
    random_action = jax.random.randint(k_action, (), 0, num_actions, dtype=jnp.int32)
    return jnp.where(explore, random_action, best)


def _objective(
    state: State, metrics: Metrics, mdp: FiniteMDP, reference: None, config: Config
) -> Metrics:
    """The objective of the new greedy policy (after each update)."""
    del metrics, reference
    return objective_metrics(mdp, state.laws, state.policy, config)


_LOOP = {
    "agent": "distributional_dp",
    "update_fn": update,
    "metrics_fn": _objective,
    "check": _check_gamma,
}


def make_run(config: Config, env: object, env_params: ArrayTree):
    """Return ``run(state) -> (state, metrics)`` advancing ``iters_per_chunk`` updates.

    Args:
      config: the config (validated here; traced fields are skipped).
      env: the environment (unused).
      env_params: params holding the MDP (``gamma`` in ``(0, 1]``).

    Returns:
      ``run``; its metrics have shape ``[iters_per_chunk]``.
    """
    return _tabular_loop.make_run(config, env, env_params, **_LOOP)


def make_train(config: Config, env: object, env_params: ArrayTree):
    """Return ``train(key) -> (state, metrics)``: ``init`` then ``num_chunks`` runs.

    Args:
      config: the config.
      env: the environment.
      env_params: params holding the MDP.

    Returns:
      ``train``; its metrics have shape ``[num_chunks * iters_per_chunk]``.
    """
    return _tabular_loop.make_train(config, env, env_params, init_fn=init, **_LOOP)
