r"""Proximal Policy Optimization (PPO) for discrete-action gymnax environments.

One *iteration* rolls the current policy for ``num_steps`` steps in
``num_envs`` environments (:func:`collect`, a time-major
``Transition[T, E]``), computes GAE(λ) advantages and λ-return value targets
(:func:`compute_gae`, built on :func:`jaxrl.ops.gae.gae_returns`), then does
``update_epochs`` passes over the ``T * E`` transitions in ``num_minibatches``
shuffled minibatches (:func:`sgd`), each an Adam step on

.. math::
   L(\theta) = \mathbb{E}\big[-\min(\rho A, \mathrm{clip}(\rho, 1 \pm \epsilon) A)\big]
   + c_v\,\mathbb{E}\big[\tfrac12 (V_\theta(s) - G^\lambda)^2\big]
   - c_e\,\mathbb{E}\big[\mathcal{H}(\pi_\theta(\cdot|s))\big],

with :math:`\rho = \pi_\theta(a|s)/\pi_{old}(a|s)`
(:func:`jaxrl.ops.policy_gradient.clipped_surrogate_loss`, ``clip_eps`` = ε,
``vf_coef`` = :math:`c_v`, ``ent_coef`` = :math:`c_e`; the value error is
clipped PPO2-style when ``vf_clip_eps`` is finite). The actor and the critic
are separate networks (:class:`ActorCritic`).

Episode boundaries: each transition keeps ``terminated`` and ``truncated``
apart and its own *pre-reset* ``next_obs`` (``info["final_observation"]``), and
the critic is evaluated on it (``extras["next_value"]``). GAE uses
``discount_t = gamma * (1 - terminated)`` and stops at every episode end, so a
time limit bootstraps from the value of the observation it cut off, a true
termination bootstraps nothing, and no advantage leaks from one episode into
the next. (The usual ``done``-only implementation treats CartPole's 500-step
time limit as a failure and bootstraps the new episode's first value instead.)

Building blocks for derived agents (e.g. PPO-Lagrangian / ReLOAD, which nest
this :class:`Config` and :class:`State`):

* :func:`collect` accepts ``extras_keys`` (e.g. ``("cost",)``) copied from the
  environment ``info`` into ``Transition.extras``;
* :func:`compute_gae` takes any reward / value / next-value arrays (a cost
  critic's GAE is the same call with ``reward=extras["cost"]``);
* :func:`learn` takes a ``reward_fn(rollout) -> [T, E]`` (e.g. the shaped
  reward ``r - λ c``), or an ``advantage_fn(rollout, config) -> extras`` that
  replaces GAE altogether, and a ``loss_fn`` with :func:`loss`'s signature;
* :func:`init_state` is :func:`init` with another network (e.g. the actor-critic
  plus a cost critic) or optimiser, splitting the key identically;
* :func:`sgd` runs the epochs/minibatches on any parameter pytree with any
  such loss; :func:`evaluate` and :func:`episode_metrics` give the standard
  metrics.

A *chunk* is ``iters_per_chunk`` iterations followed by a greedy evaluation of
``num_eval_episodes`` episodes; a run is ``num_chunks`` chunks, i.e.
``total_env_steps = num_chunks * iters_per_chunk * num_steps * num_envs``.

Metrics (per iteration, stacked by ``scan`` to ``[iters]``):

* ``"loss/total"``, ``"loss/policy"``, ``"loss/value"``, ``"policy/entropy"``,
  ``"policy/approx_kl"``, ``"policy/clip_fraction"``, ``"train/grad_norm"``:
  means over the iteration's ``update_epochs * num_minibatches`` gradient steps.
* ``"value/mean"``, ``"value/explained_variance"``, ``"advantage/mean"``: of
  the rollout's values, targets and (unnormalised) advantages.
* ``"train/lr"``, ``"train/env_steps"``, ``"train/num_updates"``.
* ``"episode/return"``, ``"episode/length"``: mean over the episodes that
  ended during the iteration's rollout (``NaN`` if none did);
  ``"episode/count"`` is their number.
* ``"eval/return"``, ``"eval/length"``: greedy evaluation, only on the last
  iteration of each chunk (``NaN`` elsewhere).

Usage::

    env, env_params = jaxrl.envs.make("CartPole-v1")
    config = ppo.cartpole_config()
    train = jax.jit(jax.vmap(ppo.make_train(config, env, env_params)))
    state, metrics = train(jax.random.split(jax.random.key(0), 4))

References:
  Schulman et al., "Proximal policy optimization algorithms",
  arXiv:1707.06347, 2017. Schulman et al., "High-dimensional continuous
  control using generalized advantage estimation", ICLR 2016. Huang et al.,
  "The 37 implementation details of PPO", ICLR blog track 2022 (orthogonal
  initialisation, advantage normalisation, learning-rate annealing).
"""

from jaxrl.agents.ppo.config import Config, State, cartpole_config, minatar_config
from jaxrl.agents.ppo.losses import LossFn, compute_gae, learn, loss, sgd, update
from jaxrl.agents.ppo.networks import ActorCritic, network, optimizer, policy_and_value
from jaxrl.agents.ppo.train import (
    act,
    collect,
    episode_metrics,
    evaluate,
    init,
    init_state,
    make_run,
    make_train,
)

__all__ = [
    "Config",
    "State",
    "ActorCritic",
    "LossFn",
    "network",
    "policy_and_value",
    "optimizer",
    "init",
    "init_state",
    "act",
    "collect",
    "compute_gae",
    "loss",
    "sgd",
    "learn",
    "update",
    "episode_metrics",
    "evaluate",
    "make_run",
    "make_train",
    "cartpole_config",
    "minatar_config",
]
