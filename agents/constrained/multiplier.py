r"""The multiplier player of :mod:`jaxrl.agents.constrained` (projected GDA or ReLOAD)."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from jaxrl.agents.constrained.config import Config, State
from jaxrl.envs.constrained import budget_from_params
from jaxrl.ops import lagrangian
from jaxrl.transition import Transition
from jaxrl.types import Array, ArrayLike, Metrics

__all__ = ["multiplier_update", "mean_episode_cost"]


def mean_episode_cost(episode_costs: ArrayLike, ended: ArrayLike) -> Array:
    r"""Return the mean of ``episode_costs`` over ``ended`` (NaN if none ended).

    The Monte Carlo estimate :math:`\hat J_c` that :func:`multiplier_update`
    compares with the budget (the ``"episode/discounted_cost"`` metric).

    Args:
      episode_costs: ``[...]`` (discounted) episode costs.
      ended: ``[...]`` bool, which entries are finished episodes.

    Returns:
      ``[]`` float32 mean cost.
    """
    ended = jnp.asarray(ended, bool)
    count = jnp.sum(ended)
    return jnp.where(count > 0, _mean_over(episode_costs, ended, count), jnp.nan)


def _mean_over(episode_costs: ArrayLike, ended: Array, count: Array) -> Array:
    costs = jnp.asarray(episode_costs, jnp.float32)
    return jnp.sum(jnp.where(ended, costs, 0.0)) / jnp.maximum(count, 1)


def multiplier_update(
    lam: ArrayLike,
    prev_violation: ArrayLike,
    num_violations: ArrayLike,
    episode_costs: ArrayLike,
    ended: ArrayLike,
    budget: ArrayLike,
    config: Config,
) -> tuple[Array, Array, Array, Array]:
    r"""Take one multiplier step from the episodes that ended (GDA or ReLOAD).

    With :math:`\hat J_c` the mean of ``episode_costs`` over ``ended`` and
    :math:`g_k = \hat J_c - b`: ``"lagrangian"`` steps
    :math:`[\lambda + \eta_\lambda g_k]_0^{\lambda_{max}}`, ``"reload"`` steps
    :math:`[\lambda + \eta_\lambda (2 g_k - g_{k-1})]_0^{\lambda_{max}}` with
    :math:`g_{-1} = g_k` at the first observed violation. If no episode ended,
    everything is returned unchanged. A budget ``inf`` (no constraint) gives
    :math:`g_k = -\infty` and the multiplier 0 from the first observed
    violation on (``lam`` unchanged with ``eta_lambda = 0``), never NaN
    (:mod:`jaxrl.ops.lagrangian` takes :math:`0 \cdot \infty = 0`).

    Args:
      lam: ``[]`` multiplier :math:`\lambda_k`.
      prev_violation: ``[]`` previous observed violation :math:`g_{k-1}`.
      num_violations: ``[]`` int32 violations observed so far.
      episode_costs: ``[E]`` (discounted) episode costs.
      ended: ``[E]`` bool, which entries of ``episode_costs`` are finished episodes.
      budget: ``[]`` budget :math:`b` (``inf``: no constraint).
      config: the config (``method``, ``eta_lambda``, ``lambda_max``).

    Returns:
      ``(lam, prev_violation, num_violations, violation)``: the new state and
      :math:`g_k` (NaN if no episode ended, ``-inf`` for the budget ``inf``).
    """
    lam = jnp.asarray(lam, jnp.float32)
    ended = jnp.asarray(ended, bool)
    count = jnp.sum(ended)
    mean_cost = _mean_over(episode_costs, ended, count)
    violation = mean_cost - jnp.asarray(budget, jnp.float32)
    if config.method == "reload":
        prev = jnp.where(num_violations > 0, prev_violation, violation)
        direction = lagrangian.optimistic_gradient(violation, prev)
    else:
        direction = violation
    stepped = lagrangian.projected_multiplier_update(
        lam, direction, config.eta_lambda, config.lambda_max
    ).astype(jnp.float32)
    observed = count > 0
    return (
        jnp.where(observed, stepped, lam),
        # Saturated: a budget of inf gives -inf, and the state must stay finite
        # (the divergence check); the next step is the same (lagrangian.saturate).
        lagrangian.saturate(jnp.where(observed, violation, prev_violation)).astype(
            jnp.float32
        ),
        num_violations + observed.astype(jnp.int32),
        jnp.where(observed, violation, jnp.nan),
    )


def _after_iteration(
    state: State,
    tr: Transition,
    info: dict[str, Array],
    config: Config,
    env_params: Any,
) -> tuple[State, Metrics]:
    """Step the multiplier on the discounted costs of the episodes that ended."""
    budget, _ = budget_from_params(env_params, "jaxrl.agents.constrained")
    running = state.episode_cost + tr.extras["discounted_cost"]
    ended = jnp.logical_or(tr.terminated, tr.truncated)
    lam, prev_violation, num_violations, violation = multiplier_update(
        state.lam,
        state.prev_violation,
        state.num_violations,
        running,
        ended,
        budget,
        config,
    )
    done = info["returned_episode"].astype(bool)
    count = jnp.sum(done)
    mean_cost = jnp.where(
        count > 0,
        jnp.sum(jnp.where(done, info["episode_cost"], 0.0)) / jnp.maximum(count, 1),
        jnp.nan,
    )
    metrics = {
        "episode/cost": mean_cost,
        "episode/discounted_cost": mean_episode_cost(running, ended),
        "lagrange/lambda": lam,
        "lagrange/violation": violation,
    }
    new_state = state.replace(
        lam=lam,
        prev_violation=prev_violation,
        num_violations=num_violations,
        episode_cost=jnp.where(ended, 0.0, running),
    )
    return new_state, metrics
