"""Direct solvers of :mod:`jaxrl.agents.distributional_dp`: evaluation, VI, PI, CVaR."""

from __future__ import annotations

import jax.numpy as jnp
from flax import struct

from jaxrl import config as config_lib
from jaxrl.agents.distributional_dp.config import Config
from jaxrl.mdp import FiniteMDP
from jaxrl.ops import distributional as dist
from jaxrl.ops import distributional_dp as ddp
from jaxrl.types import Array, Metrics

__all__ = [
    "Solution",
    "evaluate",
    "value_iteration",
    "policy_iteration",
    "objective_metrics",
    "solve",
    "cvar_optimize",
]


@struct.dataclass
class Solution:
    """Result of :func:`solve` / :func:`cvar_optimize`.

    Attributes:
      objective: ``[]`` objective of ``policy`` at ``mu0`` started at ``stock0``
        (``"cvar"``: CVaR_alpha of its return law).
      bound: ``[]`` for ``"cvar"`` the Rockafellar-Uryasev value at ``stock0``
        (a lower bound on ``objective``, equal to it when exact); otherwise
        ``objective``.
      stock0: ``[]`` the initial stock c0 (``"cvar"``: the maximising grid stock).
      mean: ``[]`` mean return of ``policy`` from ``mu0`` and ``stock0``.
      law: ``[N]`` the law of the return G (stock not added).
      policy: ``[S, K]`` int32 stock-Markov policy.
      laws: ``[S, K, A, N]`` its return laws.
    """

    objective: Array
    bound: Array
    stock0: Array
    mean: Array
    law: Array
    policy: Array
    laws: Array


def _check_gamma(mdp: FiniteMDP) -> None:
    config_lib.check_range("gamma", mdp.gamma, 0.0, 1.0, low_inclusive=False)


def evaluate(
    mdp: FiniteMDP, policy: Array, config: Config, num_iters: int | None = None
) -> Array:
    """Return the laws ``[S, K, A, N]`` of a stock-Markov (or Markov) policy.

    See :func:`jaxrl.ops.distributional_dp.distributional_policy_evaluation`.

    Args:
      mdp: the MDP.
      policy: ``[S, K]`` int, ``[S, K, A]`` or ``[S, A]`` probabilities.
      config: the config (grids).
      num_iters: static sweeps (default ``config.eval_iters``).

    Returns:
      ``[S, K, A, N]`` laws, starting from delta_0.
    """
    _check_gamma(mdp)
    n = config.eval_iters if num_iters is None else num_iters
    return ddp.distributional_policy_evaluation(
        mdp, policy, config.stocks, config.support, n
    )


def value_iteration(
    mdp: FiniteMDP, config: Config, laws0: Array | None = None
) -> tuple[Array, Array]:
    """Run ``config.num_iters`` sweeps of distributional VI for the objective's ``f``.

    Args:
      mdp: the MDP.
      config: the config (``inner_utility``, grids, ``num_iters``).
      laws0: initial laws (default delta_0).

    Returns:
      ``(laws [S, K, A, N], policy [S, K] int32)``.
    """
    _check_gamma(mdp)
    return ddp.distributional_value_iteration(
        mdp,
        config.stocks,
        config.support,
        config.inner_utility,
        config.num_iters,
        laws0,
    )


def policy_iteration(
    mdp: FiniteMDP, config: Config, laws0: Array | None = None
) -> tuple[Array, Array]:
    """Run ``config.num_iters`` steps of distributional PI (``eval_iters`` sweeps each).

    Args:
      mdp: the MDP.
      config: the config.
      laws0: initial laws (default delta_0).

    Returns:
      ``(laws, policy)``: the final policy and its evaluated laws.
    """
    _check_gamma(mdp)
    return ddp.distributional_policy_iteration(
        mdp,
        config.stocks,
        config.support,
        config.inner_utility,
        config.num_iters,
        config.eval_iters,
        eta0=laws0,
    )


def objective_metrics(
    mdp: FiniteMDP, laws: Array, policy: Array, config: Config
) -> Metrics:
    """Return the objective, mean and initial stock of ``policy`` at ``mu0``.

    Args:
      mdp: the MDP.
      laws: ``[S, K, A, N]`` laws (used as the policy's laws).
      policy: ``[S, K]`` int32 policy.
      config: the config.

    Returns:
      ``{"dp/objective", "dp/mean", "dp/stock0", "dp/bound"}`` scalars.
    """
    stocks, support = (
        config.stocks.astype(laws.dtype),
        config.support.astype(laws.dtype),
    )
    if config.objective == "cvar":
        ru = ddp.cvar_objective(mdp, laws, policy, stocks, support, config.alpha)
        best = jnp.argmax(ru)
        stock0, bound = stocks[best], ru[best]
        law = ddp.initial_return_law(mdp, laws, policy, stocks, stock0)
        objective = dist.cvar(support, law, jnp.asarray(config.alpha, laws.dtype))
    else:
        stock0 = jnp.asarray(config.initial_stock, laws.dtype)
        law = ddp.initial_return_law(mdp, laws, policy, stocks, stock0)
        if config.inner_utility == "identity":
            objective = stock0 + jnp.sum(law * support)
        else:
            objective = dist.expected_utility(
                stock0 + support, law, config.inner_utility
            )
        bound = objective
    return {
        "dp/objective": objective,
        "dp/mean": jnp.sum(law * support),
        "dp/stock0": stock0,
        "dp/bound": bound,
    }


def solve(mdp: FiniteMDP, config: Config) -> Solution:
    """Optimise ``config.objective``: VI or PI, then an exact-up-to-sweeps evaluation.

    Runs :func:`value_iteration` or :func:`policy_iteration` (``config.method``),
    re-evaluates the greedy policy for ``config.eval_iters`` sweeps
    (warm-started) so that ``laws`` are the returned policy's own laws, and
    computes the objective (for ``"cvar"`` the outer search over grid stocks).

    Args:
      mdp: the MDP.
      config: the config.

    Returns:
      The :class:`Solution`.
    """
    config_lib.validate(config)
    if config.method == "vi":
        laws, policy = value_iteration(mdp, config)
    else:
        laws, policy = policy_iteration(mdp, config)
    laws = ddp.distributional_policy_evaluation(
        mdp, policy, config.stocks, config.support, config.eval_iters, laws
    )
    m = objective_metrics(mdp, laws, policy, config)
    law = ddp.initial_return_law(mdp, laws, policy, config.stocks, m["dp/stock0"])
    return Solution(
        objective=m["dp/objective"],
        bound=m["dp/bound"],
        stock0=m["dp/stock0"],
        mean=m["dp/mean"],
        law=law,
        policy=policy,
        laws=laws,
    )


def cvar_optimize(mdp: FiniteMDP, config: Config) -> Solution:
    r"""Maximise :math:`\mathrm{CVaR}_\alpha(G)` over history-dependent policies.

    :func:`solve` with ``objective="cvar"`` (the other fields of ``config`` kept):
    the inner problem :math:`\max_\pi \mathbb{E}\min(c + G^\pi, 0)` is solved at
    every grid stock by one DP run, and
    :math:`c_0^* = \arg\max_{c_k} [-c_k + \frac1\alpha \sum_s \mu_0(s) V(s, c_k)]`.

    Args:
      mdp: the MDP.
      config: the config (``alpha``, grids, method, iterations).

    Returns:
      The :class:`Solution`: ``objective`` is the CVaR of the returned policy's
      law, ``stock0`` the best initial stock, ``bound`` the RU value there.
    """
    return solve(mdp, config.replace(objective="cvar"))
