r"""Exact solution of tabular constrained MDPs by the occupancy-measure linear program (scipy).

For a :class:`jaxrl.mdp.FiniteMDP` with a cost table ``C`` and a budget ``b``,
the constrained problem :math:`\max_\pi J_r(\pi)` s.t. :math:`J_c(\pi) \le b` is
the linear program over normalised discounted occupancy measures
:math:`d(s, a) = (1 - \gamma) \sum_t \gamma^t \Pr(s_t = s, a_t = a)` (Altman,
*Constrained Markov Decision Processes*, 1999, Thm. 3.3):

.. math::
    \max_{d \ge 0} \sum_{s,a} R(s,a)\, d(s,a) \quad \text{s.t.} \quad
    \sum_a d(s', a) - \gamma \sum_{s,a} P(s'|s,a)\, d(s,a) = (1-\gamma)\mu_0(s'),
    \qquad \sum_{s,a} C(s,a)\, d(s,a) \le (1 - \gamma)\, b,

with :math:`J_r^* = \text{objective} / (1 - \gamma)` and the optimal (possibly
stochastic) policy :math:`\pi^*(a|s) = d(s,a) / \sum_b d(s,b)`. The multiplier
:math:`\lambda^* = dJ_r^*/db \ge 0` is minus HiGHS's marginal of the budget row
(``res.ineqlin.marginals``): the marginal is the derivative of the *minimised*
objective :math:`-\sum R d` with respect to the row's right-hand side
:math:`(1-\gamma) b`, and the two factors :math:`1-\gamma` cancel. It is the
saddle point's multiplier: :math:`J_r^* = \max_\pi J_r(\pi) - \lambda^*
(J_c(\pi) - b)`.

This is the exact reference of the primal-dual agent (:mod:`jaxrl.agents.cmdp_tabular`,
whose :func:`~jaxrl.agents.cmdp_tabular.solve_dual` reaches the same optimum by
bisection on the dual, jit-able and scipy-free): its tests and the constrained
results table compare against it. It runs on the host (scipy), float64. The
command line ``python -m jaxrl.scripts.cmdp_lp`` prints it for a registered
tabular CMDP.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import optimize

from jaxrl import config as config_lib
from jaxrl.errors import ConfigError
from jaxrl.mdp import FiniteMDP

__all__ = ["solve_cmdp_lp", "min_cost"]


def _tensors(mdp: FiniteMDP) -> tuple[np.ndarray, ...]:
    if not isinstance(mdp, FiniteMDP):
        raise ConfigError(f"expected a jaxrl.mdp.FiniteMDP, got {type(mdp).__name__}")
    if mdp.C is None:
        raise ConfigError(
            "solve_cmdp_lp needs a constrained MDP: the FiniteMDP has no cost table C"
        )
    if np.ndim(mdp.P) != 3:
        raise ConfigError(
            f"solve_cmdp_lp needs one unbatched MDP, got P of shape {np.shape(mdp.P)}"
        )
    P = np.asarray(mdp.P, np.float64)
    R = np.asarray(mdp.R, np.float64)
    C = np.asarray(mdp.C, np.float64)
    mu0 = np.asarray(mdp.mu0, np.float64)
    gamma = float(np.asarray(mdp.gamma))
    return P, R, C, mu0, gamma


def _flow_constraints(P: np.ndarray, gamma: float) -> np.ndarray:
    """Return ``A_eq[S, S*A]``, rows ``sum_a d(s', a) - gamma (P^T d)(s')``."""
    S, A, _ = P.shape
    outflow = np.repeat(np.eye(S), A, axis=1)  # [s', (s, a)] = [s == s']
    inflow = P.reshape(S * A, S).T  # [s', (s, a)] = P(s'|s, a)
    return outflow - gamma * inflow


def _policy(d: np.ndarray) -> np.ndarray:
    mass = d.sum(-1, keepdims=True)
    uniform = np.full_like(d, 1.0 / d.shape[-1])
    return np.where(mass > 1e-12, d / np.maximum(mass, 1e-300), uniform)


def min_cost(mdp: FiniteMDP) -> float:
    """Return the smallest achievable expected discounted cost ``min_pi J_c(pi)``.

    Budgets below it are infeasible. Solved by the same LP with the cost as the
    objective and no budget row.

    Raises:
      ConfigError: if ``mdp`` has no cost table.
    """
    P, _, C, mu0, gamma = _tensors(mdp)
    res = optimize.linprog(
        C.ravel(),
        A_eq=_flow_constraints(P, gamma),
        b_eq=(1.0 - gamma) * mu0,
        bounds=(0, None),
        method="highs",
    )
    if res.status != 0:  # pragma: no cover - the flow polytope is never empty
        raise RuntimeError(f"linprog failed: {res.message}")
    return float(res.fun) / (1.0 - gamma)


def solve_cmdp_lp(mdp: FiniteMDP, budget: float) -> dict[str, Any]:
    r"""Solve ``max_pi J_r(pi) s.t. J_c(pi) <= budget`` exactly (scipy HiGHS LP).

    A budget ``inf`` means no constraint: the budget row is dropped, so the
    result is the unconstrained optimum (the LP of value iteration) with
    ``lam = 0``, as for any slack budget.

    Args:
      mdp: an unbatched constrained MDP (``mdp.C`` set).
      budget: the budget :math:`b` (``inf``: no constraint).

    Returns:
      A dict of float64 NumPy values: ``J_r`` (optimal return), ``J_c`` (its
      cost, ``<= budget``), ``policy[S, A]`` (optimal policy; uniform in states
      of zero occupancy), ``occupancy[S, A]`` (normalised occupancy, sums to 1)
      and ``lam`` (:math:`\lambda^* = dJ_r^*/db \ge 0`; zero when the budget is
      slack).

    Raises:
      ConfigError: if ``mdp`` has no cost table, the budget is NaN, or the
        budget is infeasible (below :func:`min_cost`, named in the message;
        ``-inf`` included).

    Examples:
      >>> from jaxrl.mdp import make_mdp
      >>> mdp = make_mdp(np.ones((1, 2, 1)), [[1.0, 0.0]], C=[[1.0, 0.0]], gamma=0.5)
      >>> sol = solve_cmdp_lp(mdp, 1.0)  # J_c of "always 0" is 2: mix half-half
      >>> sol["J_r"], sol["policy"].round(6).tolist(), round(sol["lam"], 6)
      (1.0, [[0.5, 0.5]], 1.0)
    """
    P, R, C, mu0, gamma = _tensors(mdp)
    config_lib.check_range("budget", budget, allow_inf=True)  # NaN: one line
    budget = float(budget)
    if budget == -np.inf:
        raise ConfigError(
            f"budget -inf is infeasible: the smallest achievable expected "
            f"discounted cost is {min_cost(mdp):.6g}"
        )
    S, A = R.shape
    constrained = np.isfinite(budget)  # inf: no budget row
    res = optimize.linprog(
        -R.ravel(),
        A_ub=C.reshape(1, S * A) if constrained else None,
        b_ub=[(1.0 - gamma) * budget] if constrained else None,
        A_eq=_flow_constraints(P, gamma),
        b_eq=(1.0 - gamma) * mu0,
        bounds=(0, None),
        method="highs",
    )
    if res.status == 2:
        raise ConfigError(
            f"budget {budget:g} is infeasible: the smallest achievable expected "
            f"discounted cost is {min_cost(mdp):.6g}"
        )
    if res.status != 0:  # pragma: no cover - bounded: the polytope is compact
        raise RuntimeError(f"linprog failed: {res.message}")
    d = np.maximum(res.x.reshape(S, A), 0.0)
    return {
        "J_r": float(R.ravel() @ res.x) / (1.0 - gamma),
        "J_c": float(C.ravel() @ res.x) / (1.0 - gamma),
        "policy": _policy(d),
        "occupancy": d,
        "lam": max(0.0, -float(res.ineqlin.marginals[0])) if constrained else 0.0,
    }
