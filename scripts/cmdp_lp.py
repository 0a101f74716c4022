r"""Exact solution of tabular constrained MDPs by the occupancy-measure linear program.

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

This is the reference that the primal-dual agent (``jaxrl.agents.cmdp_tabular``) is
tested against. It runs on the host (scipy), float64.

Usage::

    python -m jaxrl.scripts.cmdp_lp --env HazardGrid-v0 --budget 0.5
    python -m jaxrl.scripts.cmdp_lp --env RandomCMDP-v0 --env-arg num_states=8 \\
        --budget-fraction 0.5 --iters 5000
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import optimize

from jaxrl.errors import ConfigError
from jaxrl.mdp import FiniteMDP
from jaxrl.scripts import common

__all__ = ["solve_cmdp_lp", "min_cost", "main"]


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

    Args:
      mdp: an unbatched constrained MDP (``mdp.C`` set).
      budget: the budget :math:`b` (finite).

    Returns:
      A dict of float64 NumPy values: ``J_r`` (optimal return), ``J_c`` (its
      cost, ``<= budget``), ``policy[S, A]`` (optimal policy; uniform in states
      of zero occupancy), ``occupancy[S, A]`` (normalised occupancy, sums to 1)
      and ``lam`` (:math:`\lambda^* = dJ_r^*/db \ge 0`; zero when the budget is
      slack).

    Raises:
      ConfigError: if ``mdp`` has no cost table, the budget is not finite, or the
        budget is infeasible (below :func:`min_cost`, named in the message).

    Examples:
      >>> from jaxrl.mdp import make_mdp
      >>> mdp = make_mdp(np.ones((1, 2, 1)), [[1.0, 0.0]], C=[[1.0, 0.0]], gamma=0.5)
      >>> sol = solve_cmdp_lp(mdp, 1.0)  # J_c of "always 0" is 2: mix half-half
      >>> sol["J_r"], sol["policy"].round(6).tolist(), round(sol["lam"], 6)
      (1.0, [[0.5, 0.5]], 1.0)
    """
    P, R, C, mu0, gamma = _tensors(mdp)
    budget = float(budget)
    if not np.isfinite(budget):
        raise ConfigError(f"budget must be finite, got {budget}")
    S, A = R.shape
    res = optimize.linprog(
        -R.ravel(),
        A_ub=C.reshape(1, S * A),
        b_ub=[(1.0 - gamma) * budget],
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
        "lam": max(0.0, -float(res.ineqlin.marginals[0])),
    }


# ========================================================================== CLI


def _parse_env_args(items: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--env-arg {item!r} is not of the form name=value")
        name, text = item.split("=", 1)
        try:
            out[name.strip()] = json.loads(text)
        except json.JSONDecodeError:
            out[name.strip()] = text
    return out


def _compare(
    mdp: FiniteMDP, pi: Any, lam: Any, sol: dict[str, Any], budget: float
) -> dict[str, float]:
    """Return how far ``(pi, lam)`` is from the LP solution ``sol``."""
    from jaxrl.agents import cmdp_tabular

    ev = cmdp_tabular.evaluate(mdp, pi)
    d = np.asarray(ev.occupancy, np.float64)
    return {
        "J_r": float(ev.j_r),
        "J_c": float(ev.j_c),
        "lambda": float(lam),
        "reward_gap": sol["J_r"] - float(ev.j_r),
        "violation": float(ev.j_c) - budget,
        "lambda_error": abs(float(lam) - sol["lam"]),
        "occupancy_l1": float(np.abs(d - sol["occupancy"]).sum()),
    }


def _run(args: Any) -> int:
    import jax

    from jaxrl import envs
    from jaxrl.agents import cmdp_tabular

    env, env_params = envs.make(args.env, **_parse_env_args(args.env_arg))
    mdp = env_params.mdp
    if not isinstance(mdp, FiniteMDP) or mdp.C is None:
        raise ConfigError(f"{args.env} is not a tabular constrained MDP (no cost C)")
    b_min, b_max = (float(x) for x in cmdp_tabular.budget_range(mdp))
    if args.budget is None:
        budget = b_min + args.budget_fraction * (b_max - b_min)
    else:
        budget = args.budget
    sol = solve_cmdp_lp(mdp, budget)
    report: dict[str, Any] = {
        "env": args.env,
        "budget": budget,
        "budget_range": [b_min, b_max],
        "lp": {
            "J_r": sol["J_r"],
            "J_c": sol["J_c"],
            "lambda": sol["lam"],
            "policy": sol["policy"].round(6).tolist(),
        },
    }
    if args.iters > 0:
        for method in cmdp_tabular.METHODS:
            config = cmdp_tabular.Config(
                method=method,
                budget=budget,
                eta_pi=args.eta_pi,
                eta_lambda=args.eta_lambda,
            )
            run = jax.jit(cmdp_tabular.primal_dual, static_argnums=3)
            state, _, _ = run(mdp, config, jax.random.key(args.seed), args.iters)
            report[method] = {
                "last": _compare(
                    mdp,
                    cmdp_tabular.policy(state.params),
                    state.params.lam,
                    sol,
                    budget,
                ),
                "average": _compare(
                    mdp, cmdp_tabular.average_policy(state), state.avg_lam, sol, budget
                ),
            }
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Solve a registered tabular CMDP's LP; optionally compare GDA and ReLOAD.

    Prints a JSON report: the LP solution (``J_r*``, ``J_c``, ``lambda*``,
    ``pi*``) and, with ``--iters > 0``, the last-iterate and averaged-iterate
    errors of both primal-dual methods after that many exact steps.
    """
    parser = common.ArgumentParser(
        prog="cmdp_lp", description=main.__doc__.splitlines()[0]
    )
    parser.add_argument("--env", default="HazardGrid-v0", help="registered env id")
    parser.add_argument(
        "--env-arg", action="append", default=[], help="factory argument name=value"
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--budget", type=float, default=None, help="budget b")
    group.add_argument(
        "--budget-fraction",
        type=float,
        default=0.5,
        help="b = b_min + f (b_max - b_min) (see cmdp_tabular.budget_range)",
    )
    parser.add_argument("--iters", type=int, default=0, help="primal-dual steps")
    parser.add_argument("--eta-pi", type=float, default=0.5)
    parser.add_argument("--eta-lambda", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    return common.run_main(lambda: _run(parser.parse_args(argv)), prog="cmdp_lp")


if __name__ == "__main__":
    raise SystemExit(main())
