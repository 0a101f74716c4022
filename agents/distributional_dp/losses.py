"""The learning step of :mod:`jaxrl.agents.distributional_dp` (one update = one sweep).

A tabular package has no networks: the parameters are the return laws and the
stock-Markov policy (:class:`~jaxrl.agents.distributional_dp.config.State`).
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxrl.agents.distributional_dp.config import Config, State
from jaxrl.mdp import FiniteMDP
from jaxrl.ops import distributional_dp as ddp
from jaxrl.types import Array, Metrics

__all__ = ["loss", "update"]


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
