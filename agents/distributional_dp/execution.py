"""Executing stock-Markov policies of :mod:`jaxrl.agents.distributional_dp` with memory."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxrl.agents.distributional_dp.config import Config
from jaxrl.agents.distributional_dp.train import act
from jaxrl.envs import finite_mdp
from jaxrl.ops import distributional as dist
from jaxrl.ops import distributional_dp as ddp
from jaxrl.types import Array, ArrayTree, PRNGKey

__all__ = [
    "next_stock_index",
    "rollout",
]


def next_stock_index(
    key: PRNGKey, stock_index: Array, r_t: Array, gamma: Array, config: Config
) -> Array:
    """Update the policy's memory: randomly round ``(c_k + r_t)/gamma`` onto the grid.

    Args:
      key: typed key (one uniform draw).
      stock_index: ``[]`` int current grid index ``k``.
      r_t: ``[]`` reward received.
      gamma: ``[]`` discount factor.
      config: the config (grid).

    Returns:
      ``[]`` int32 next grid index (``j`` w.p. ``1 - w``, ``j + 1`` w.p. ``w``).
    """
    stocks = config.stocks
    c_next = dist.stock_update(stocks[stock_index], r_t, gamma)
    return _round(key, stocks, c_next)


def _round(key: PRNGKey, stocks: Array, stock: Array) -> Array:
    j, w = ddp.stock_interpolation(stocks, stock)
    return j + (jax.random.uniform(key, (), w.dtype) < w).astype(jnp.int32)


def _table_action(
    key: PRNGKey, obs: Array, k: Array, *, policy: Array, config: Config
) -> Array:
    """The deterministic table's action (``key`` unused)."""
    return act(policy, (obs, k), key, config, greedy=True)


def _sampled_action(key: PRNGKey, obs: Array, k: Array, *, probs: Array) -> Array:
    """An action sampled from ``probs[s, k]`` (``[S, K, A]`` probabilities)."""
    s = finite_mdp.state_index(obs, probs.shape[0])
    return jax.random.categorical(key, jnp.log(probs[s, k])).astype(jnp.int32)


def rollout(
    key: PRNGKey,
    env: object,
    env_params: ArrayTree,
    policy: Array,
    config: Config,
    stock0: Array,
    num_steps: int,
) -> dict[str, Array]:
    """Sample one trajectory of a stock-Markov policy executed with its memory.

    Resets the env (``s_0 ~ mu0``), rounds ``stock0`` onto the grid as the
    initial memory, and for ``num_steps`` steps picks an action, steps the MDP
    with ``env.step_env`` (no time limit or auto-reset: absorbing states keep
    paying ``R``, as in the DP), and updates the memory with
    :func:`next_stock_index`. It also tracks the true stock
    ``c_{t+1} = (c_t + r_t)/gamma`` from ``stock0``.

    The policy table takes the forms of :func:`evaluate`
    (:func:`jaxrl.ops.distributional_dp.policy_probs`; the dtype decides):

    * integer ``[S, K]``: deterministic, the action is :func:`act`
      (``greedy=True``) at ``(s_t, k_t)``;
    * float ``[S, K, A]``: stochastic stock-Markov probabilities, the action is
      sampled from ``policy[s_t, k_t]``;
    * float ``[S, A]``: a stock-blind (Markov) policy, sampled from
      ``policy[s_t]``.

    Every step splits the carried key the same way for all forms (the action
    key is unused by integer tables), so the mean of ``"return"`` over episodes
    estimates the exact value of the policy from ``mu0`` and ``stock0`` (the
    mean of :func:`evaluate`'s laws, up to the horizon ``gamma^T``).

    Args:
      key: typed key (carried through the scan, split every step).
      env: a ``FiniteMDPEnv``.
      env_params: its params.
      policy: ``[S, K]`` int table (e.g. ``Solution.policy``), ``[S, K, A]`` or
        ``[S, A]`` probabilities.
      config: the config.
      stock0: ``[]`` initial stock c0.
      num_steps: static horizon ``T``.

    Returns:
      ``{"state": [T], "action": [T], "reward": [T], "stock": [T + 1],
      "stock_index": [T + 1], "return": []}`` with ``return = sum_t gamma^t r_t``
      and ``stock`` the true stocks ``c_0..c_T``.
    """
    mdp = finite_mdp.mdp_from_params(env_params, "distributional_dp")
    gamma = mdp.gamma
    policy = jnp.asarray(policy)
    if jnp.issubdtype(policy.dtype, jnp.integer):
        choose = functools.partial(_table_action, policy=policy, config=config)
    else:
        probs = ddp.policy_probs(policy, config.num_stocks, mdp.num_actions)
        choose = functools.partial(_sampled_action, probs=probs)
    key, k_reset, k_round = jax.random.split(key, 3)
    obs, env_state = env.reset_env(k_reset, env_params)
    stock0 = jnp.asarray(stock0, config.stocks.dtype)
    k0 = _round(k_round, config.stocks, stock0)

    def step(carry, _):
        key, obs, env_state, k, c, discount = carry
        key, k_act, k_env, k_mem = jax.random.split(key, 4)
        a = choose(k_act, obs, k)
        s = env_state.state
        obs, env_state, r, _, _ = env.step_env(k_env, env_state, a, env_params)
        new = (
            key,
            obs,
            env_state,
            next_stock_index(k_mem, k, r, gamma, config),
            dist.stock_update(c, r, gamma),
            discount * gamma,
        )
        return new, (s, a, r, k, c, discount * r)

    carry0 = (key, obs, env_state, k0, stock0, jnp.asarray(1.0, stock0.dtype))
    last, (s, a, r, k, c, disc_r) = jax.lax.scan(step, carry0, None, length=num_steps)
    return {
        "state": s,
        "action": a,
        "reward": r,
        "stock": jnp.concatenate([c, last[4][None]]),
        "stock_index": jnp.concatenate([k, last[3][None]]),
        "return": jnp.sum(disc_r),
    }
