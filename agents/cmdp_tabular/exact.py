"""Exact evaluation and the exact optimum of a constrained MDP (no learning).

Functions of the MDP alone: :func:`evaluate` (values and occupancy by one
linear solve), :func:`solve_dual` (the optimum by bisection on the dual) and
:func:`budget_range` (where the constraint binds).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import struct

from jaxrl import config as config_lib
from jaxrl.errors import ConfigError
from jaxrl.mdp import FiniteMDP
from jaxrl.ops import exact_dp, lagrangian
from jaxrl.types import Array, ArrayLike

__all__ = [
    "Evaluation",
    "evaluate",
    "solve_dual",
    "budget_range",
]


@struct.dataclass
class Evaluation:
    """Exact values of one policy (see :func:`evaluate`).

    Attributes:
      q_r: ``[S, A]`` reward action values ``Q^pi_r``.
      q_c: ``[S, A]`` cost action values ``Q^pi_c``.
      occupancy: ``[S, A]`` normalised discounted occupancy
        ``d(s, a) = (1 - gamma) sum_t gamma^t Pr(s_t = s, a_t = a)`` (sums to 1).
      j_r: ``[]`` ``J_r(pi) = <d, R> / (1 - gamma)``.
      j_c: ``[]`` ``J_c(pi) = <d, C> / (1 - gamma)``.
    """

    q_r: Array
    q_c: Array
    occupancy: Array
    j_r: Array
    j_c: Array


def _check_cost(mdp: FiniteMDP, user: str = "cmdp_tabular") -> None:
    if mdp.C is None:
        raise ConfigError(
            f"{user} needs a constrained MDP: the FiniteMDP has no cost table C "
            "(build one with jaxrl.envs.finite_mdp.random_cmdp / hazard_gridworld or "
            "jaxrl.mdp.make_mdp(..., C=...))"
        )


def evaluate(mdp: FiniteMDP, pi: ArrayLike) -> Evaluation:
    """Evaluate a policy's reward and cost exactly with ONE linear solve.

    Computes ``M = (I - gamma P_pi)^{-1}`` by a single solve (one batched solve
    per XLA computation, see docs/decisions.md D4), then ``V_x = M x_pi``,
    ``Q_x = x + gamma P V_x`` for ``x in {R, C}``, and the state occupancy
    ``d(s) = (1 - gamma) (mu0^T M)(s)``, ``d(s, a) = d(s) pi(a|s)``.

    Args:
      mdp: the MDP (with a cost table ``C``).
      pi: ``[S, A]`` policy.

    Returns:
      The :class:`Evaluation`.

    Raises:
      ConfigError: if ``mdp.C`` is None.
    """
    _check_cost(mdp, "evaluate")
    pi = jnp.asarray(pi, mdp.P.dtype)
    P_pi = exact_dp.policy_transition(mdp, pi)
    eye = jnp.eye(mdp.num_states, dtype=P_pi.dtype)
    inverse = jnp.linalg.solve(eye - mdp.gamma * P_pi, eye)  # [S, S]
    rewards = jnp.stack([mdp.R, mdp.C], axis=-1)  # [S, A, 2]
    v = inverse @ jnp.einsum("sa,sak->sk", pi, rewards)  # [S, 2]
    q = rewards + mdp.gamma * jnp.einsum("sat,tk->sak", mdp.P, v)
    d_s = (1.0 - mdp.gamma) * (mdp.mu0 @ inverse)
    j = mdp.mu0 @ v
    return Evaluation(
        q_r=q[..., 0],
        q_c=q[..., 1],
        occupancy=d_s[:, None] * pi,
        j_r=j[0],
        j_c=j[1],
    )


def _lagrangian_solution(
    mdp: FiniteMDP, lam: Array, max_iters: int
) -> tuple[Array, Array]:
    """Return ``(max_pi L(pi, lam) + lam b, J_c(pi_lam))`` minus the budget term.

    ``pi_lam`` is the greedy policy of ``Q*`` of the penalised reward
    ``R - lam C`` (policy iteration; ties towards the lowest action).
    """
    plain = mdp.replace(C=None)
    q = exact_dp.optimal_q(
        plain.replace(R=lagrangian.lagrangian_reward(mdp.R, mdp.C, lam)), max_iters
    )
    value = jnp.dot(mdp.mu0, jnp.max(q, axis=-1))  # J*_{r - lam c}
    j_c = exact_dp.performance(plain, exact_dp.greedy_policy(q), mdp.C)
    return value, j_c


def solve_dual(
    mdp: FiniteMDP,
    budget: ArrayLike,
    *,
    num_bisections: int = 40,
    max_iters: int = 100,
) -> tuple[Array, Array]:
    r"""Return the exact CMDP optimum ``(J_r*, lambda*)`` by minimising the dual.

    Strong duality holds for CMDPs (Altman 1999, Thm. 3.6), so
    :math:`J_r^*(b) = \min_{\lambda \ge 0} D(\lambda)` with the convex,
    piecewise-linear dual :math:`D(\lambda) = \max_\pi L(\pi, \lambda) =
    J^*_{r - \lambda c} + \lambda b`, whose subgradient at :math:`\lambda` is
    :math:`b - J_c(\pi_\lambda)` for an optimal policy :math:`\pi_\lambda` of the
    penalised reward. If :math:`J_c(\pi_0) \le b` the constraint is slack and
    :math:`\lambda^* = 0`; otherwise the bracket :math:`[0, \lambda_{hi}]` is
    found by doubling and :math:`\lambda^*` by ``num_bisections`` bisection
    steps on the sign of the subgradient (the upper end, which is feasible);
    ``J_r* = D(lambda*)``. Every step is
    one policy iteration (:func:`jaxrl.ops.exact_dp.optimal_q`), so this is a
    scipy-free, jit-able oracle (:func:`~jaxrl.agents.cmdp_tabular.solve_cmdp_lp`
    solves the primal LP). Infeasible budgets (no bracket within ``2^60``,
    ``-inf`` included) give NaN. A slack budget, ``inf`` (no constraint)
    included, gives exactly the unconstrained optimum ``J*_r`` and
    :math:`\lambda^* = 0` (the budget term :math:`\lambda^* b` is 0, not
    ``0 * inf``).

    Args:
      mdp: the constrained MDP.
      budget: the budget ``b`` (may be traced; ``inf``: no constraint; a
        concrete NaN is rejected).
      num_bisections: static number of bisection steps (precision
        ``lambda_hi / 2^num_bisections``).
      max_iters: static bound on policy-iteration steps per solve.

    Returns:
      ``(J_r*, lambda*)`` scalars.

    Raises:
      ConfigError: if ``mdp.C`` is None or the budget is NaN.

    Examples:
      >>> import numpy as np
      >>> from jaxrl.mdp import make_mdp
      >>> mdp = make_mdp(np.ones((1, 2, 1)), [[1.0, 0.0]], C=[[1.0, 0.0]], gamma=0.5)
      >>> j, lam = solve_dual(mdp, 1.0)
      >>> round(float(j), 4), round(float(lam), 4)
      (1.0, 1.0)
      >>> [float(x) for x in solve_dual(mdp, float("inf"))]  # no constraint
      [2.0, 0.0]
    """
    _check_cost(mdp, "solve_dual")
    # -inf: infeasible (NaN result); inf: no constraint
    config_lib.check_range("budget", budget, allow_inf=True)
    dtype = mdp.P.dtype
    budget = jnp.asarray(budget, dtype)
    solve = functools.partial(_lagrangian_solution, mdp, max_iters=max_iters)

    def too_costly(lam: Array) -> Array:
        return solve(lam)[1] > budget

    # Every solve below depends on the previous one's result, so no two policy
    # evaluations can run concurrently (docs/decisions.md D4).
    # BRACKET: hi = 0 if the constraint is slack, else the first 2^i making it hold.
    def grow(carry: tuple[Array, Array, Array]) -> tuple[Array, Array, Array]:
        hi, i, _ = carry
        hi = jnp.where(hi > 0, 2.0 * hi, 1.0)
        return hi, i + 1, too_costly(hi)

    zero = jnp.asarray(0.0, dtype)
    hi, _, costly = jax.lax.while_loop(
        lambda c: jnp.logical_and(c[1] <= 60, c[2]),
        grow,
        (zero, jnp.asarray(0, jnp.int32), too_costly(zero)),
    )

    # BISECT on the sign of the subgradient b - J_c(pi_lambda).
    def bisect(_: int, bracket: tuple[Array, Array]) -> tuple[Array, Array]:
        lo, hi = bracket
        mid = 0.5 * (lo + hi)
        mid_costly = too_costly(mid)
        return jnp.where(mid_costly, mid, lo), jnp.where(mid_costly, hi, mid)

    _, lam = jax.lax.fori_loop(0, num_bisections, bisect, (zero, hi))
    value, _ = solve(lam)
    j_r = value + jnp.where(lam > 0, lam * budget, 0.0)  # lam* = 0: no 0 * inf
    nan = jnp.asarray(jnp.nan, dtype)
    return jnp.where(costly, nan, j_r), jnp.where(costly, nan, lam)


def budget_range(mdp: FiniteMDP, max_iters: int = 100) -> tuple[Array, Array]:
    """Return the range of budgets where the constraint matters, ``(b_min, b_max)``.

    ``b_min = min_pi J_c(pi)`` is the smallest feasible budget; ``b_max`` is
    ``J_c`` of the reward-optimal greedy policy (from policy iteration, ties
    broken towards the lowest action), above which the constraint is slack and
    the CMDP optimum is the unconstrained one. Budgets in ``(b_min, b_max)``
    give a binding constraint with ``lambda* > 0``. Both optimal-control problems
    run as one vmapped policy iteration (one batched solve per step).

    Args:
      mdp: the constrained MDP.
      max_iters: static bound on policy-iteration steps.

    Returns:
      ``(b_min, b_max)`` scalars.

    Raises:
      ConfigError: if ``mdp.C`` is None.
    """
    _check_cost(mdp, "budget_range")
    pair = jax.tree.map(lambda x: jnp.stack([x, x]), mdp.replace(C=None))
    pair = pair.replace(R=jnp.stack([mdp.R, -mdp.C]))
    q = jax.vmap(functools.partial(exact_dp.optimal_q, max_iters=max_iters))(pair)
    pis = jax.vmap(exact_dp.greedy_policy)(q)  # [2, S, A]: reward-opt, cost-min
    v_c = jax.vmap(exact_dp.policy_evaluation, in_axes=(None, 0, None))(
        mdp.replace(C=None), pis, mdp.C
    )
    j_c = v_c @ mdp.mu0
    return j_c[1], j_c[0]
