"""SAC loss and gradient update (see :mod:`jaxrl.agents.sac`)."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxrl import transition as transition_lib
from jaxrl.agents.sac.config import Config, OptState, Params, State
from jaxrl.agents.sac.networks import _critic, _dist, _optimizers
from jaxrl.ops import sac as sac_ops
from jaxrl.transition import Transition
from jaxrl.types import Array, Metrics, PRNGKey

__all__ = ["loss", "loss_terms", "LossTerms", "update", "apply_gradients"]


def loss(
    params: Params,
    target_params: Any,
    batch: Transition,
    config: Config,
    *,
    key: PRNGKey,
) -> tuple[Array, Metrics]:
    """Return the critic + actor + temperature loss of a batch.

    Stop-gradients separate the three terms: each moves only its own parameters.

    * critic: ``0.5 * mean_b sum_k (Q_k(s, y) - target)²`` with the
      :func:`jaxrl.ops.sac.soft_q_target` of the target critics at a fresh
      policy action for ``next_obs`` (no gradient through the target);
    * actor: ``mean_b soft_policy_loss`` at reparameterised samples (critics
      and α held fixed);
    * temperature: ``mean_b temperature_loss`` (0 when ``learn_alpha=False``).

    Args:
      params: :class:`Params` (differentiated).
      target_params: target critic parameters.
      batch: ``Transition[B]`` with float32 env actions ``[B, d]``.
      config: the config.
      key: PRNG key for the two policy samples (keyword-only; SAC's losses are
        stochastic).

    Returns:
      ``(loss, metrics)``: ``"loss/critic"``, ``"loss/actor"``,
      ``"loss/alpha"``, ``"q/mean"``, ``"policy/entropy"``, ``"train/alpha"``.
    """
    terms = loss_terms(params, target_params, batch, config, key=key)
    return terms.critic + terms.actor + terms.alpha, terms.metrics


@struct.dataclass
class LossTerms:
    """The parts of :func:`loss`, for agents that extend SAC's objective.

    Attributes:
      critic: ``[]`` critic loss.
      actor: ``[]`` actor loss.
      alpha: ``[]`` temperature loss.
      metrics: :func:`loss`'s metrics.
      y_next: ``[B, d]`` normalised policy actions at ``batch.next_obs`` (the
        critic target's, no gradient).
      y_pi: ``[B, d]`` reparameterised normalised policy actions at
        ``batch.obs`` (the actor's; gradients reach the actor through them).
    """

    critic: Array
    actor: Array
    alpha: Array
    metrics: Metrics
    y_next: Array
    y_pi: Array


def loss_terms(
    params: Params,
    target_params: Any,
    batch: Transition,
    config: Config,
    *,
    key: PRNGKey,
) -> LossTerms:
    """Return the terms of :func:`loss` and the policy actions they used.

    See :func:`loss` (same arguments and the same computation).
    """
    obs_ndim = jnp.ndim(batch.obs) - 1
    b = batch.reward.shape[0]
    k_next, k_pi = jax.random.split(key)
    critic = _critic(config, obs_ndim)
    low = jax.lax.stop_gradient(params.action_low)  # constants, never trained
    high = jax.lax.stop_gradient(params.action_high)
    alpha = jnp.exp(jax.lax.stop_gradient(params.log_alpha))
    sample = jax.vmap(sac_ops.sample_tanh_gaussian)

    # CRITIC
    frozen = jax.lax.stop_gradient(params)
    mean_t, log_std_t = _dist(frozen, batch.next_obs, config, obs_ndim)
    y_t, log_pi_t = sample(jax.random.split(k_next, b), mean_t, log_std_t)
    q_t = critic.apply(target_params, batch.next_obs, y_t)  # [B, K]
    discount_t = transition_lib.discount(batch, config.gamma)
    target = jax.vmap(sac_ops.soft_q_target, in_axes=(0, 0, 0, 0, None))(
        batch.reward, discount_t, q_t, log_pi_t, alpha
    )
    target = jax.lax.stop_gradient(target)
    y_tm1 = jax.vmap(sac_ops.unscale_action)(
        batch.action, jnp.broadcast_to(low, batch.action.shape),
        jnp.broadcast_to(high, batch.action.shape),
    )  # fmt: skip
    q_tm1 = critic.apply(params.critic, batch.obs, y_tm1)  # [B, K]
    critic_loss = 0.5 * jnp.mean(jnp.sum((q_tm1 - target[:, None]) ** 2, axis=-1))

    # ACTOR (critics and alpha fixed)
    mean, log_std = _dist(params, batch.obs, config, obs_ndim)
    y_pi, log_pi = sample(jax.random.split(k_pi, b), mean, log_std)
    q_pi = critic.apply(frozen.critic, batch.obs, y_pi)
    actor_loss = jnp.mean(
        jax.vmap(sac_ops.soft_policy_loss, in_axes=(0, 0, None))(q_pi, log_pi, alpha)
    )

    # TEMPERATURE
    entropy_target = config.target_entropy_per_dim * low.shape[-1]
    if config.learn_alpha:
        alpha_loss = jnp.mean(
            jax.vmap(sac_ops.temperature_loss, in_axes=(None, 0, None))(
                params.log_alpha, log_pi, entropy_target
            )
        )
    else:
        alpha_loss = jnp.zeros((), jnp.float32)
    metrics = {
        "loss/critic": critic_loss,
        "loss/actor": actor_loss,
        "loss/alpha": alpha_loss,
        "q/mean": jnp.mean(q_tm1),
        "policy/entropy": -jnp.mean(log_pi),
        "train/alpha": alpha,
    }
    return LossTerms(
        critic=critic_loss,
        actor=actor_loss,
        alpha=alpha_loss,
        metrics=metrics,
        y_next=y_t,
        y_pi=y_pi,
    )


def update(state: State, data: Transition, config: Config) -> tuple[State, Metrics]:
    """Do one gradient step of actor, critics and temperature, then Polyak the targets.

    Args:
      state: the current state (its key is split for the loss's samples).
      data: ``Transition[B]`` sampled batch.
      config: the config.

    Returns:
      ``(state, metrics)``: :func:`loss`'s metrics plus ``"train/grad_norm"``;
      ``state.num_updates`` is incremented.
    """
    key, k_loss = jax.random.split(state.key)
    grad_fn = jax.value_and_grad(functools.partial(loss, key=k_loss), has_aux=True)
    (_, metrics), grads = grad_fn(state.params, state.target_params, data, config)
    params, opt_state = apply_gradients(state.params, state.opt_state, grads, config)
    target = sac_ops.polyak_update(state.target_params, params.critic, config.tau)
    norm = optax.tree.norm((grads.actor, grads.critic, grads.log_alpha))
    new_state = state.replace(
        params=params,
        target_params=target,
        opt_state=opt_state,
        key=key,
        num_updates=state.num_updates + 1,
    )
    return new_state, {**metrics, "train/grad_norm": norm}


def apply_gradients(
    params: Params, opt_state: OptState, grads: Params, config: Config
) -> tuple[Params, OptState]:
    """Take one Adam step on the actor, the critics and (if learned) the temperature.

    Other fields of ``params``/``opt_state`` (e.g. an extending agent's) are
    kept unchanged (``replace``).

    Args:
      params: :class:`Params` (or a subclass).
      opt_state: :class:`OptState` (or a subclass).
      grads: gradients shaped like ``params``.
      config: the config (``learn_alpha`` and the step sizes).

    Returns:
      ``(params, opt_state)`` after the step.
    """
    net_opt, temp_opt = _optimizers(config)
    p, o = params, opt_state
    step = lambda opt, g, s, x: opt.update(g, s, x)
    u_actor, s_actor = step(net_opt, grads.actor, o.actor, p.actor)
    u_critic, s_critic = step(net_opt, grads.critic, o.critic, p.critic)
    add = lambda x, u: jax.tree.map(lambda a, b: a + b, x, u)
    log_alpha, s_alpha = p.log_alpha, o.alpha
    if config.learn_alpha:
        u_alpha, s_alpha = step(temp_opt, grads.log_alpha, o.alpha, p.log_alpha)
        log_alpha = p.log_alpha + u_alpha
    params = p.replace(
        actor=add(p.actor, u_actor), critic=add(p.critic, u_critic), log_alpha=log_alpha
    )
    return params, o.replace(actor=s_actor, critic=s_critic, alpha=s_alpha)
