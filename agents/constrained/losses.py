r"""Losses of :mod:`jaxrl.agents.constrained`: learning the Lagrangian critics.

The equations of the ``"penalised"`` and ``"separate"`` critics are in the
package docstring (:mod:`jaxrl.agents.constrained`, :data:`~jaxrl.agents.constrained.CRITICS`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxrl import transition as transition_lib
from jaxrl.agents import _value_loop, mvi
from jaxrl.agents.constrained.config import Config, Params, State
from jaxrl.agents.constrained.networks import _critics
from jaxrl.ops import lagrangian
from jaxrl.ops.bellman import expected_sarsa
from jaxrl.ops.losses import huber_loss
from jaxrl.ops.regularized import munchausen_bonus, scaled_log_softmax, softmax_policy
from jaxrl.transition import Transition
from jaxrl.types import Array, ArrayLike, ArrayTree, Metrics

__all__ = ["loss", "update", "penalised_batch"]


def _check_extras(batch: Transition) -> Array:
    if "cost" not in batch.extras:
        raise KeyError(
            "constrained agents need Transition.extras['cost'] (collect with "
            "jaxrl.rollout.step(..., extras_keys=('cost',)) on a cost-emitting "
            "environment such as jaxrl.envs.constrained.CostWrapper)"
        )
    return batch.extras["cost"]


def penalised_batch(batch: Transition, lam: ArrayLike) -> Transition:
    """Return ``batch`` with rewards ``r - lam * extras["cost"]`` (``lam`` stopped).

    Args:
      batch: ``Transition[B]`` with ``extras["cost"]`` ``[B]``.
      lam: ``[]`` multiplier.

    Returns:
      The same batch with the penalised reward.

    Raises:
      KeyError: if the batch carries no cost.
    """
    cost = _check_extras(batch)
    lam = jax.lax.stop_gradient(jnp.asarray(lam, batch.reward.dtype))
    return batch.replace(reward=lagrangian.lagrangian_reward(batch.reward, cost, lam))


def _separate_td(
    q_r_tm1: Array,
    q_c_tm1: Array,
    a_tm1: Array,
    r_t: Array,
    c_t: Array,
    discount_t: Array,
    q_lam_tm1_target: Array,
    q_r_t_target: Array,
    q_c_t_target: Array,
    q_lam_t_target: Array,
    config: mvi.Config,
) -> tuple[Array, Array, Array]:
    """TD errors ``(td_r, td_c)`` of ONE transition and the Munchausen bonus.

    ``pi_bar = softmax(q_lam_target / tau)``; see the package docstring.
    """
    tau = config.tau
    bonus = munchausen_bonus(q_lam_tm1_target, a_tm1, tau, config.alpha, config.l0)
    pi_t = softmax_policy(q_lam_t_target, tau)
    # sum_b pi(b) (q_r(b) - tau ln pi(b)): the soft value of q_r under pi_bar.
    soft_q_r_t = q_r_t_target - scaled_log_softmax(q_lam_t_target, tau)
    td_r = expected_sarsa(q_r_tm1, a_tm1, r_t + bonus, discount_t, soft_q_r_t, pi_t)
    td_c = expected_sarsa(q_c_tm1, a_tm1, c_t, discount_t, q_c_t_target, pi_t)
    return td_r, td_c, bonus


def _separate_loss(
    params: Params, target_params: ArrayTree, batch: Transition, config: Config
) -> tuple[Array, Metrics]:
    bc = config.base
    cost = _check_extras(batch)
    lam = jax.lax.stop_gradient(jnp.asarray(params.lam, batch.reward.dtype))
    obs_ndim = jnp.ndim(jax.tree.leaves(batch.obs)[0]) - 1
    q_r, q_c = _critics(params.q, batch.obs, config, obs_ndim)  # [B, A] each
    # One target-network pass over [obs; next_obs] instead of two.
    both = jax.tree.map(
        lambda o, n: jnp.concatenate([o, n], axis=0), batch.obs, batch.next_obs
    )
    target_r, target_c = _critics(target_params, both, config, obs_ndim)
    target_lam = lagrangian.lagrangian_reward(target_r, target_c, lam)  # [2B, A]
    q_lam_tm1_target, q_lam_t_target = jnp.split(target_lam, 2, axis=0)
    _, q_r_t_target = jnp.split(target_r, 2, axis=0)
    _, q_c_t_target = jnp.split(target_c, 2, axis=0)
    discount_t = transition_lib.discount(batch, bc.gamma)  # [B]
    action = batch.action.astype(jnp.int32)
    td_r, td_c, bonus = jax.vmap(lambda *x: _separate_td(*x, bc))(
        q_r,
        q_c,
        action,
        batch.reward,
        cost,
        discount_t,
        q_lam_tm1_target,
        q_r_t_target,
        q_c_t_target,
        q_lam_t_target,
    )
    loss_r = jnp.mean(huber_loss(td_r, bc.huber_delta))
    loss_c = jnp.mean(huber_loss(td_c, bc.huber_delta))
    taken = lambda x: jnp.mean(jnp.take_along_axis(x, action[:, None], axis=-1))
    return loss_r + loss_c, {
        "loss/td": loss_r,
        "loss/cost_td": loss_c,
        "q/mean": taken(q_r),
        "q_cost/mean": taken(q_c),
        "td/abs": jnp.mean(jnp.abs(td_r)),
        "td_cost/abs": jnp.mean(jnp.abs(td_c)),
        "munchausen/bonus": jnp.mean(bonus),
        "loss/penalised_reward": jnp.mean(
            lagrangian.lagrangian_reward(batch.reward, cost, lam)
        ),
    }


def loss(
    params: Params, target_params: ArrayTree, batch: Transition, config: Config
) -> tuple[Array, Metrics]:
    r"""Return the critic loss at the multiplier ``params.lam`` (see :data:`CRITICS`).

    ``"penalised"``: the base agent's loss on the penalised reward
    :math:`r - \lambda c` (with ``lam = 0`` exactly :func:`jaxrl.agents.mvi.loss`).
    ``"separate"``: the sum of the reward critic's Munchausen loss and the cost
    critic's expected-SARSA loss, both under
    :math:`\bar\pi = \mathrm{softmax}((\bar q_r - \lambda \bar q_c)/\tau)` (the
    equations are in the package docstring). The multiplier is a constant of
    the loss (no gradient flows into it; it moves by
    :func:`~jaxrl.agents.constrained.multiplier.multiplier_update`).

    Args:
      params: :class:`Params` (``q`` differentiated, ``lam`` stopped).
      target_params: the target-network parameters.
      batch: ``Transition[B]`` with ``extras["cost"]``.
      config: the config.

    Returns:
      ``(loss, metrics)``: the base agent's metrics plus
      ``"loss/penalised_reward"`` (and the cost critic's, package docstring).

    Raises:
      KeyError: if the batch carries no cost.
    """
    if config.critic == "separate":
        return _separate_loss(params, target_params, batch, config)
    penalised = penalised_batch(batch, params.lam)
    value, metrics = mvi.loss(params.q, target_params, penalised, config.base)
    return value, {**metrics, "loss/penalised_reward": jnp.mean(penalised.reward)}


def update(state: State, data: Transition, config: Config) -> tuple[State, Metrics]:
    """Do one critic gradient step on ``data`` at the current multiplier.

    Args:
      state: the current state.
      data: ``Transition[B]`` with ``extras["cost"]``.
      config: the config.

    Returns:
      ``(state, metrics)``; the multiplier is unchanged (see
      :func:`~jaxrl.agents.constrained.multiplier.multiplier_update`).
    """
    base, metrics = _value_loop.update(
        state.base, data, config.base, loss_fn=_network_loss(state.lam, config)
    )
    return state.replace(base=base), metrics


def _network_loss(lam: Array, config: Config) -> _value_loop.LossFn:
    """:func:`loss` as a function of the network parameters at multiplier ``lam``."""

    def loss_fn(q, target_params, batch, base_config):
        del base_config
        return loss(Params(q=q, lam=lam), target_params, batch, config)

    return loss_fn
