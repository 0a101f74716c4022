"""Soft Actor-Critic (SAC): off-policy maximum-entropy RL for continuous (Box) actions.

The actor is a tanh-squashed diagonal Gaussian: an MLP gives a mean and a
(clipped) log-std per action dimension, ``y = tanh(u)``, ``u ~ N(mean, std²)``,
and ``y`` in ``(-1, 1)^d`` is mapped affinely onto the env's box ``[low, high]``
(:func:`jaxrl.ops.sac.scale_action`). Twin critics ``Q_1, Q_2`` (``num_critics``)
see the observation and the *normalised* action ``y``; their targets use
Polyak-averaged copies (rate ``tau``) and the clipped double-Q soft target
:func:`jaxrl.ops.sac.soft_q_target`. The temperature α is learned by
:func:`jaxrl.ops.sac.temperature_loss` towards the entropy target
``target_entropy_per_dim * d`` (SAC's ``-|A|`` with the default ``-1``) unless
``learn_alpha=False``. All three parts take one gradient step together on one
batch (:func:`update`): :func:`loss` is the sum of the critic, actor and
temperature losses, each with stop-gradients so that it moves only its own
parameters (the actor sees the critics of the same step, not updated ones).

One *iteration* steps ``num_envs`` environments once, with uniform random
actions until ``learning_starts`` environment steps have been taken and with
policy samples afterwards, stores the transitions in the shared replay buffer
(:mod:`jaxrl.buffer`) and then does ``updates_per_iter`` gradient steps (none
before ``learning_starts``). A *chunk* is ``iters_per_chunk`` iterations and a
greedy evaluation (``act(..., greedy=True)``: ``tanh(mean)``) of
``num_eval_episodes`` episodes; a run is ``num_chunks`` chunks
(:attr:`Config.total_env_steps` training steps).

Episode boundaries: ``discount_t = gamma * (1 - terminated)`` with the
pre-reset ``next_obs`` of each :class:`~jaxrl.transition.Transition`, so time
limits (Pendulum's 200 steps) bootstrap and true ends do not.

Metrics (per iteration; learning metrics ``NaN`` before ``learning_starts``):
``"loss/critic"``, ``"loss/actor"``, ``"loss/alpha"``, ``"q/mean"``,
``"policy/entropy"`` (``-log pi`` of fresh samples, normalised space),
``"train/alpha"``, ``"train/grad_norm"``, ``"train/env_steps"``,
``"train/num_updates"``, ``"episode/return"``, ``"episode/length"``,
``"episode/count"`` and, on each chunk's last iteration, ``"eval/return"``,
``"eval/length"``.

Usage::

    env, env_params = jaxrl.envs.make("Pendulum-v1")
    config = sac.pendulum_config()
    train = jax.jit(jax.vmap(sac.make_train(config, env, env_params)))
    state, metrics = train(jax.random.split(jax.random.key(0), 4))

References:
  Haarnoja et al., "Soft Actor-Critic: Off-Policy Maximum Entropy Deep RL
  with a Stochastic Actor", ICML 2018; Haarnoja et al., "Soft Actor-Critic
  Algorithms and Applications", arXiv:1812.05905, 2018 (learned temperature).
"""

from jaxrl.agents.sac.config import (
    Config,
    OptState,
    Params,
    State,
    mountaincar_config,
    pendulum_config,
)
from jaxrl.agents.sac.losses import loss, update
from jaxrl.agents.sac.networks import Actor, Critic
from jaxrl.agents.sac.train import act, init, make_run, make_train

__all__ = [
    "Config",
    "Params",
    "OptState",
    "State",
    "Actor",
    "Critic",
    "init",
    "act",
    "loss",
    "update",
    "make_train",
    "make_run",
    "pendulum_config",
    "mountaincar_config",
]
