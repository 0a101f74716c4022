r"""CaT: constraints as terminations, on a PPO base.

Chane-Sane et al. (IROS 2024) handle constraints without a budget or a
multiplier: every violation makes the *learning target* end with a
probability that grows with the size of the violation. With per-step
violations :math:`c_t \ge 0` (here the environment's ``info["cost"]``, one
constraint) each step gets the termination probability

.. math::
   \delta_t = p^{max}\,\mathrm{clip}\big(c_t^{+} / c_t^{max},\, 0,\, 1\big),
   \qquad
   c_t^{max} = \max\big(\tau c_{t-1}^{max} + (1 - \tau) \max_e c_{t,e}^{+},\
               \epsilon\big),

a running scale of the violations (exponential moving average of each
step's largest violation over the ``E`` environments, updated before it
divides; :func:`jaxrl.ops.terminations.termination_probabilities`), and PPO
is trained on the soft-terminated return: the reward and the bootstrap of a
step are both multiplied by its survival probability,

.. math::
   y_t = (1 - \delta_t)\, r_t + \gamma (1 - \text{terminated}_t)(1 - \delta_t)\,
         V(s_{t+1}),

with GAE(λ) advantages built on the same per-step discount
(:func:`jaxrl.ops.terminations.soft_termination_returns`). The environment
itself is not reset by a CaT termination (its true terminations and time
limits keep their usual meaning), so the data are PPO's; only advantages and
value targets change, and through them the policy. With positive rewards a
violation costs the value of what follows it, so the policy learns to avoid
violations in proportion to :math:`p^{max}`; nothing depends on a budget
:math:`b` (a budget in the environment parameters is ignored).

Everything else is :mod:`jaxrl.agents.ppo`: its networks, loss, collection,
minibatch epochs (:func:`jaxrl.agents.ppo.learn` with an ``advantage_fn``)
and the shared on-policy loop (:mod:`jaxrl.agents._onpolicy_loop`, whose
``Extension`` here only nests the state and adds ``"episode/cost"``). With
``p_max = 0`` every :math:`\delta_t` is exactly 0 and a run is
:func:`jaxrl.agents.ppo.make_train`'s from the same key.

Fields: ``base`` (a :class:`jaxrl.agents.ppo.Config`), ``p_max`` (:math:`p^{max}`),
``scale_decay`` (:math:`\tau`), ``scale_floor`` (:math:`\epsilon`, also the
initial scale); all numeric fields are traced.

Metrics: PPO's plus ``"cat/termination_prob"`` (mean :math:`\delta_t` of the
rollout), ``"cat/terminating_fraction"``, ``"cat/cost_scale"``,
``"episode/cost"`` (undiscounted, training episodes) and ``"eval/cost"``
(greedy, end of each chunk).

Usage::

    env, env_params = jaxrl.envs.make("CartPole-Constrained-v0")
    config = cat.cartpole_config()
    train = jax.jit(jax.vmap(cat.make_train(config, env, env_params)))
    state, metrics = train(jax.random.split(jax.random.key(0), 4))

References:
  Chane-Sane, Leziart, Flayols, Stasse, Souères and Mansard, "CaT: Constraints
  as Terminations for Legged Locomotion Reinforcement Learning", IROS 2024.
"""

from __future__ import annotations

from jaxrl.agents.cat.config import Config, State, cartpole_config
from jaxrl.agents.cat.train import (
    act,
    advantages,
    collect,
    init,
    loss,
    make_run,
    make_train,
    update,
)

__all__ = [
    "Config",
    "State",
    "init",
    "act",
    "collect",
    "advantages",
    "loss",
    "update",
    "make_run",
    "make_train",
    "cartpole_config",
]
