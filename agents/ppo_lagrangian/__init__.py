r"""PPO-Lagrangian and PPO-ReLOAD: constrained policy optimisation with a cost critic.

The problem is the constrained MDP of :mod:`jaxrl.envs.constrained`: maximise the
return subject to the per-episode budget
:math:`J_c(\pi) = \mathbb{E}_\pi[\sum_t \gamma_c^t c_t] \le b`, with :math:`b`
(``cost_limit``) and :math:`\gamma_c` (``cost_gamma``) read from the environment
parameters (:func:`jaxrl.envs.constrained.budget_from_params`). The saddle problem
:math:`\max_\pi \min_{\lambda \ge 0} J_r(\pi) - \lambda (J_c(\pi) - b)` is played
by PPO (:mod:`jaxrl.agents.ppo`, whose :class:`~jaxrl.agents.ppo.Config` and
:class:`~jaxrl.agents.ppo.State` are nested here) and a multiplier:

* **Networks.** The actor and reward critic are PPO's :class:`~jaxrl.agents.ppo.
  ActorCritic`; the **cost critic** :math:`V_c` is a *separate network* of the same
  shape (:class:`ActorCostCritic` adds ``cost_torso``/``cost_head``, and
  ``cost_conv`` with a conv torso). A separate network, rather than a second head
  on a shared torso, keeps the reward critic's features free of the cost
  regression (PPO's actor and critic are already separate) and, with its own
  optimiser partition (:func:`optimizer`: the same Adam chain applied
  separately, so the global-norm clipping of one never rescales the other), it
  makes the actor-critic update *exactly* PPO's when :math:`\lambda = 0`: flax
  derives each submodule's initialisation key from its name, so the same key
  gives the same actor and critic as :func:`jaxrl.agents.ppo.init`.
* **Cost advantages** :math:`A_c` are GAE on :math:`c_t` with
  :math:`V_c` (:func:`jaxrl.agents.ppo.compute_gae`, the same episode-boundary rules as
  the reward: bootstrap through truncation only) and λ of the reward GAE. The
  discount is static ``cost_discount``: ``"agent"`` (default) uses the agent's
  :math:`\gamma` for both critics, as Ray et al. (2019) do (lower variance, and a
  cost critic whose horizon matches the reward critic's); ``"env"`` uses the
  budget's :math:`\gamma_c` (unbiased for :math:`\nabla J_c`, but
  :math:`\gamma_c = 1` makes :math:`V_c` a time-dependent cost-to-go).
* **Policy loss** on the Lagrangian advantage (:func:`lagrangian_advantage`)
  :math:`A_\lambda = (A_r - \lambda A_c) / (1 + \lambda)`, the PPO-Lagrangian
  objective of Ray, Achiam and Amodei (2019, "Benchmarking safe exploration in
  deep RL") also used by Stooke, Achiam and Abbeel (ICML 2020). Dividing by
  :math:`1 + \lambda` keeps the surrogate's scale bounded as :math:`\lambda`
  grows (the step of a reward-only or cost-only problem at the two ends); with
  the base config's per-minibatch advantage standardisation (the default) the
  scale is removed anyway and only the relative weight :math:`\lambda` of the
  *raw* advantages matters, which is why :math:`A_r` and :math:`A_c` are combined
  before, not after, standardisation (standardising them separately would change
  the meaning of :math:`\lambda`).
* **Multiplier** from the Monte Carlo episode-cost violation
  :math:`g_k = \hat J_c - b` of the episodes that ended in the iteration's
  rollout (discounted costs ``info["discounted_cost"]`` summed per episode,
  carried across rollouts), by :func:`jaxrl.agents.constrained.multiplier_update`:
  projected GDA (``"lagrangian"``) or ReLOAD's optimistic step
  :math:`[\lambda_k + \eta_\lambda (2 g_k - g_{k-1})]_0^{\lambda_{max}}`
  (``"reload"``, Moskovitz et al., ICML 2023); iterations with no finished
  episode leave it unchanged; ``cost_limit = inf`` (no constraint) gives
  :math:`g_k = -\infty` and :math:`\lambda = 0` from the first finished
  episode on (``lambda0`` kept with ``eta_lambda = 0``), never NaN. As in Ray
  et al. (2019), the multiplier steps
  first on the rollout's episodes, then the policy steps on the same rollout
  with the new multiplier :math:`\lambda_{k+1}` (alternating GDA).
* **ReLOAD's policy side.** The optimistic gradient :math:`2 G_k - G_{k-1}` of
  the policy, with :math:`G_k = \nabla_\pi L(\pi_k, \lambda_{k+1})`, needs the
  previous iteration's gradient at the previous policy, which is not defined on
  the current rollout (another batch, other states, a policy that has moved).
  What is well defined is the part of the correction that comes from the
  multiplier: :math:`G` is linear in :math:`\lambda`, so
  :math:`2 G(\pi_k, \lambda_{k+1}) - G(\pi_k, \lambda_k) = G(\pi_k, 2\lambda_{k+1}
  - \lambda_k)`. With ``method="reload"`` and ``optimistic_policy=True``
  (default) the policy therefore steps on the *extrapolated multiplier*
  :math:`\tilde\lambda = [2 \lambda_{k+1} - \lambda_k]_0^{\lambda_{max}}`
  (reported as ``"lagrange/policy_lambda"``); the policy's own change between
  iterations gets no optimistic term (PPO's clipped epochs bound it).
  ALGORITHMS.md section 8 leaves the paper's deep-policy choice open.

Every numeric field (``eta_lambda``, ``lambda0``, ``lambda_max``,
``cost_vf_coef`` and the base's) is traced, so seeds x multiplier step sizes is
one jitted ``vmap``; with ``eta_lambda = lambda0 = 0`` a run equals
:func:`jaxrl.agents.ppo.make_train`'s from the same key under the same ``vmap``
batching: the same episodes and actions, and the actor-critic parameters and
every PPO metric up to float32 rounding (XLA compiles the two programs with
different fusions, which may change a reduction's order by an ulp on some CPUs),
except ``"loss/total"`` (which adds the cost critic's loss) and
``"train/grad_norm"`` (over all parameters).

Layout: :mod:`~jaxrl.agents.ppo_lagrangian.config` (``Config``, ``State``, preset),
:mod:`~jaxrl.agents.ppo_lagrangian.networks` (cost critic, partitioned optimiser),
:mod:`~jaxrl.agents.ppo_lagrangian.losses` (the small operators
:func:`lagrangian_advantage`, :func:`episode_costs`, :func:`policy_multiplier`, the
advantages, :func:`loss`, :func:`multiplier_step` and :func:`update`),
:mod:`~jaxrl.agents.ppo_lagrangian.train` (agent API and the hooks of the on-policy
loop, :mod:`jaxrl.agents._onpolicy_loop`).

Metrics: PPO's (``"loss/*"``, ``"policy/*"``, ``"value/*"``, ``"advantage/mean"``
of :math:`A_\lambda`, ``"episode/*"``, ``"train/*"``, ``"eval/*"``) plus
``"loss/cost_value"``, ``"cost_value/mean"``, ``"cost_value/explained_variance"``,
``"cost_advantage/mean"``, ``"lagrange/lambda"`` (after the step),
``"lagrange/policy_lambda"``, ``"lagrange/violation"`` (NaN when no episode
ended, ``-inf`` with ``cost_limit = inf``), ``"episode/cost"`` (undiscounted),
``"episode/discounted_cost"``
(:math:`\hat J_c`) and ``"eval/cost"`` (greedy, end of each chunk).

Usage::

    env, env_params = jaxrl.envs.make("CartPole-Constrained-v0")
    config = ppo_lagrangian.cartpole_config("reload")
    train = jax.jit(jax.vmap(ppo_lagrangian.make_train(config, env, env_params)))
    state, metrics = train(jax.random.split(jax.random.key(0), 4))
"""

from __future__ import annotations

from jaxrl.agents.ppo_lagrangian.config import (
    COST_DISCOUNTS,
    METHODS,
    Config,
    Params,
    State,
    cartpole_config,
)
from jaxrl.agents.ppo_lagrangian.losses import (
    advantages,
    episode_costs,
    lagrangian_advantage,
    loss,
    multiplier_step,
    policy_multiplier,
    update,
)
from jaxrl.agents.ppo_lagrangian.networks import (
    ActorCostCritic,
    cost_value,
    network,
    optimizer,
)
from jaxrl.agents.ppo_lagrangian.train import (
    act,
    collect,
    init,
    make_run,
    make_train,
)

__all__ = [
    "METHODS",
    "COST_DISCOUNTS",
    "Config",
    "Params",
    "State",
    "ActorCostCritic",
    "network",
    "optimizer",
    "lagrangian_advantage",
    "episode_costs",
    "cost_value",
    "advantages",
    "policy_multiplier",
    "multiplier_step",
    "init",
    "act",
    "collect",
    "loss",
    "update",
    "make_run",
    "make_train",
    "cartpole_config",
]
