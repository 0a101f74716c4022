"""The learning step of :mod:`jaxrl.agents.cmdp_tabular`: the exact saddle objective and one primal-dual step.

A tabular package has no networks: the parameters are the policy logits and
the multiplier (:class:`~jaxrl.agents.cmdp_tabular.config.Params`), and
:func:`policy` reads the policy off them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxrl.agents.cmdp_tabular.config import Config, Params, State
from jaxrl.agents.cmdp_tabular.exact import _check_cost, evaluate
from jaxrl.mdp import FiniteMDP
from jaxrl.ops import lagrangian
from jaxrl.types import Array, Metrics

__all__ = ["policy", "average_policy", "loss", "update"]


def policy(params: Params) -> Array:
    """Return the softmax policy ``pi[S, A]`` of the logits."""
    return jax.nn.softmax(params.logits, axis=-1)


def average_policy(state: State) -> Array:
    """Return the policy of the average occupancy measure, ``[S, A]``.

    ``pi_bar(a|s) = d_bar(s, a) / sum_b d_bar(s, b)``: the Markov policy whose
    occupancy is the average ``d_bar`` of the iterates' occupancies, so its
    values are the averages of their values (``J`` is linear in ``d``). States
    the iterates never visit get the uniform policy; before the first step the
    current policy is returned.
    """
    d = state.avg_occupancy
    mass = jnp.sum(d, axis=-1, keepdims=True)
    uniform = jnp.full_like(d, 1.0 / d.shape[-1])
    avg = jnp.where(mass > 0, d / jnp.where(mass > 0, mass, 1.0), uniform)
    return jnp.where(state.step > 0, avg, policy(state.params))


def _normalise(logits: Array) -> Array:
    return logits - jax.nn.logsumexp(logits, axis=-1, keepdims=True)


def loss(
    params: Params, target_params: Params, batch: FiniteMDP, config: Config
) -> tuple[Array, Metrics]:
    r"""Return the saddle objective ``-L(pi_theta, lambda)`` (exact) and metrics.

    ``-L = -J_r(pi_theta) + lambda (J_c(pi_theta) - b)`` is differentiable in both
    players (through the linear solve): gradient *descent* in ``logits`` ascends
    the Lagrangian (its gradient is the exact policy gradient
    :math:`-\frac{1}{1-\gamma} d^\pi(s) \pi(a|s) A^\pi_{r-\lambda c}(s, a)`),
    gradient *ascent* in ``lam`` follows ``J_c - b``. :func:`update` takes the
    natural-gradient steps instead.

    Args:
      params: the :class:`Params`.
      target_params: unused (the objective has no target).
      batch: the constrained MDP.
      config: the config (``budget``).

    Returns:
      ``(-L, {"cmdp/j_r", "cmdp/j_c", "lagrange/lagrangian"})``.
    """
    del target_params
    ev = evaluate(batch, policy(params))
    value = lagrangian.lagrangian(ev.j_r, ev.j_c, params.lam, config.budget)
    return -value, {
        "cmdp/j_r": ev.j_r,
        "cmdp/j_c": ev.j_c,
        "lagrange/lagrangian": value,
    }


def update(state: State, data: FiniteMDP, config: Config) -> tuple[State, Metrics]:
    """One primal-dual step (GDA or ReLOAD, per ``config.method``) with exact gradients.

    Args:
      state: the agent state at iterate ``k``.
      data: the constrained MDP.
      config: the config.

    Returns:
      ``(state_{k+1}, metrics of iterate k)`` (see the module docstring).
    """
    _check_cost(data)
    theta, lam = state.params.logits, state.params.lam
    ev = evaluate(data, jax.nn.softmax(theta, axis=-1))

    # GRADIENTS: NPG direction Q^pi_{r - lambda c} and the violation J_c - b
    # (-inf for b = inf; the lagrangian ops take 0 * inf = 0, so no NaN).
    violation = ev.j_c - config.budget
    grad = Params(
        logits=lagrangian.lagrangian_reward(ev.q_r, ev.q_c, lam), lam=violation
    )
    key, k_q, k_g = jax.random.split(state.key, 3)
    sigma = jnp.asarray(config.noise_std, theta.dtype)
    grad = Params(
        logits=grad.logits + sigma * jax.random.normal(k_q, theta.shape, theta.dtype),
        lam=grad.lam + sigma * jax.random.normal(k_g, (), theta.dtype),
    )
    if config.method == "reload":
        first = state.step == 0  # g_{-1} = g_0: the first step is a GDA step
        prev = jax.tree.map(lambda g, p: jnp.where(first, g, p), grad, state.prev_grad)
        direction = lagrangian.optimistic_gradient(grad, prev)
    else:
        direction = grad

    # STEP: NPG ascent on the logits, projected step on the multiplier.
    new_params = Params(
        logits=_normalise(theta + config.eta_pi * direction.logits),
        lam=lagrangian.projected_multiplier_update(
            lam, direction.lam, config.eta_lambda, config.lambda_max
        ).astype(lam.dtype),
    )

    # AVERAGES over iterates 0..k (occupancy measures, multipliers).
    n = (state.step + 1).astype(theta.dtype)
    avg_occupancy = state.avg_occupancy + (ev.occupancy - state.avg_occupancy) / n
    avg_lam = state.avg_lam + (lam - state.avg_lam) / n
    one_minus_gamma = 1.0 - data.gamma
    metrics = {
        "cmdp/j_r": ev.j_r,
        "cmdp/j_c": ev.j_c,
        "lagrange/lambda": lam,
        "lagrange/lagrangian": lagrangian.lagrangian(
            ev.j_r, ev.j_c, lam, config.budget
        ),
        "cmdp/j_r_avg": jnp.sum(avg_occupancy * data.R) / one_minus_gamma,
        "cmdp/j_c_avg": jnp.sum(avg_occupancy * data.C) / one_minus_gamma,
        "lagrange/lambda_avg": avg_lam,
    }
    new_state = state.replace(
        params=new_params,
        # Saturated: the violation is -inf for b = inf and the state must stay
        # finite (the divergence check); the next step is the same.
        prev_grad=jax.tree.map(lagrangian.saturate, grad),
        avg_occupancy=avg_occupancy,
        avg_lam=avg_lam,
        key=key,
        step=state.step + 1,
    )
    return new_state, metrics
