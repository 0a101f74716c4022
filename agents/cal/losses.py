"""CAL loss and gradient update (see :mod:`jaxrl.agents.cal`)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import optax

from jaxrl import transition as transition_lib
from jaxrl.agents.cal.config import Config, Params, State, Targets
from jaxrl.agents.sac import losses as sac_losses
from jaxrl.agents.sac.networks import Critic, _optimizers
from jaxrl.ops import cal as cal_ops
from jaxrl.ops import lagrangian
from jaxrl.ops import sac as sac_ops
from jaxrl.transition import Transition
from jaxrl.types import Array, Metrics, PRNGKey

__all__ = ["loss", "update"]


def _cost_critic(config: Config, obs_ndim: int) -> Critic:
    base = config.base
    return Critic(
        config.num_cost_critics, tuple(base.hidden_sizes), base.activation, obs_ndim
    )


def loss(
    params: Params,
    target_params: Targets,
    batch: Transition,
    config: Config,
    *,
    key: PRNGKey,
) -> tuple[Array, Metrics]:
    r"""Return SAC's loss plus the cost critics' loss and the actor's penalty.

    * SAC's critic, actor and temperature terms
      (:func:`jaxrl.agents.sac.losses.loss_terms`, same key use);
    * cost critics: ``0.5 * mean_b sum_i (Q_c^i(s, y) - y_i)²`` with each
      member's own target ``y_i = c_t + gamma_t Qbar_c^i(s', a')`` at SAC's
      next-state policy action ``a'`` (:func:`jaxrl.ops.sac.soft_q_target` with
      no entropy term; no gradient through the target);
    * actor penalty :math:`P_c(\hat J_c - \xi, \lambda)`
      (:func:`jaxrl.ops.cal.augmented_lagrangian_penalty`) of the batch mean
      :math:`\hat J_c` of :math:`Q_c^{UCB}(s, a)`
      (:func:`jaxrl.ops.cal.ensemble_ucb`) at SAC's reparameterised actor
      samples, the cost critics and :math:`\lambda` held fixed: its gradient is
      :math:`\max\{0, \lambda + c(\hat J_c - \xi)\}\,\nabla \hat J_c`.

    Args:
      params: :class:`~jaxrl.agents.cal.Params` (differentiated; ``lam`` and
        ``budget`` get no gradient).
      target_params: :class:`~jaxrl.agents.cal.Targets`.
      batch: ``Transition[B]`` with ``extras["cost"]`` ``[B]``.
      config: the config.
      key: PRNG key of SAC's two policy samples (keyword-only).

    Returns:
      ``(loss, metrics)``: SAC's metrics plus ``"loss/cost_critic"``,
      ``"cost/q_mean"`` (cost critics at the batch), ``"cost/q_ucb"``
      (:math:`\hat J_c`), ``"cost/q_std"`` (mean ensemble standard deviation at
      the actor's samples), ``"lagrange/violation"`` (:math:`\hat J_c - \xi`),
      ``"lagrange/penalty"``, ``"lagrange/rectified"`` (the multiplier on
      :math:`\nabla \hat J_c`) and ``"lagrange/budget"`` (:math:`\xi`).
    """
    base = config.base
    terms = sac_losses.loss_terms(
        params, target_params.critic, batch, base, key=key
    )  # fmt: skip
    obs_ndim = jnp.ndim(batch.obs) - 1
    cost_critic = _cost_critic(config, obs_ndim)
    low = jax.lax.stop_gradient(params.action_low)
    high = jax.lax.stop_gradient(params.action_high)

    # COST CRITICS
    y_next = jax.lax.stop_gradient(terms.y_next)
    qc_t = cost_critic.apply(target_params.cost_critic, batch.next_obs, y_next)
    discount_t = transition_lib.discount(batch, base.gamma)
    member_target = jax.vmap(sac_ops.soft_q_target, in_axes=(None, None, 0, None, None))
    target = jax.vmap(member_target, in_axes=(0, 0, 0, None, None))(
        batch.extras["cost"], discount_t, qc_t[..., None], 0.0, 0.0
    )  # [B, E]
    target = jax.lax.stop_gradient(target)
    y_tm1 = jax.vmap(sac_ops.unscale_action)(
        batch.action, jnp.broadcast_to(low, batch.action.shape),
        jnp.broadcast_to(high, batch.action.shape),
    )  # fmt: skip
    qc_tm1 = cost_critic.apply(params.cost_critic, batch.obs, y_tm1)  # [B, E]
    cost_critic_loss = 0.5 * jnp.mean(jnp.sum((qc_tm1 - target) ** 2, axis=-1))

    # ACTOR PENALTY (cost critics and multiplier fixed)
    frozen = jax.lax.stop_gradient(params.cost_critic)
    qc_pi = cost_critic.apply(frozen, batch.obs, terms.y_pi)  # [B, E]
    ucb = jax.vmap(cal_ops.ensemble_ucb, in_axes=(0, None))(qc_pi, config.k)
    j_c = jnp.mean(ucb)
    lam = jax.lax.stop_gradient(params.lam)
    violation = j_c - jax.lax.stop_gradient(params.budget)
    penalty = cal_ops.augmented_lagrangian_penalty(violation, lam, config.c)
    std = jnp.std(qc_pi, axis=-1)

    total = terms.critic + terms.actor + terms.alpha + cost_critic_loss + penalty
    return total, {
        **terms.metrics,
        "loss/cost_critic": cost_critic_loss,
        "cost/q_mean": jnp.mean(qc_tm1),
        "cost/q_ucb": j_c,
        "cost/q_std": jnp.mean(std),
        "lagrange/violation": violation,
        "lagrange/penalty": penalty,
        "lagrange/rectified": cal_ops.rectified_multiplier(violation, lam, config.c),
        "lagrange/budget": params.budget,
    }


def update(state: State, data: Transition, config: Config) -> tuple[State, Metrics]:
    """Do one gradient step of SAC's parts and the cost critics, then the multiplier.

    SAC's Adam steps (:func:`jaxrl.agents.sac.losses.apply_gradients`), one
    Adam step on the cost critics (SAC's ``lr``), Polyak averaging of both
    target sets (rate ``tau``), and the projected multiplier step
    :math:`\\lambda \\leftarrow \\mathrm{clip}(\\lambda + \\eta_\\lambda
    (\\hat J_c - \\xi), 0, \\lambda_{max})`
    (:func:`jaxrl.ops.lagrangian.projected_multiplier_update`) with the
    violation of this batch, measured before the step.

    Returns:
      ``(state, metrics)``: :func:`loss`'s metrics plus ``"train/grad_norm"``
      (SAC's parts), ``"train/cost_grad_norm"`` and ``"lagrange/lambda"`` (after
      the step).
    """
    key, k_loss = jax.random.split(state.key)
    grad_fn = jax.value_and_grad(functools.partial(loss, key=k_loss), has_aux=True)
    (_, metrics), grads = grad_fn(state.params, state.target_params, data, config)
    base = config.base
    params, opt_state = sac_losses.apply_gradients(
        state.params, state.opt_state, grads, base
    )
    net_opt, _ = _optimizers(base)
    u_cost, s_cost = net_opt.update(
        grads.cost_critic, opt_state.cost_critic, params.cost_critic
    )
    cost_critic = jax.tree.map(lambda a, b: a + b, params.cost_critic, u_cost)
    lam = lagrangian.projected_multiplier_update(
        params.lam, metrics["lagrange/violation"], config.eta_lambda, config.lambda_max
    )
    params = params.replace(cost_critic=cost_critic, lam=lam)
    targets = Targets(
        critic=sac_ops.polyak_update(
            state.target_params.critic, params.critic, base.tau
        ),
        cost_critic=sac_ops.polyak_update(
            state.target_params.cost_critic, cost_critic, base.tau
        ),
    )
    new_state = state.replace(
        params=params,
        target_params=targets,
        opt_state=opt_state.replace(cost_critic=s_cost),
        key=key,
        num_updates=state.num_updates + 1,
    )
    return new_state, {
        **metrics,
        "train/grad_norm": optax.tree.norm(
            (grads.actor, grads.critic, grads.log_alpha)
        ),
        "train/cost_grad_norm": optax.tree.norm(grads.cost_critic),
        "lagrange/lambda": lam,
    }
