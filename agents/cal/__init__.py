r"""CAL: conservative augmented Lagrangian, off-policy primal-dual safe RL on SAC.

CAL (Wu et al., ICLR 2024) is SAC-Lagrangian with two changes; everything else is
:mod:`jaxrl.agents.sac` (its networks, losses, optimiser steps and training loop
are reused, not copied):

* **conservative cost estimate**: ``E`` cost critics
  :math:`Q_c^1, \dots, Q_c^E` (:class:`jaxrl.agents.sac.Critic` with ``E``
  heads, each member its own MLP and initialisation), each regressed on its own
  target :math:`c_t + \gamma (1 - \text{terminated}) \bar Q_c^i(s', a')`,
  :math:`a' \sim \pi`; the policy sees the upper confidence bound
  :math:`Q_c^{UCB} = \hat\mu + k \hat\sigma` over the members
  (:func:`jaxrl.ops.cal.ensemble_ucb`);
* **augmented Lagrangian**: the actor minimises

  .. math:: \mathbb E_{s \sim \mathcal D, a \sim \pi}\big[\alpha \log\pi(a|s)
            - \min_j Q_r^j(s, a)\big] + \frac{1}{2c}\Big(\max\{0, \lambda +
            c(\hat J_c - \xi)\}^2 - \lambda^2\Big), \qquad
            \hat J_c = \mathbb E\big[Q_c^{UCB}(s, a)\big],

  (:func:`jaxrl.ops.cal.augmented_lagrangian_penalty`, batch means), whose
  gradient is SAC's plus :math:`\max\{0, \lambda + c(\hat J_c - \xi)\}
  \nabla\hat J_c`; and after each gradient step the multiplier takes the
  projected step :math:`\lambda \leftarrow \mathrm{clip}(\lambda + \eta_\lambda
  (\hat J_c - \xi), 0, \lambda_{max})` on the same batch's estimate.

The budget :math:`\xi` on the critics' scale comes from the environment's
per-episode ``cost_limit`` :math:`b` (D7):
:math:`\xi = (b / T)(1 - \gamma^T) / (1 - \gamma)` for an undiscounted budget
over episodes of ``T`` steps (:func:`jaxrl.ops.cal.q_budget`).

With ``num_cost_critics=1, k=0, c=0`` this is SAC-Lagrangian (one cost critic,
actor penalty :math:`\lambda(\hat J_c - \xi)`); with also ``lambda0=0`` and
``eta_lambda=0`` its actor, critics and temperature take exactly SAC's steps.

Metrics: SAC's, plus ``"loss/cost_critic"``, ``"cost/q_mean"``, ``"cost/q_ucb"``,
``"cost/q_std"``, ``"lagrange/violation"``, ``"lagrange/penalty"``,
``"lagrange/rectified"``, ``"lagrange/budget"``, ``"lagrange/lambda"``,
``"train/cost_grad_norm"``, ``"episode/cost"`` and ``"eval/cost"``.

Usage::

    env, env_params = jaxrl.envs.make("Pendulum-Constrained-v0", cost_limit=5.0)
    config = cal.pendulum_config()
    train = jax.jit(jax.vmap(cal.make_train(config, env, env_params)))
    state, metrics = train(jax.random.split(jax.random.key(0), 4))

References:
  Wu, Tang, Lin, Yu, Mao, Xie, Wang and Wang, "Off-Policy Primal-Dual Safe
  Reinforcement Learning", ICLR 2024.
"""

from jaxrl.agents.cal.config import (
    Config,
    OptState,
    Params,
    State,
    Targets,
    pendulum_config,
    pendulum_lagrangian_config,
)
from jaxrl.agents.cal.losses import loss, update
from jaxrl.agents.cal.train import act, init, make_run, make_train

__all__ = [
    "Config",
    "Params",
    "OptState",
    "Targets",
    "State",
    "init",
    "act",
    "loss",
    "update",
    "make_train",
    "make_run",
    "pendulum_config",
    "pendulum_lagrangian_config",
]
