r"""Exact (tabular) stock-augmented distributional DP: risk-sensitive objectives.

Optimises a functional of the *return law* on any :class:`jaxrl.mdp.FiniteMDP`
by distributional value iteration or policy iteration on the MDP augmented with
the stock :math:`c_{t+1} = (c_t + r_t)/\gamma` (Pires et al., JMLR 2025, arXiv
2501.13028). The operators, the stock grid, the return projection and exactly
what is exact are documented in :mod:`jaxrl.ops.distributional_dp`; in short:
return laws ``laws[S, K, A, N]`` are categorical on ``return_support(v_min,
v_max, num_atoms)`` for every state, grid stock ``stock_grid(stock_min,
stock_max, num_stocks)`` and action; an off-grid next stock is randomly rounded
to its two grid neighbours (linear interpolation of the laws); the greedy rule is
:math:`\arg\max_b \mathbb{E} f(c + X_b)` on the stock-shifted law.

Objectives (static ``Config.objective``; numeric parameters traced):

* ``"mean"``: :math:`\mathbb{E} G`, ``f(x) = x`` (the stock is ignored: this is
  value iteration);
* ``"cvar"``: :math:`\mathrm{CVaR}_\alpha(G) = \max_{c_0}\big[-c_0 +
  \frac1\alpha \max_\pi \mathbb{E}\min(c_0 + G^\pi, 0)\big]`, the inner problem
  solved for every grid stock at once (``f = min_zero``), the outer maximum over
  the grid (:func:`jaxrl.ops.distributional_dp.cvar_objective`);
* ``"threshold"``: :math:`P(G \ge \text{threshold})`, ``f = indicator``,
  :math:`c_0 = -\text{threshold}`;
* ``"homeostatic"``: keep the return near ``set_point``:
  :math:`\mathbb{E} f(G - \text{set\_point})` with ``f = neg_abs`` (-|x|) or
  ``neg_square`` (-x^2) (``Config.utility``), :math:`c_0 = -\text{set\_point}`;
* ``"utility"``: any :data:`jaxrl.ops.distributional.UTILITY_NAMES` entry
  ``Config.utility`` with initial stock ``Config.stock0``.

Choose the stock grid to contain :math:`c_0` (``-threshold``, ``-set_point``,
``stock0``) and the stocks that matter; an off-grid :math:`c_0` is randomly
rounded too (the objective is still computed with the true :math:`c_0`).

The policy is *stock-Markov*: ``policy[S, K]`` over grid stocks. It is executed
with the grid stock index as memory (:func:`rollout`): ``act`` takes
``obs = (env_obs, stock_index)``, and after each reward the memory is updated by
:func:`next_stock_index` (random rounding of :math:`(c_k + r)/\gamma`). The laws
of :func:`evaluate` are the exact return laws of that execution (up to the return
projection). :func:`evaluate` and :func:`rollout` also take stochastic tables,
``[S, K, A]`` stock-Markov or ``[S, A]`` stock-blind probabilities.

Directly callable solvers (all jit-able, vmap-able over MDPs and traced config
fields): :func:`evaluate`, :func:`value_iteration`, :func:`policy_iteration`,
:func:`solve`, :func:`cvar_optimize`. The agent contract (one ``update`` is one VI
sweep or one PI step) reports per sweep:

* ``"dp/objective"``: the objective at :math:`\mu_0` of the greedy policy of the
  current laws (CVaR for ``"cvar"``: the CVaR of its return law started at the
  best grid :math:`c_0`);
* ``"dp/mean"``: the mean return of that policy from :math:`\mu_0` (and
  :math:`c_0`);
* ``"dp/stock0"``: the initial stock used (the maximiser for ``"cvar"``);
* ``"dp/bound"``: for ``"cvar"`` the Rockafellar-Uryasev value at that stock (a
  lower bound on ``"dp/objective"``); otherwise equal to ``"dp/objective"``;
* ``"dp/residual"``: the supremum Cramér distance between the laws before and
  after the update.

``gamma`` is the MDP's (``env_params.mdp.gamma``, in ``(0, 1]``).

Examples:
  >>> from jaxrl.envs.finite_mdp import make_chain_env
  >>> env, params = make_chain_env(num_states=4, gamma=0.5)
  >>> config = Config(objective="mean", num_atoms=11, v_min=0.0, v_max=2.0,
  ...                 num_stocks=3, stock_min=-1.0, stock_max=1.0, iters_per_chunk=30)
  >>> state, metrics = jax.jit(make_train(config, env, params))(jax.random.key(0))
  >>> round(float(metrics["dp/objective"][-1]), 4)  # V*(0) = 0.5^3 / (1 - 0.5)
  0.25

Layout: :mod:`jaxrl.agents.distributional_dp.config` (objectives, :class:`Config`,
:class:`State`), :mod:`jaxrl.agents.distributional_dp.solvers` (the direct solvers),
:mod:`jaxrl.agents.distributional_dp.losses` (:func:`loss`, :func:`update`),
:mod:`jaxrl.agents.distributional_dp.train` (the rest of the agent contract) and
:mod:`jaxrl.agents.distributional_dp.execution` (:func:`rollout` with the stock
memory) and :mod:`jaxrl.agents.distributional_dp.split` (:func:`split_solve`, the
worst-/best-case substate DP of Achab & Neu, stock-blind; see
:mod:`jaxrl.ops.split_dp`); every public name is re-exported here.
"""

from __future__ import annotations

import jax  # noqa: F401  (the doctest's namespace)

from jaxrl.agents.distributional_dp.config import (
    METHODS,
    OBJECTIVES,
    Config,
    State,
    check_objective,
    initial_stock,
    inner_utility,
)
from jaxrl.agents.distributional_dp.execution import next_stock_index, rollout
from jaxrl.agents.distributional_dp.losses import loss, update
from jaxrl.agents.distributional_dp.solvers import (
    Solution,
    cvar_optimize,
    evaluate,
    objective_metrics,
    policy_iteration,
    solve,
    value_iteration,
)
from jaxrl.agents.distributional_dp.split import SplitSolution, split_solve
from jaxrl.agents.distributional_dp.train import act, init, make_run, make_train

__all__ = [
    "OBJECTIVES",
    "check_objective",
    "inner_utility",
    "initial_stock",
    "METHODS",
    "Config",
    "State",
    "Solution",
    "init",
    "act",
    "loss",
    "update",
    "make_train",
    "make_run",
    "evaluate",
    "value_iteration",
    "policy_iteration",
    "solve",
    "cvar_optimize",
    "objective_metrics",
    "next_stock_index",
    "rollout",
    "SplitSolution",
    "split_solve",
]
