"""The agent contract of :mod:`jaxrl.agents.cmdp_tabular` and whole primal-dual runs."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxrl import config as config_lib
from jaxrl.agents import _tabular_loop
from jaxrl.agents.cmdp_tabular.config import Config, Params, State
from jaxrl.agents.cmdp_tabular.exact import _check_cost, solve_dual
from jaxrl.agents.cmdp_tabular.losses import (
    _normalise,
    average_policy,
    loss,
    policy,
    update,
)
from jaxrl.envs import finite_mdp
from jaxrl.mdp import FiniteMDP
from jaxrl.types import Array, ArrayTree, Metrics, PRNGKey

__all__ = [
    "policy",
    "average_policy",
    "init_state",
    "init",
    "act",
    "loss",
    "update",
    "make_run",
    "make_train",
    "primal_dual",
]


def init_state(mdp: FiniteMDP, key: PRNGKey, config: Config) -> State:
    """Return the initial state for ``mdp`` (see :func:`init`)."""
    key, k_init = jax.random.split(key)
    dtype = mdp.P.dtype
    noise = jax.random.normal(k_init, mdp.R.shape, dtype)
    logits = _normalise(jnp.asarray(config.init_noise, dtype) * noise)
    lam = jnp.asarray(config.lambda0, dtype)
    zero = jnp.zeros((), dtype)
    return State(
        params=Params(logits=logits, lam=lam),
        prev_grad=Params(logits=jnp.zeros_like(logits), lam=zero),
        avg_occupancy=jnp.zeros_like(logits),
        avg_lam=zero,
        key=key,
        step=jnp.asarray(0, jnp.int32),
    )


def init(key: PRNGKey, env: object, env_params: ArrayTree, config: Config) -> State:
    """Return the initial state: logits ``init_noise * N(0, I)``, ``lambda0``, step 0.

    Args:
      key: typed key (one split for the initial logits; the rest is kept).
      env: the environment (unused; sizes come from ``env_params.mdp``).
      env_params: params holding the constrained ``FiniteMDP`` in ``.mdp``.
      config: the config.

    Returns:
      The :class:`State`.
    """
    del env
    return _tabular_loop.init(
        key,
        env_params,
        config,
        agent="cmdp_tabular",
        init_fn=lambda k, mdp, c: init_state(mdp, k, c),
        check=_check_cost,
    )


def act(
    params: Params, obs: Array, key: PRNGKey, config: Config, *, greedy: bool = False
) -> Array:
    """Pick an action for one observation from the softmax policy of ``params``.

    Args:
      params: the :class:`Params` (``logits[S, A]``; the multiplier is unused).
      obs: ``[S]`` one-hot or ``[]`` integer state index
        (:func:`jaxrl.envs.finite_mdp.state_index`; unbatched, vmap for a batch).
      key: typed key.
      config: the config (unused).
      greedy: take the most probable action (ties towards the lowest index)
        instead of sampling (static).

    Returns:
      ``[]`` int32 action.
    """
    del config
    logits = params.logits
    row = logits[finite_mdp.state_index(obs, logits.shape[0])]
    if greedy:
        return jnp.argmax(row).astype(jnp.int32)
    return jax.random.categorical(key, row).astype(jnp.int32)


def _reference(mdp: FiniteMDP, config: Config) -> tuple[Array, Array] | None:
    """``(J*, lambda*)`` of the exact dual (once per chunk; ``None`` without oracle).

    Computed before the scan and fed into its body, so the oracle's solves
    never run concurrently with the steps' (docs D4).
    """
    if config.oracle_bisections <= 0:
        return None
    return solve_dual(
        mdp,
        config.budget,
        num_bisections=config.oracle_bisections,
        max_iters=config.oracle_iters,
    )


def _distances(
    state: State,
    metrics: Metrics,
    mdp: FiniteMDP,
    reference: tuple[Array, Array] | None,
    config: Config,
) -> Metrics:
    """The distances of a step's iterate to the optimum (none without oracle)."""
    del state, mdp, config
    if reference is None:
        return {}
    j_star, lam_star = reference
    return {
        "cmdp/reward_gap": j_star - metrics["cmdp/j_r"],
        "cmdp/reward_gap_avg": j_star - metrics["cmdp/j_r_avg"],
        "lagrange/lambda_error": jnp.abs(metrics["lagrange/lambda"] - lam_star),
        "lagrange/lambda_error_avg": jnp.abs(metrics["lagrange/lambda_avg"] - lam_star),
    }


_LOOP = {
    "agent": "cmdp_tabular",
    "update_fn": update,
    "reference_fn": _reference,
    "metrics_fn": _distances,
    "check": _check_cost,
}


def make_run(config: Config, env: object, env_params: ArrayTree):
    """Return ``run(state) -> (state, metrics)`` advancing ``iters_per_chunk`` steps.

    Args:
      config: the config (validated here; traced fields are skipped).
      env: the environment (unused).
      env_params: params holding the constrained MDP.

    Returns:
      ``run``; its metrics have shape ``[iters_per_chunk]``.

    Raises:
      ConfigError: on an invalid config or an MDP without costs.
    """
    return _tabular_loop.make_run(config, env, env_params, **_LOOP)


def make_train(config: Config, env: object, env_params: ArrayTree):
    """Return ``train(key) -> (state, metrics)``: ``init`` then ``num_chunks`` runs.

    Bitwise equal to calling :func:`init` and then ``make_run(...)`` chunk by
    chunk (the checkpoint/resume contract).

    Args:
      config: the config.
      env: the environment.
      env_params: params holding the constrained MDP.

    Returns:
      ``train``; its metrics have shape ``[num_chunks * iters_per_chunk]``.
    """
    return _tabular_loop.make_train(config, env, env_params, init_fn=init, **_LOOP)


def _trace_step(state: State, _: None, *, mdp: FiniteMDP, config: Config):
    state, metrics = update(state, mdp, config)
    return state, (metrics, state.params)


def primal_dual(
    mdp: FiniteMDP, config: Config, key: PRNGKey, num_iters: int
) -> tuple[State, Metrics, Params]:
    """Run ``num_iters`` primal-dual steps on ``mdp`` and return every iterate.

    Jit-able (``num_iters`` static) and vmappable over MDPs, keys and traced
    config fields. ``config.num_chunks`` and ``iters_per_chunk`` are ignored.

    Args:
      mdp: the constrained MDP.
      config: the config.
      key: typed key (used only with ``init_noise`` or ``noise_std`` > 0).
      num_iters: static number of steps ``K``.

    Returns:
      ``(state_K, metrics, iterates)``: the final state, the ``[K]`` metrics of
      :func:`update` (iterates ``0..K-1``) and the :class:`Params` after every
      step, stacked ``[K, ...]`` (``iterates[-1]`` is ``state_K.params``).

    Raises:
      ConfigError: on an invalid config or an MDP without costs.

    Examples:
      >>> import numpy as np
      >>> from jaxrl.mdp import make_mdp
      >>> mdp = make_mdp(np.ones((1, 2, 1)), [[1.0, 0.0]], C=[[1.0, 0.0]], gamma=0.5)
      >>> config = Config(method="reload", budget=1.0, eta_pi=0.5, eta_lambda=0.5)
      >>> state, metrics, iterates = primal_dual(mdp, config, jax.random.key(0), 400)
      >>> np.round(policy(state.params), 3), round(float(state.params.lam), 3)
      (Array([[0.5, 0.5]], dtype=float32), 1.0)
    """
    config_lib.validate(config)
    _check_cost(mdp)
    state = init_state(mdp, key, config)
    body = functools.partial(_trace_step, mdp=mdp, config=config)
    state, (metrics, iterates) = jax.lax.scan(body, state, None, length=num_iters)
    return state, metrics, iterates
