"""Losses and the gradient step of the deep offline dual-RL agents."""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxrl import transition as transition_lib
from jaxrl.agents.dual_rl.config import Batch, Config, State
from jaxrl.agents.dual_rl.networks import (
    Networks,
    _scale_action,
    critic_values,
    policy_log_prob,
    state_values,
)
from jaxrl.errors import ConfigError
from jaxrl.ops import dual
from jaxrl.ops.losses import huber_loss
from jaxrl.optim import learning_rate_at, make_optimizer
from jaxrl.transition import Transition
from jaxrl.types import Array, ArrayTree, Metrics

# --------------------------------------------------------------------- agent


def _optimizers(config: Config) -> dict[str, Any]:
    common = {
        "max_grad_norm": config.max_grad_norm,
        "eps": config.adam_eps,
        "decay_steps": config.num_iters,
    }
    critic = functools.partial(
        make_optimizer, config.lr, end_fraction=config.lr_end_fraction, **common
    )
    return {
        "critic": critic(),
        "value": critic(),
        "policy": make_optimizer(
            config.actor_lr, end_fraction=config.actor_lr_end_fraction, **common
        ),
    }


def value_objective(x: Array, config: Config) -> Array:
    """Return the method's batch value loss of residuals ``x = Q - V``, ``[]``.

    The mean of :func:`jaxrl.ops.dual.value_loss` (``"iql"``; for ``"fdvl"``
    chi-square and total variation at temperature ``alpha``:
    ``alpha * mean(loss(x / alpha))``), or
    for the Gumbel loss the form chosen by ``gumbel_stabilizer``: the mean of
    :func:`~jaxrl.ops.dual.gumbel_loss` unclipped (``"none"``) or clipped at
    ``max_clip`` (``"clip"``), :func:`~jaxrl.ops.dual.gumbel_rescale_loss`
    (``"rescale"``) or :func:`~jaxrl.ops.dual.gumbel_log_loss` (``"log"``).

    Args:
      x: ``[B]`` residuals.
      config: the config (method, stabiliser, parameters).

    Returns:
      ``[]`` the loss.
    """
    name, param = config.value_loss_name, config.value_param
    if name in ("chi_square", "total_variation"):
        alpha = jnp.asarray(config.alpha, jnp.float32)
        return alpha * jnp.mean(dual.value_loss(x / alpha, param, name))
    if name != "gumbel":
        return jnp.mean(dual.value_loss(x, param, name))
    kind = config.gumbel_stabilizer
    if kind == "rescale":
        return dual.gumbel_rescale_loss(x, param, config.max_clip)
    if kind == "log":
        return dual.gumbel_log_loss(x, param, config.max_clip)
    clip = config.max_clip if kind == "clip" else math.inf
    return jnp.mean(dual.gumbel_loss(x, param, clip))


def _as_batch(batch: Batch | Transition) -> Batch:
    return batch if isinstance(batch, Batch) else Batch(data=batch)


def loss(
    params: Networks,
    target_params: ArrayTree,
    batch: Batch | Transition,
    config: Config,
) -> tuple[Array, Metrics]:
    r"""Return :math:`L_Q + L_V + L_\pi` of one batch and its metrics.

    See the module docstring for the three terms per method. ``V`` is fitted
    to the target critics' minimum at the data actions, the critics to
    ``r + gamma (1 - terminated) V(s')`` with the *online* V (no gradient;
    truncation bootstraps, termination does not), the policy by AWR with the
    advantage ``min_k Qbar_k - V``.

    Args:
      params: the networks (differentiated).
      target_params: the target critics (no gradient).
      batch: a :class:`Batch`, or a ``Transition[B]`` (no expert part).
      config: the config.

    Returns:
      ``(loss, metrics)``.
    """
    batch = _as_batch(batch)
    data = batch.data
    discrete = params.discrete
    recoil = config.method == "recoil"
    if recoil and batch.expert is None:
        raise ConfigError("method='recoil' needs Batch(data=..., expert=...)")
    action = _scale_action(params, data.action)
    log_prob = policy_log_prob(params, data.obs, action, config)
    zero = jnp.zeros((), jnp.float32)
    if config.method == "bc":
        policy_loss = -jnp.mean(log_prob)
        return policy_loss, {
            "loss/total": policy_loss,
            "loss/critic": zero,
            "loss/value": zero,
            "loss/policy": policy_loss,
            "q/mean": zero,
            "v/mean": zero,
            "adv/mean": zero,
            "awr/weight_mean": jnp.ones((), jnp.float32),
            "train/diverged": (~jnp.isfinite(policy_loss)).astype(jnp.float32),
        }
    # VALUE: V(s) against the target critics' minimum at the data actions.
    q_bar = jax.lax.stop_gradient(
        critic_values(target_params, data.obs, action, config, discrete)
    )
    q_min = jnp.min(q_bar, axis=0)  # [B]
    size = q_min.shape[0]
    both = jnp.concatenate([data.obs, data.next_obs])  # one forward pass
    v, v_next = jnp.split(state_values(params.value, both, config), [size])
    value_loss = value_objective(q_min - v, config)
    # CRITIC: regression to r + gamma (1 - terminated) V(s') (ReCOIL: bounded).
    v_next = jax.lax.stop_gradient(v_next)
    if recoil:
        target = jax.vmap(
            functools.partial(
                dual.recoil_td_target,
                gamma=config.gamma,
                reward_gap=config.reward_gap,
                q_gap=config.q_gap,
            )
        )(v_next, data.terminated)
        expert = batch.expert
        both_obs = jnp.concatenate([data.obs, expert.obs])
        both_act = jnp.concatenate([action, _scale_action(params, expert.action)])
        q_both = critic_values(params.critic, both_obs, both_act, config, discrete)
        q, q_expert = jnp.split(q_both, [size], axis=1)  # [K, B] each
        pair_loss = jax.vmap(
            jax.vmap(functools.partial(dual.recoil_critic_loss, q_gap=config.q_gap))
        )
        pairs = pair_loss(q, jnp.broadcast_to(target, q.shape), q_expert)
        critic_loss = jnp.sum(jnp.mean(pairs, axis=-1))
    else:
        q = critic_values(params.critic, data.obs, action, config, discrete)  # [K, B]
        reward = config.reward_scale * data.reward + config.reward_shift
        target = reward + transition_lib.discount(data, config.gamma) * v_next
        td = q - target[None]
        critic_loss = jnp.sum(jnp.mean(huber_loss(td, config.huber_delta), axis=-1))
    # POLICY: advantage-weighted regression on the data actions.
    adv = q_min - jax.lax.stop_gradient(v)
    policy_loss = jnp.mean(
        dual.awr_loss(log_prob, adv, config.awr_beta, config.max_weight)
    )
    weights = dual.awr_weights(adv, config.awr_beta, config.max_weight)
    total = critic_loss + value_loss + policy_loss
    big = jnp.maximum(jnp.max(jnp.abs(v)), jnp.max(jnp.abs(q_bar)))
    diverged = ~jnp.isfinite(total) | ~(big <= config.diverge_threshold)
    return total, {
        "loss/total": total,
        "loss/critic": critic_loss,
        "loss/value": value_loss,
        "loss/policy": policy_loss,
        "q/mean": jnp.mean(q_min),
        "v/mean": jnp.mean(v),
        "adv/mean": jnp.mean(adv),
        "awr/weight_mean": jnp.mean(weights),
        "train/diverged": diverged.astype(jnp.float32),
    }


def update(
    state: State, data: Batch | Transition, config: Config
) -> tuple[State, Metrics]:
    """Do one gradient step on a batch, then move the target critics.

    Each network has its own Adam (the policy's step size decays over the
    run); the targets become ``polyak * critic + (1 - polyak) * target``.

    Args:
      state: the state.
      data: a :class:`Batch` (ReCOIL) or a ``Transition[B]``.
      config: the config.

    Returns:
      ``(state, metrics)``: :func:`loss`'s metrics plus ``"train/grad_norm"``
      and ``"train/actor_lr"``.
    """
    grad_fn = jax.grad(loss, has_aux=True)
    grads, metrics = grad_fn(state.params, state.target_params, data, config)
    opts = _optimizers(config)
    params = state.params
    new, opt_state = {}, {}
    for name, opt in opts.items():
        current = getattr(params, name)
        updates, opt_state[name] = opt.update(
            getattr(grads, name), state.opt_state[name], current
        )
        new[name] = jax.tree.map(lambda p, u: p + u, current, updates)
    params = params.replace(**new)
    polyak = jnp.asarray(config.polyak, jnp.float32)
    target = jax.tree.map(
        lambda t, p: polyak * p + (1.0 - polyak) * t, state.target_params, params.critic
    )
    metrics = {
        **metrics,
        "train/grad_norm": optax.tree.norm([grads.critic, grads.value, grads.policy]),
        "train/actor_lr": learning_rate_at(
            state.step,
            config.actor_lr,
            decay_steps=config.num_iters,
            end_fraction=config.actor_lr_end_fraction,
        ),
    }
    new_state = state.replace(
        params=params, target_params=target, opt_state=opt_state, step=state.step + 1
    )
    return new_state, metrics
