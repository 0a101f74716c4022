r"""Exact primal-dual dynamics on tabular constrained MDPs: Lagrangian GDA and ReLOAD.

The problem is :math:`\max_\pi J_r(\pi)` subject to :math:`J_c(\pi) \le b` on a
:class:`jaxrl.mdp.FiniteMDP` with a cost table ``C`` (``J_x(pi) = E[sum_t gamma^t
x(s_t, a_t)]``, ``s_0 ~ mu0``), relaxed to the saddle problem
:math:`\max_\pi \min_{\lambda \ge 0} L(\pi, \lambda)` with
:math:`L(\pi, \lambda) = J_r(\pi) - \lambda (J_c(\pi) - b)`
(:mod:`jaxrl.ops.lagrangian`). The policy is a softmax of per-state logits
``theta[S, A]``; every gradient is exact (policy evaluation by one linear solve).
One ``update`` is one primal-dual step:

* **"gda"** (Lagrangian gradient descent-ascent): the natural policy gradient
  (NPG) step for the softmax parameterisation (Agarwal et al., JMLR 2021,
  Lemma 15) on the penalised reward and a projected multiplier step,

  .. math::
      \theta_{k+1} = \theta_k + \eta_\pi\, Q^{\pi_k}_{r - \lambda_k c}, \qquad
      \lambda_{k+1} = [\lambda_k + \eta_\lambda (J_c(\pi_k) - b)]_0^{\lambda_{max}};

  (``eta_pi`` absorbs the ``1 / (1 - gamma)`` of Agarwal et al.; NPG with
  ``Q`` or the advantage ``A = Q - V`` is the same step, since softmax ignores
  per-state shifts). The averaged iterates converge to the saddle point; the
  iterates themselves keep cycling between "satisfy the constraint" and
  "maximise the reward".
* **"reload"** (ReLOAD, Moskovitz et al., ICML 2023): the same steps with both
  gradients replaced by their optimistic extrapolations :math:`2 g_k - g_{k-1}`
  (:func:`jaxrl.ops.lagrangian.optimistic_gradient`),

  .. math::
      \theta_{k+1} = \theta_k + \eta_\pi (2 Q^{\pi_k}_{r - \lambda_k c}
          - Q^{\pi_{k-1}}_{r - \lambda_{k-1} c}), \qquad
      \lambda_{k+1} = [\lambda_k + \eta_\lambda (2 (J_c(\pi_k) - b)
          - (J_c(\pi_{k-1}) - b))]_0^{\lambda_{max}},

  with :math:`g_{-1} = g_0` (the first step is a GDA step), which converges in
  the last iterate for small step sizes.

Logits are stored as log-probabilities (shifted by their log-sum-exp after every
step; softmax is shift invariant, so the dynamics are unchanged and float32
stays accurate over long runs). ``noise_std > 0`` adds Gaussian noise to both
gradients (a model of estimated gradients).

**The budget** ``b`` is :attr:`Config.budget`, a traced hyperparameter (a grid of
budgets is one ``vmap``). The environment only supplies the cost table
(``env_params.mdp.C``, see :func:`jaxrl.envs.finite_mdp.random_cmdp` and
:func:`jaxrl.envs.finite_mdp.hazard_gridworld`); :func:`budget_range` gives the
interesting range of budgets of an MDP. An infeasible budget (below the smallest
achievable cost) makes the multiplier grow without bound (up to
``lambda_max``). ``budget = inf`` means no constraint: the violation is ``-inf``,
the first multiplier step sets :math:`\lambda = 0` (``eta_lambda = 0`` keeps
``lambda0``) and the run is unconstrained NPG; :func:`solve_dual` and
:func:`solve_cmdp_lp` then return the unconstrained optimum with
:math:`\lambda^* = 0`, exactly as for a finite budget above :func:`budget_range`'s
``b_max``. ``"lagrange/lagrangian"`` is :math:`J_r` while :math:`\lambda = 0`
(``+inf`` at an iterate with :math:`\lambda > 0`); no metric is NaN.

Metrics of step ``k`` (``train`` stacks them to ``[num_chunks * iters_per_chunk]``)
describe the iterate :math:`(\pi_k, \lambda_k)` *before* the step (they come from
the same solve as its gradients):

* ``"cmdp/j_r"``, ``"cmdp/j_c"``: :math:`J_r(\pi_k)`, :math:`J_c(\pi_k)`;
* ``"lagrange/lambda"``: :math:`\lambda_k`; ``"lagrange/lagrangian"``:
  :math:`L(\pi_k, \lambda_k)`; the violation is ``"cmdp/j_c"`` minus the budget
  (not a metric of its own: a difference of two values of order
  ``1 / (1 - gamma)``, its float32 rounding would differ between a jitted chunk
  and a whole jitted run by more than the checkpoint/resume tolerance);
* ``"cmdp/j_r_avg"``, ``"cmdp/j_c_avg"``, ``"lagrange/lambda_avg"``: the same for
  the running averages over iterates ``0..k``; the averaged policy is the one
  whose occupancy measure is the average occupancy (:func:`average_policy`), so
  its values are the averages of the values;
* with ``oracle_bisections > 0`` (e.g. 40), distances to the exact optimum
  ``(J_r*, lambda*)`` of :func:`solve_dual` (computed once per chunk, no scipy):
  ``"cmdp/reward_gap"`` (``J_r* - J_r(pi_k)``; negative when ``pi_k`` is
  infeasible), ``"cmdp/reward_gap_avg"``, ``"lagrange/lambda_error"``
  (``|lambda_k - lambda*|``) and ``"lagrange/lambda_error_avg"``. They are NaN
  for an infeasible budget. Off by default: they cost a few hundred policy
  evaluations per chunk, and as differences of two values of order
  ``1 / (1 - gamma)`` they carry float32 rounding (about ``1e-5``) that differs
  between a jitted chunk and a whole jitted run.

Step sizes act on values of order ``max|R| / (1 - gamma)``: with rewards and costs
in ``[0, 1]`` and ``gamma = 0.9``, ReLOAD's last iterate converges on small random
CMDPs for ``eta_pi = eta_lambda <= 1`` (in a few thousand steps at 0.5, tens of
thousands at 0.1) and starts to oscillate or diverge around 2 to 5, while GDA's
iterates keep cycling at every step size (tests/agents/test_cmdp_tabular.py).

Plain functions for scripts and tests: :func:`evaluate` (values, occupancy),
:func:`primal_dual` (a whole run returning every iterate), :func:`policy`,
:func:`average_policy`, :func:`solve_dual` (exact optimum by the dual),
:func:`budget_range`. :func:`solve_cmdp_lp` and :func:`min_cost`
(:mod:`jaxrl.agents.cmdp_tabular.lp`) solve the occupancy-measure linear program
exactly (scipy, host side): the reference the agent is tested against.

Examples:
  >>> from jaxrl.envs.finite_mdp import make_random_cmdp_env
  >>> env, params = make_random_cmdp_env(seed=1, num_states=4, num_actions=2)
  >>> b_min, b_max = budget_range(params.mdp)  # the constraint binds in between
  >>> config = Config(method="reload", budget=float(b_min + b_max) / 2,
  ...                 iters_per_chunk=3000, oracle_bisections=40)
  >>> state, metrics = jax.jit(make_train(config, env, params))(jax.random.key(0))
  >>> metrics["cmdp/j_r"].shape
  (3000,)
  >>> bool(metrics["lagrange/lambda_error"][-1] < 1e-3)
  True

Layout: :mod:`jaxrl.agents.cmdp_tabular.config` (:class:`Config`, :class:`Params`,
:class:`State`), :mod:`jaxrl.agents.cmdp_tabular.exact` (exact evaluation and the
exact optimum), :mod:`jaxrl.agents.cmdp_tabular.losses` (the policy of the logits,
:func:`loss` and the primal-dual :func:`update`), :mod:`jaxrl.agents.cmdp_tabular.train`
(the rest of the agent contract and :func:`primal_dual`) and :mod:`jaxrl.agents.cmdp_tabular.lp` (the LP oracle); every
public name is re-exported here.
"""

from __future__ import annotations

import jax  # noqa: F401  (the doctest's namespace)

from jaxrl.agents.cmdp_tabular.config import METHODS, Config, Params, State
from jaxrl.agents.cmdp_tabular.exact import (
    Evaluation,
    budget_range,
    evaluate,
    solve_dual,
)
from jaxrl.agents.cmdp_tabular.lp import min_cost, solve_cmdp_lp
from jaxrl.agents.cmdp_tabular.train import (
    act,
    average_policy,
    init,
    init_state,
    loss,
    make_run,
    make_train,
    policy,
    primal_dual,
    update,
)

__all__ = [
    "METHODS",
    "Config",
    "Params",
    "State",
    "Evaluation",
    "init",
    "init_state",
    "act",
    "loss",
    "update",
    "make_train",
    "make_run",
    "policy",
    "average_policy",
    "evaluate",
    "primal_dual",
    "solve_dual",
    "budget_range",
    "solve_cmdp_lp",
    "min_cost",
]
