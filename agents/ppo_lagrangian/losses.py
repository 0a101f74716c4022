"""PPO-Lagrangian advantages, losses, multiplier step and update (see jaxrl.agents.ppo_lagrangian)."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from jaxrl import transition as transition_lib
from jaxrl.agents import constrained, ppo
from jaxrl.agents.ppo_lagrangian.config import _USER, Config, Params, State
from jaxrl.agents.ppo_lagrangian.networks import cost_value, optimizer
from jaxrl.envs.constrained import budget_from_params
from jaxrl.errors import ConfigError
from jaxrl.ops.policy_gradient import clipped_value_loss
from jaxrl.transition import Transition
from jaxrl.types import Array, ArrayLike, ArrayTree, Metrics

__all__ = [
    "lagrangian_advantage",
    "episode_costs",
    "policy_multiplier",
    "loss",
    "advantages",
    "multiplier_step",
    "update",
]


def lagrangian_advantage(adv_r: ArrayLike, adv_c: ArrayLike, lam: ArrayLike) -> Array:
    r"""Return the Lagrangian advantage :math:`(A_r - \lambda A_c) / (1 + \lambda)`.

    The advantage of the penalised reward :math:`r - \lambda c` (advantages are
    linear in the reward), scaled by :math:`1/(1 + \lambda)` so that the
    surrogate's magnitude stays bounded as :math:`\lambda` grows.

    Args:
      adv_r: ``[...]`` reward advantages :math:`A_r`.
      adv_c: ``[...]`` cost advantages :math:`A_c`, same shape.
      lam: ``[]`` multiplier :math:`\lambda \ge 0` (gradient stopped).

    Returns:
      ``[...]`` the combined advantage; ``lam = 0`` returns ``adv_r`` exactly.

    References:
      Ray, Achiam and Amodei, "Benchmarking safe exploration in deep
      reinforcement learning", 2019 (PPO-Lagrangian objective); Stooke, Achiam
      and Abbeel, "Responsive safety in RL by PID Lagrangian methods", ICML 2020.

    Examples:
      >>> import jax.numpy as jnp
      >>> lagrangian_advantage(jnp.array([3.0, 1.0]), jnp.array([1.0, -1.0]), 1.0)
      Array([1., 1.], dtype=float32)
    """
    adv_r, adv_c = jnp.asarray(adv_r), jnp.asarray(adv_c)
    if adv_r.shape != adv_c.shape:
        raise ConfigError(
            f"reward and cost advantages differ in shape: {adv_r.shape} vs "
            f"{adv_c.shape}"
        )
    lam = jax.lax.stop_gradient(jnp.asarray(lam, adv_r.dtype))
    return (adv_r - lam * adv_c) / (1.0 + lam)


def episode_costs(
    running: ArrayLike, cost_t: ArrayLike, end_t: ArrayLike
) -> tuple[Array, Array]:
    """Accumulate per-step costs into per-episode totals along a ``[T, E]`` rollout.

    Args:
      running: ``[E]`` cost of each environment's episode before the rollout.
      cost_t: ``[T, E]`` per-step (e.g. discounted) costs.
      end_t: ``[T, E]`` bool, ``terminated | truncated``.

    Returns:
      ``(total [T, E], running [E])``: the episode's cost up to and including
      step ``t`` (the finished episode's cost where ``end_t``) and the running
      costs after the rollout (0 for environments whose episode just ended).
    """

    def body(carry: Array, xs: tuple[Array, Array]) -> tuple[Array, Array]:
        c, end = xs
        total = carry + c
        return jnp.where(end, 0.0, total), total

    running = jnp.asarray(running, jnp.float32)
    xs = (jnp.asarray(cost_t, jnp.float32), jnp.asarray(end_t, bool))
    running, total = jax.lax.scan(body, running, xs)
    return total, running


def policy_multiplier(lam_new: ArrayLike, lam_old: ArrayLike, config: Config) -> Array:
    """Return the multiplier the policy steps on (extrapolated for ReLOAD).

    ``lam_new`` for ``"lagrangian"`` (or ``optimistic_policy=False``);
    ``clip(2 lam_new - lam_old, 0, lambda_max)`` for ``"reload"``.
    """
    lam_new = jnp.asarray(lam_new, jnp.float32)
    if config.method == "reload" and config.optimistic_policy:
        return jnp.clip(2.0 * lam_new - lam_old, 0.0, config.lambda_max)
    return lam_new


def loss(
    params: Params, target_params: Any, batch: Transition, config: Config
) -> tuple[Array, Metrics]:
    r"""Return PPO's loss on :math:`A_\lambda` plus the cost critic's value loss.

    ``ppo.loss(net, batch with advantage = lagrangian_advantage(A_r, A_c, lam))
    + cost_vf_coef * loss/cost_value``, the latter the batch mean of
    :func:`jaxrl.ops.policy_gradient.clipped_value_loss` of :math:`V_c` (radius
    ``base.vf_clip_eps``). The multiplier is a constant.

    Args:
      params: :class:`Params` (``net`` differentiated, ``lam`` stopped).
      target_params: unused (no target network).
      batch: ``Transition[B]`` with PPO's extras (``"log_prob"``, ``"value"``,
        ``"target"``) and ``"reward_advantage"``, ``"cost_advantage"``,
        ``"cost_value"``, ``"cost_target"``.
      config: the config.

    Returns:
      ``(loss, metrics)``: :func:`jaxrl.agents.ppo.loss`'s metrics (``"loss/total"``
      including the cost term) and ``"loss/cost_value"``.
    """
    del target_params
    ex = batch.extras
    adv = lagrangian_advantage(ex["reward_advantage"], ex["cost_advantage"], params.lam)
    ppo_batch = batch.replace(extras={**ex, "advantage": adv})
    ppo_loss, metrics = ppo.loss(params.net, None, ppo_batch, config.base)
    v_c = cost_value(params.net, batch.obs, config, jnp.ndim(batch.obs) - 1)
    cost_loss = jnp.mean(
        jax.vmap(clipped_value_loss, (0, 0, 0, None))(
            v_c, ex["cost_value"], ex["cost_target"], config.base.vf_clip_eps
        )
    )
    total = ppo_loss + config.cost_vf_coef * cost_loss
    return total, {**metrics, "loss/total": total, "loss/cost_value": cost_loss}


def advantages(
    rollout: Transition, lam: Array, gamma_c: Array, config: Config
) -> dict[str, Array]:
    """Return the reward and cost GAE of a rollout and their Lagrangian combination.

    Args:
      rollout: ``Transition[T, E]`` from :func:`collect`.
      lam: ``[]`` the policy's multiplier.
      gamma_c: ``[]`` the budget's discount (used with ``cost_discount="env"``;
        ``"agent"`` uses ``base.gamma``).
      config: the config (``base.gamma``, ``base.gae_lambda``).

    Returns:
      ``[T, E]`` arrays: ``"advantage"`` (:func:`lagrangian_advantage`),
      ``"target"`` (reward λ-return), ``"reward_advantage"``,
      ``"cost_advantage"`` and ``"cost_target"`` (cost λ-return).
    """
    base = config.base
    adv_r, target_r = ppo.compute_gae(rollout, base)
    ex = rollout.extras
    adv_c, target_c = ppo.compute_gae(
        rollout,
        base,
        reward=ex["cost"],
        value=ex["cost_value"],
        next_value=ex["cost_next_value"],
        gamma=base.gamma if config.cost_discount == "agent" else gamma_c,
    )
    return {
        "advantage": lagrangian_advantage(adv_r, adv_c, lam),
        "target": target_r,
        "reward_advantage": adv_r,
        "cost_advantage": adv_c,
        "cost_target": target_c,
    }


def _sgd_loss(
    net: ArrayTree,
    target_params: Any,
    batch: Transition,
    base: ppo.Config,
    *,
    lam: Array,
    config: Config,
) -> tuple[Array, Metrics]:
    del base
    return loss(Params(net=net, lam=lam), target_params, batch, config)


def _explained_variance(value: Array, target: Array) -> Array:
    var = jnp.var(target)
    return jnp.where(var > 0, 1.0 - jnp.var(target - value) / var, jnp.nan)


def multiplier_step(
    state: State, data: Transition, env_params: Any, config: Config
) -> tuple[State, Metrics]:
    """Step the multiplier on the discounted costs of the rollout's finished episodes.

    Accumulates ``extras["discounted_cost"]`` per episode (:func:`episode_costs`,
    carrying ``state.episode_cost`` across rollouts) and calls
    :func:`jaxrl.agents.constrained.multiplier_update` with the budget of
    ``env_params``; ``state.prev_lam`` becomes the multiplier before the step.

    Args:
      state: the current state.
      data: ``Transition[T, E]`` with ``extras["discounted_cost"]``.
      env_params: params carrying ``cost_limit``.
      config: the config.

    Returns:
      ``(state, metrics)`` with ``"lagrange/lambda"``, ``"lagrange/violation"``
      and ``"episode/discounted_cost"`` (NaN when no episode ended).
    """
    budget, _ = budget_from_params(env_params, _USER)
    end = transition_lib.episode_end(data)
    total, running = episode_costs(
        state.episode_cost, data.extras["discounted_cost"], end
    )
    lam, prev_violation, num_violations, violation = constrained.multiplier_update(
        state.lam,
        state.prev_violation,
        state.num_violations,
        jnp.ravel(total),
        jnp.ravel(end),
        budget,
        config,
    )
    state = state.replace(
        lam=lam,
        prev_lam=state.lam,
        prev_violation=prev_violation,
        num_violations=num_violations,
        episode_cost=running,
    )
    return state, {
        "lagrange/lambda": lam,
        "lagrange/violation": violation,
        "episode/discounted_cost": constrained.mean_episode_cost(total, end),
    }


def update(state: State, data: Transition, config: Config) -> tuple[State, Metrics]:
    """Do PPO's epochs on a rollout with the Lagrangian advantage and the cost critic.

    The policy steps on :func:`policy_multiplier` of ``(state.lam,
    state.prev_lam)``; the multiplier itself moves in :func:`multiplier_step`.
    The cost GAE uses ``base.gamma`` (``cost_discount="agent"``) or
    ``state.cost_gamma`` (``"env"``).

    Args:
      state: the current state.
      data: ``Transition[T, E]`` from :func:`collect`.
      config: the config.

    Returns:
      ``(state, metrics)``: :func:`jaxrl.agents.ppo.learn`'s metrics plus
      ``"loss/cost_value"``, ``"cost_value/mean"``,
      ``"cost_value/explained_variance"``, ``"cost_advantage/mean"`` and
      ``"lagrange/policy_lambda"``.
    """
    lam = policy_multiplier(state.lam, state.prev_lam, config)
    new = advantages(data, lam, state.cost_gamma, config)
    base, metrics = ppo.learn(
        state.base,
        data,
        config.base,
        advantage_fn=lambda tr, base: new,
        loss_fn=functools.partial(_sgd_loss, lam=lam, config=config),
        opt=optimizer(config),
    )
    ex = data.extras
    metrics = {
        **metrics,
        "cost_value/mean": jnp.mean(ex["cost_value"]),
        "cost_value/explained_variance": _explained_variance(
            ex["cost_value"], new["cost_target"]
        ),
        "cost_advantage/mean": jnp.mean(new["cost_advantage"]),
        "lagrange/policy_lambda": lam,
    }
    return state.replace(base=base), metrics
