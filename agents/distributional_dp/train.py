"""The agent contract of :mod:`jaxrl.agents.distributional_dp` (one update = one sweep)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import struct

from jaxrl import config as config_lib
from jaxrl.agents.distributional_dp.config import Config
from jaxrl.agents.distributional_dp.solvers import _check_gamma, objective_metrics
from jaxrl.envs import finite_mdp
from jaxrl.errors import ConfigError
from jaxrl.loop import chunked_train
from jaxrl.mdp import FiniteMDP
from jaxrl.ops import distributional_dp as ddp
from jaxrl.types import Array, ArrayTree, Metrics, PRNGKey

__all__ = [
    "State",
    "init",
    "act",
    "loss",
    "update",
    "make_run",
    "make_train",
]


@struct.dataclass
class State:
    """Agent state.

    Attributes:
      laws: ``[S, K, A, N]`` categorical return laws.
      policy: ``[S, K]`` int32 stock-Markov policy (greedy w.r.t. ``laws``
        for ``"vi"``; the next policy to evaluate for ``"pi"``).
      key: typed key (split once by ``init``; updates are deterministic).
      step: ``[]`` int32 number of updates done.
    """

    laws: Array
    policy: Array
    key: PRNGKey
    step: Array

    @property
    def params(self) -> dict[str, Array]:
        """``{"laws": laws, "policy": policy}``, what ``act`` takes as ``params``."""
        return {"laws": self.laws, "policy": self.policy}


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
    mdp = finite_mdp.mdp_from_params(env_params, "distributional_dp")
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


def _sup_cramer(a: Array, b: Array, support: Array) -> Array:
    return jnp.max(ddp.cramer_distance(a, b, support))


def loss(
    params: Array, target_params: Array, batch: FiniteMDP, config: Config
) -> tuple[Array, Metrics]:
    """Return the sup Cramér residual ``max d(params, T_f target_params)`` and metrics.

    Args:
      params: ``[S, K, A, N]`` laws.
      target_params: ``[S, K, A, N]`` laws backed up by the stock-augmented
        optimality operator ``T_f`` (pass ``params`` for the residual of ``params``).
      batch: the MDP.
      config: the config.

    Returns:
      ``(residual, {"dp/residual": residual, "dp/mean_residual": max |mean diff|})``.
    """
    stocks, support = config.stocks, config.support.astype(params.dtype)
    backed = ddp.stock_bellman_optimality(
        batch, target_params, stocks, support, config.inner_utility
    )
    residual = _sup_cramer(params, backed, support)
    mean_gap = jnp.max(jnp.abs((params - backed) @ support))
    return residual, {"dp/residual": residual, "dp/mean_residual": mean_gap}


def update(state: State, data: FiniteMDP, config: Config) -> tuple[State, Metrics]:
    """One VI sweep (``method="vi"``) or one PI step (``"pi"``).

    VI: ``laws <- T_f laws``, ``policy <- greedy(laws)``. PI: ``laws <-``
    ``eval_iters`` sweeps of the evaluation operator of ``state.policy``
    (warm-started), ``policy <- greedy(laws)``.

    Args:
      state: the agent state.
      data: the MDP.
      config: the config.

    Returns:
      ``(new_state, {"dp/residual": sup Cramér distance between old and new laws})``.
    """
    stocks = config.stocks.astype(state.laws.dtype)
    support = config.support.astype(state.laws.dtype)
    f = config.inner_utility
    if config.method == "vi":
        laws = ddp.stock_bellman_optimality(data, state.laws, stocks, support, f)
    else:
        laws = ddp.distributional_policy_evaluation(
            data, state.policy, stocks, support, config.eval_iters, state.laws
        )
    policy = ddp.stock_greedy_policy(laws, stocks, support, f)
    residual = _sup_cramer(laws, state.laws, support)
    new_state = state.replace(laws=laws, policy=policy, step=state.step + 1)
    return new_state, {"dp/residual": residual}


def _iteration(
    state: State, _: None, *, mdp: FiniteMDP, config: Config
) -> tuple[State, Metrics]:
    """Scan body: one update plus the objective of the new greedy policy."""
    state, metrics = update(state, mdp, config)
    return state, {
        **metrics,
        **objective_metrics(mdp, state.laws, state.policy, config),
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
    config_lib.validate(config)
    mdp = finite_mdp.mdp_from_params(env_params, "distributional_dp")
    _check_gamma(mdp)
    del env

    def run(state: State) -> tuple[State, Metrics]:
        body = functools.partial(_iteration, mdp=mdp, config=config)
        return jax.lax.scan(body, state, None, length=config.iters_per_chunk)

    return run


def make_train(config: Config, env: object, env_params: ArrayTree):
    """Return ``train(key) -> (state, metrics)``: ``init`` then ``num_chunks`` runs.

    Args:
      config: the config.
      env: the environment.
      env_params: params holding the MDP.

    Returns:
      ``train``; its metrics have shape ``[num_chunks * iters_per_chunk]``.
    """
    run = make_run(config, env, env_params)

    return chunked_train(
        lambda key: init(key, env, env_params, config), run, config.num_chunks
    )
