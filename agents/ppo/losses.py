"""PPO advantages, loss and minibatch optimisation (see :mod:`jaxrl.agents.ppo`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jaxrl import transition as transition_lib
from jaxrl.agents._onpolicy_loop import LossFn, sgd_epochs
from jaxrl.agents.ppo.config import Config, State
from jaxrl.agents.ppo.networks import _entropy, _log_prob, optimizer, policy_and_value
from jaxrl.errors import ConfigError
from jaxrl.ops.gae import gae_returns
from jaxrl.ops.policy_gradient import (
    approx_kl,
    clipped_surrogate_loss,
    clipped_value_loss,
    importance_ratio,
)
from jaxrl.transition import Transition
from jaxrl.types import Array, ArrayLike, Metrics, Params, PRNGKey

__all__ = ["LossFn", "compute_gae", "loss", "sgd", "learn", "update"]


def compute_gae(
    rollout: Transition,
    config: Config,
    *,
    reward: Array | None = None,
    value: Array | None = None,
    next_value: Array | None = None,
    gamma: ArrayLike | None = None,
    gae_lambda: ArrayLike | None = None,
) -> tuple[Array, Array]:
    """Return GAE(λ) advantages and λ-return targets of a time-major rollout.

    :func:`jaxrl.ops.gae.gae_returns` vmapped over the environment axis, with
    ``discount_t = gamma * (1 - terminated)`` and episode ends
    ``terminated | truncated`` from the rollout.

    Args:
      rollout: ``Transition[T, E]`` (from :func:`collect`).
      config: the config (``gamma``, ``gae_lambda``).
      reward: ``[T, E]`` rewards; default ``rollout.reward`` (pass e.g. a cost
        or a shaped reward ``r - λ c``).
      value: ``[T, E]`` values of ``obs``; default ``extras["value"]``.
      next_value: ``[T, E]`` values of the pre-reset ``next_obs``; default
        ``extras["next_value"]``.
      gamma: ``[]`` discount; default ``config.gamma`` (e.g. a cost discount).
      gae_lambda: ``[]`` λ; default ``config.gae_lambda``.

    Returns:
      ``(advantage [T, E], target [T, E])``, gradients stopped.
    """
    r = rollout.reward if reward is None else reward
    v_tm1 = rollout.extras["value"] if value is None else value
    v_t = rollout.extras["next_value"] if next_value is None else next_value
    gamma = config.gamma if gamma is None else gamma
    lam = config.gae_lambda if gae_lambda is None else gae_lambda
    discount_t = transition_lib.discount(rollout, gamma)
    end_t = transition_lib.episode_end(rollout)
    fn = jax.vmap(gae_returns, in_axes=(1, 1, 1, 1, None, 1), out_axes=1)
    return fn(r, discount_t, v_tm1, v_t, lam, end_t)


def loss(
    params: Params, target_params: Any, batch: Transition, config: Config
) -> tuple[Array, Metrics]:
    """Return the PPO loss of a batch and its parts.

    ``loss/policy + vf_coef * loss/value - ent_coef * policy/entropy``, with
    the batch means of :func:`jaxrl.ops.policy_gradient.clipped_surrogate_loss`
    (advantages standardised over the batch when ``normalize_advantages``),
    :func:`jaxrl.ops.policy_gradient.clipped_value_loss` (radius
    ``vf_clip_eps``) and :func:`jaxrl.ops.policy_gradient.categorical_entropy`.

    Args:
      params: actor-critic parameters (differentiated).
      target_params: unused (PPO has no target network); kept for the shared
        agent contract, pass anything (e.g. ``None``).
      batch: ``Transition[B]`` whose ``extras`` hold ``"log_prob"`` (behaviour
        log-probability), ``"value"`` (behaviour value), ``"advantage"`` and
        ``"target"`` (value target); a missing key raises ``KeyError``.
      config: the config.

    Returns:
      ``(loss, metrics)`` with ``"loss/total"``, ``"loss/policy"``,
      ``"loss/value"``, ``"policy/entropy"``, ``"policy/approx_kl"`` and
      ``"policy/clip_fraction"``.
    """
    del target_params
    obs_ndim = jnp.ndim(batch.obs) - 1
    logits, v = policy_and_value(params, batch.obs, config, obs_ndim)  # [B, A], [B]
    log_pi = _log_prob(logits, batch.action.astype(jnp.int32))
    log_mu = batch.extras["log_prob"]
    adv = batch.extras["advantage"]
    if config.normalize_advantages:
        adv = (adv - jnp.mean(adv)) / (jnp.std(adv) + 1e-8)
    policy_loss = jnp.mean(
        jax.vmap(clipped_surrogate_loss, (0, 0, 0, None))(
            log_pi, log_mu, adv, config.clip_eps
        )
    )
    value_loss = jnp.mean(
        jax.vmap(clipped_value_loss, (0, 0, 0, None))(
            v, batch.extras["value"], batch.extras["target"], config.vf_clip_eps
        )
    )
    entropy = jnp.mean(_entropy(logits))
    total = policy_loss + config.vf_coef * value_loss - config.ent_coef * entropy
    log_pi_sg = jax.lax.stop_gradient(log_pi)
    rho = jax.vmap(importance_ratio)(log_pi_sg, log_mu)
    return total, {
        "loss/total": total,
        "loss/policy": policy_loss,
        "loss/value": value_loss,
        "policy/entropy": entropy,
        "policy/approx_kl": jnp.mean(jax.vmap(approx_kl)(log_pi_sg, log_mu)),
        "policy/clip_fraction": jnp.mean(
            (jnp.abs(rho - 1.0) > config.clip_eps).astype(jnp.float32)
        ),
    }


def sgd(
    params: Params,
    opt_state: Any,
    key: PRNGKey,
    batch: Transition,
    config: Config,
    *,
    loss_fn: LossFn = loss,
    opt: Any = None,
    target_params: Any = None,
) -> tuple[Params, Any, Metrics]:
    """Do ``update_epochs`` passes of minibatch Adam steps over a flat batch.

    :func:`jaxrl.agents._onpolicy_loop.sgd_epochs` with PPO's defaults.

    Each epoch draws a fresh permutation of the ``N`` transitions and cuts it
    into ``num_minibatches`` minibatches; ``loss_fn`` sees one minibatch
    ``Transition[N / M]`` at a time. Works for any parameter pytree (e.g. an
    actor-critic plus a cost critic) whose ``loss_fn`` has :func:`loss`'s
    signature.

    Args:
      params: parameters to optimise.
      opt_state: ``opt``'s state for them.
      key: PRNG key for the permutations (carried and split per epoch).
      batch: ``Transition[N]`` with whatever ``extras`` ``loss_fn`` reads.
      config: the config (``update_epochs``, ``num_minibatches``).
      loss_fn: ``loss_fn(params, target_params, minibatch, config)``.
      opt: an optax transformation; default :func:`optimizer` of ``config``.
      target_params: passed through to ``loss_fn``.

    Returns:
      ``(params, opt_state, metrics)``: the loss metrics and
      ``"train/grad_norm"``, each averaged over the
      ``update_epochs * num_minibatches`` steps.
    """
    opt = optimizer(config) if opt is None else opt
    return sgd_epochs(
        params,
        opt_state,
        key,
        batch,
        config,
        loss_fn=loss_fn,
        opt=opt,
        target_params=target_params,
    )


def _explained_variance(value: Array, target: Array) -> Array:
    var_target = jnp.var(target)
    return jnp.where(
        var_target > 0, 1.0 - jnp.var(target - value) / var_target, jnp.nan
    )


def learn(
    state: State,
    rollout: Transition,
    config: Config,
    *,
    reward_fn: Callable[[Transition], Array] | None = None,
    advantage_fn: Callable[[Transition, Config], dict[str, Array]] | None = None,
    loss_fn: LossFn = loss,
    opt: Any = None,
) -> tuple[State, Metrics]:
    """Compute advantages of a rollout, then run :func:`sgd` on it.

    Args:
      state: the current state (its key is split for the permutations).
      rollout: ``Transition[T, E]`` from :func:`collect`.
      config: the config.
      reward_fn: ``rollout -> [T, E]`` reward fed to GAE (default: the
        environment reward), e.g. ``lambda tr: tr.reward - lam *
        tr.extras["cost"]`` for a Lagrangian.
      advantage_fn: ``(rollout, config) -> {name: [T, E]}`` entries added to
        ``rollout.extras`` instead of GAE's ``"advantage"`` and ``"target"``
        (it must provide what ``loss_fn`` reads); excludes ``reward_fn``.
      loss_fn: the loss (default :func:`loss`).
      opt: the optax transformation ``state.opt_state`` belongs to (default
        :func:`optimizer` of ``config``).

    Returns:
      ``(state, metrics)``: :func:`sgd`'s metrics plus ``"value/mean"``,
      ``"value/explained_variance"`` and ``"advantage/mean"`` of the rollout.
    """
    if advantage_fn is None:
        reward = None if reward_fn is None else reward_fn(rollout)
        advantage, target = compute_gae(rollout, config, reward=reward)
        new = {"advantage": advantage, "target": target}
    else:
        if reward_fn is not None:
            raise ConfigError("pass either reward_fn or advantage_fn, not both")
        new = dict(advantage_fn(rollout, config))
    rollout = rollout.replace(extras={**rollout.extras, **new})
    batch = transition_lib.flatten_batch(rollout, 2)
    key, k_sgd = jax.random.split(state.key)
    params, opt_state, metrics = sgd(
        state.params, state.opt_state, k_sgd, batch, config, loss_fn=loss_fn, opt=opt
    )
    extras = rollout.extras
    metrics = {
        **metrics,
        "value/mean": jnp.mean(extras["value"]),
        "value/explained_variance": _explained_variance(
            extras["value"], extras["target"]
        )
        if "target" in extras
        else jnp.float32(jnp.nan),
        "advantage/mean": jnp.mean(extras["advantage"])
        if "advantage" in extras
        else jnp.float32(jnp.nan),
    }
    state = state.replace(
        params=params,
        opt_state=opt_state,
        key=key,
        num_updates=state.num_updates + config.updates_per_iter,
    )
    return state, metrics


def update(state: State, data: Transition, config: Config) -> tuple[State, Metrics]:
    """Do one PPO update on a rollout: GAE, then the epochs of minibatch steps.

    Args:
      state: the current state.
      data: ``Transition[T, E]`` from :func:`collect` (extras ``"log_prob"``,
        ``"value"``, ``"next_value"``).
      config: the config.

    Returns:
      ``(state, metrics)``; see :func:`learn` (this is ``learn`` with the
      environment reward and :func:`loss`).
    """
    return learn(state, data, config)
