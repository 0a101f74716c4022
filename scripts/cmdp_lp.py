"""``python -m jaxrl.scripts.cmdp_lp``: a tabular CMDP's exact LP solution, optionally vs GDA and ReLOAD.

Solves a registered tabular constrained MDP's occupancy-measure linear program
(:func:`jaxrl.agents.cmdp_tabular.solve_cmdp_lp`, scipy HiGHS) and prints a JSON
report; with ``--iters > 0`` also the last-iterate and averaged-iterate errors of
both primal-dual methods of :mod:`jaxrl.agents.cmdp_tabular` after that many
exact steps.

``--budget inf`` means no constraint (the unconstrained optimum, ``lambda* = 0``);
non-finite numbers in the report are written as the strings ``"inf"`` / ``"-inf"``
(strict JSON, docs/decisions.md D5).

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

import jax
import numpy as np

from jaxrl import envs
from jaxrl.agents import cmdp_tabular
from jaxrl.errors import ConfigError
from jaxrl.mdp import FiniteMDP
from jaxrl.scripts import common

__all__ = ["main"]


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


def _strict(value: Any) -> Any:
    """``value`` with non-finite floats as strings (``"inf"``), for strict JSON."""
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strict(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    return value


def _compare(
    mdp: FiniteMDP, pi: Any, lam: Any, sol: dict[str, Any], budget: float
) -> dict[str, float]:
    """Return how far ``(pi, lam)`` is from the LP solution ``sol``."""
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
    env, env_params = envs.make(args.env, **_parse_env_args(args.env_arg))
    mdp = env_params.mdp
    if not isinstance(mdp, FiniteMDP) or mdp.C is None:
        raise ConfigError(f"{args.env} is not a tabular constrained MDP (no cost C)")
    b_min, b_max = (float(x) for x in cmdp_tabular.budget_range(mdp))
    if args.budget is None:
        budget = b_min + args.budget_fraction * (b_max - b_min)
    else:
        budget = args.budget
    sol = cmdp_tabular.solve_cmdp_lp(mdp, budget)
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
    json.dump(_strict(report), sys.stdout, indent=2, allow_nan=False)
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
    group.add_argument(
        "--budget", type=float, default=None, help="budget b (inf: no constraint)"
    )
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
