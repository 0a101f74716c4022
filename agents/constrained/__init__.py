r"""Deep constrained agents: Lagrangian GDA and ReLOAD on top of M-DQN.

The problem is the constrained MDP of :mod:`jaxrl.envs.constrained`: maximise the
return subject to the per-episode cost budget

.. math:: J_c(\pi) = \mathbb{E}_\pi\Big[\sum_t \gamma_c^t c_t\Big] \le b,

with :math:`b` (``cost_limit``) and :math:`\gamma_c` (``cost_gamma``) read from the
environment parameters (:func:`jaxrl.envs.constrained.budget_from_params`), so a grid
of budgets is a ``vmap`` over the params. The saddle problem
:math:`\max_\pi \min_{\lambda \ge 0} J_r(\pi) - \lambda (J_c(\pi) - b)` is played
by two learners:

* **the policy player** is the base value agent (static ``base_agent``;
  ``"mdqn"``: :mod:`jaxrl.agents.mvi`, whose M-DQN loss also covers DQN-style
  targets with ``alpha = tau = 0``) acting on the Lagrangian action values
  :math:`Q_\lambda = Q_r - \lambda Q_c` (policy values are linear in the
  reward, so :math:`Q_\lambda` is the value of the penalised reward
  :math:`r - \lambda c`, :func:`jaxrl.ops.lagrangian.lagrangian_reward`). The
  static ``critic`` chooses how :math:`Q_\lambda` is learned (below). The
  multiplier is a constant of the critic's loss (no gradient flows into it),
  so the critic always regresses onto the current Lagrangian. The critics
  discount the cost with the agent's ``gamma``; the budget is on the
  environment's episode cost (the multiplier's signal below).
* **the multiplier player** uses a Monte Carlo estimate of :math:`J_c`: every
  iteration, the mean :math:`\hat J_c` of the discounted episode costs
  :math:`\sum_t \gamma_c^t c_t` of the episodes that ended in that iteration
  (summed per environment from ``info["discounted_cost"]``) gives the violation
  :math:`g_k = \hat J_c - b`, and (:func:`multiplier_update`)

  - ``method="lagrangian"`` (projected GDA):
    :math:`\lambda_{k+1} = [\lambda_k + \eta_\lambda g_k]_0^{\lambda_{max}}`;
  - ``method="reload"`` (ReLOAD's optimistic step, Moskovitz et al. ICML 2023):
    :math:`\lambda_{k+1} =
    [\lambda_k + \eta_\lambda (2 g_k - g_{k-1})]_0^{\lambda_{max}}`
    with :math:`g_{-1} = g_0` (:func:`jaxrl.ops.lagrangian.optimistic_gradient`),
    where :math:`g_{k-1}` is the previous *observed* violation.

  Iterations in which no episode ends leave the multiplier (and ReLOAD's memory)
  unchanged. ``eta_lambda``, ``lambda0`` and ``lambda_max`` are traced: a sweep
  over seeds x multiplier step sizes is one jitted ``vmap``. ``cost_limit = inf``
  means no constraint: :math:`g_k = -\infty` and the multiplier is 0 from the
  first finished episode on (it stays at ``lambda0`` with ``eta_lambda = 0``),
  so the run is the base agent's once :math:`\lambda = 0`; no metric is NaN
  (``"lagrange/violation"`` is ``-inf``).

Critics (static ``Config.critic``, :data:`CRITICS`). Notation: :math:`q` the
online network, :math:`\bar q` the target network,
:math:`\gamma_t = \gamma (1 - \text{terminated}_t)`, :math:`(\alpha, \tau, l_0)`
the base config's Munchausen parameters, :math:`[x]_{l_0}^0` clipping,
:math:`\mathrm{h}` the Huber loss with ``huber_delta``, means over the batch.

* ``"penalised"`` (default): ONE critic :math:`q = Q_\lambda` with the base
  agent's M-DQN loss on the penalised reward (:func:`penalised_batch`),
  :math:`\bar\pi = \mathrm{softmax}(\bar q/\tau)`,

  .. math::
     y = r_t - \lambda c_t + \alpha[\tau\ln\bar\pi(a_{t-1}|s_{t-1})]_{l_0}^0
         + \gamma_t \textstyle\sum_b \bar\pi(b|s_t)
           \big(\bar q(s_t,b) - \tau\ln\bar\pi(b|s_t)\big),
     \qquad L = \mathrm{mean}\,\mathrm{h}(y - q(s_{t-1}, a_{t-1})).

  The base agent's loss and acting are untouched, which gives the exact
  identity "``lambda = 0`` is the base agent" (tested bitwise).
* ``"separate"``: a reward critic :math:`q_r` and a cost critic :math:`q_c`,
  the two heads of ONE network (shared torso, ``2 A`` outputs, action-major:
  output ``2a`` is :math:`q_r(s, a)`, ``2a + 1`` is :math:`q_c(s, a)`; the
  target network likewise), each regressed onto its own target under the
  agent's current soft-greedy policy
  :math:`\bar\pi = \mathrm{softmax}(\bar q_\lambda/\tau)`,
  :math:`\bar q_\lambda = \bar q_r - \lambda \bar q_c`:

  .. math::
     y_r &= r_t + \alpha[\tau\ln\bar\pi(a_{t-1}|s_{t-1})]_{l_0}^0
           + \gamma_t \textstyle\sum_b \bar\pi(b|s_t)
             \big(\bar q_r(s_t,b) - \tau\ln\bar\pi(b|s_t)\big),\\
     y_c &= c_t + \gamma_t \textstyle\sum_b \bar\pi(b|s_t)\,\bar q_c(s_t,b),\\
     L &= \mathrm{mean}\,\mathrm{h}(y_r - q_r(s_{t-1},a_{t-1}))
        + \mathrm{mean}\,\mathrm{h}(y_c - q_c(s_{t-1},a_{t-1})).

  The Munchausen bonus and the entropy term are on the reward critic; the
  cost critic is plain (expected-SARSA) policy evaluation of :math:`\bar\pi`,
  so at a fixed policy its fixed point is the policy's cost value
  :math:`Q_c^{\bar\pi}` (tested against exact policy evaluation). Because
  :math:`y_r - \lambda y_c` is the penalised critic's target on
  :math:`\bar q_\lambda`, the two choices regress :math:`q_\lambda` towards the
  same target; the separate heads also give the cost value itself, keep the
  cost's scale out of the reward head's targets when :math:`\lambda` moves
  (the heads do not have to re-learn when the multiplier changes), at the
  price of a shared torso trained on both losses. The policy acts with the
  base agent's rule (:func:`act`) on :math:`q_\lambda = q_r - \lambda q_c`; at
  ``tau = 0`` :math:`\bar\pi` is uniform over the maximisers of
  :math:`\bar q_\lambda`.

Data and loop: the replay buffer stores ``Transition.extras["cost"]`` (the loss
needs it; a batch without it fails with ``KeyError`` at trace time). The
iteration is :mod:`jaxrl.agents._value_loop`'s, through its
:class:`~jaxrl.agents._value_loop.Extension` hook: the multiplier state lives next to
the base state, ``act``/``loss``/evaluation receive :class:`Params` ``(q, lam)``,
and after every iteration the multiplier steps on the collected costs. The key
splits are the base agent's, so with ``eta_lambda = lambda0 = 0`` a whole run
of the penalised critic equals :mod:`jaxrl.agents.mvi`'s bitwise.

Contract. :class:`Config` nests the base agent's config (``config.base``;
override it with dotted keys, ``base.lr=1e-3``) and :class:`State` nests the base
state (``state.base``) next to the multiplier state; ``state.params`` is
:class:`Params` ``(q, lam)`` (the network and the multiplier), which is what
:func:`act` and :func:`loss` take; ``state.key`` is the base state's key.

Metrics (besides the base agent's): ``"lagrange/lambda"`` (after the
iteration), ``"lagrange/violation"`` (:math:`g_k`, NaN when no episode ended),
``"episode/cost"`` (mean undiscounted cost of the episodes ended, NaN if none),
``"episode/discounted_cost"`` (:math:`\hat J_c`, :func:`mean_episode_cost`), ``"loss/penalised_reward"``
(batch mean of :math:`r - \lambda c`), and at the end of each chunk
``"eval/return"``, ``"eval/length"``, ``"eval/cost"`` of the greedy policy. The
separate critics report ``"loss/td"``, ``"q/mean"``, ``"td/abs"`` for the reward
critic and ``"loss/cost_td"``, ``"q_cost/mean"``, ``"td_cost/abs"`` for the cost
critic (the loss is their sum).

Layout: :mod:`~jaxrl.agents.constrained.config` (``Config``, ``Params``, ``State``,
preset), :mod:`~jaxrl.agents.constrained.networks` (the critics' network),
:mod:`~jaxrl.agents.constrained.losses` (the critics' losses and the gradient step),
:mod:`~jaxrl.agents.constrained.multiplier` (the multiplier player),
:mod:`~jaxrl.agents.constrained.train` (agent API, acting and the loop).

Usage::

    env, env_params = jaxrl.envs.make("CartPole-Constrained-v0")
    config = constrained.Config(method="reload", base=mvi.cartpole_config())
    train = jax.jit(jax.vmap(constrained.make_train(config, env, env_params)))
    state, metrics = train(jax.random.split(jax.random.key(0), 4))
"""

from __future__ import annotations

from jaxrl.agents.constrained.config import (
    BASE_AGENTS,
    CRITICS,
    METHODS,
    Config,
    Params,
    State,
    cartpole_config,
)
from jaxrl.agents.constrained.losses import loss, penalised_batch, update
from jaxrl.agents.constrained.multiplier import mean_episode_cost, multiplier_update
from jaxrl.agents.constrained.train import act, init, make_run, make_train

__all__ = [
    "METHODS",
    "BASE_AGENTS",
    "CRITICS",
    "Config",
    "Params",
    "State",
    "init",
    "act",
    "loss",
    "update",
    "multiplier_update",
    "mean_episode_cost",
    "penalised_batch",
    "make_train",
    "make_run",
    "cartpole_config",
]
