"""PPO-Lagrangian agent API and training loop (see :mod:`jaxrl.agents.ppo_lagrangian`)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jaxrl import config as config_lib
from jaxrl import rollout as rollout_lib
from jaxrl import transition as transition_lib
from jaxrl.agents import constrained, ppo
from jaxrl.agents.ppo_lagrangian.config import _EXTRAS, _USER, Config, Params, State
from jaxrl.agents.ppo_lagrangian.networks import (
    cost_value,
    episode_costs,
    lagrangian_advantage,
    network,
    optimizer,
    policy_multiplier,
)
from jaxrl.envs.constrained import budget_from_params
from jaxrl.envs.wrappers import LogWrapper
from jaxrl.loop import chunked_train
from jaxrl.ops.policy_gradient import clipped_value_loss
from jaxrl.optim import learning_rate_at
from jaxrl.transition import Transition
from jaxrl.types import Array, ArrayTree, Metrics, PRNGKey

__all__ = [
    "init",
    "act",
    "collect",
    "loss",
    "advantages",
    "multiplier_step",
    "update",
    "make_run",
    "make_train",
]


# ------------------------------------------------------------------------- agent API


def init(key: PRNGKey, env: Any, env_params: Any, config: Config) -> State:
    """Initialise PPO with the cost critic, the optimiser and the multiplier.

    Args:
      key: typed PRNG key (split exactly as :func:`jaxrl.agents.ppo.init` splits it).
      env: a cost-emitting discrete-action gymnax environment
        (``info["cost"]``, ``info["discounted_cost"]``).
      env_params: its params, carrying ``cost_limit`` (and ``cost_gamma``).
      config: the config.

    Raises:
      ConfigError: on an invalid config or params without a budget.
    """
    config_lib.validate(config)
    _, cost_gamma = budget_from_params(env_params, _USER)
    base = ppo.init_state(
        key,
        env,
        env_params,
        config.base,
        network_fn=network,
        opt=optimizer(config),
    )
    lam = jnp.asarray(config.lambda0, jnp.float32)
    return State(
        base=base,
        lam=lam,
        prev_lam=lam,
        prev_violation=jnp.zeros((), jnp.float32),
        num_violations=jnp.zeros((), jnp.int32),
        episode_cost=jnp.zeros((config.base.num_envs,), jnp.float32),
        cost_gamma=cost_gamma,
    )


def act(
    params: Params,
    obs: ArrayTree,
    key: PRNGKey,
    config: Config,
    *,
    greedy: bool = False,
) -> Array:
    """Sample (or, ``greedy``, take the mode of) the policy's action for ONE obs.

    See :func:`jaxrl.agents.ppo.act`; the multiplier is not used for acting.
    """
    return ppo.act(params.net, obs, key, config.base, greedy=greedy)


def collect(
    state: State, config: Config, env: Any, env_params: Any
) -> tuple[State, Transition, dict[str, Array]]:
    """Roll the policy (:func:`jaxrl.agents.ppo.collect`) and add the cost critic's values.

    Returns:
      ``(state, rollout, info)``; ``rollout.extras`` has PPO's entries plus
      ``"cost"``, ``"discounted_cost"``, ``"cost_value"`` (:math:`V_c` at
      ``obs``) and ``"cost_next_value"`` (at the pre-reset ``next_obs``).
    """
    base, rollout, info = ppo.collect(
        state.base, config.base, env, env_params, extras_keys=_EXTRAS
    )
    net = state.base.params
    obs_ndim = jnp.ndim(rollout.obs) - 2  # [T, E, *obs_shape]
    extras = {
        **rollout.extras,
        "cost_value": cost_value(net, rollout.obs, config, obs_ndim),
        "cost_next_value": cost_value(net, rollout.next_obs, config, obs_ndim),
    }
    return state.replace(base=base), rollout.replace(extras=extras), info


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
        "episode/discounted_cost": violation + budget,
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


# ----------------------------------------------------------------------- training loop


def _log_env(env: Any) -> Any:
    return env if isinstance(env, LogWrapper) else LogWrapper(env)


def _inner_env(env: Any) -> Any:
    return env.env if isinstance(env, LogWrapper) else env


def _iteration(
    state: State, _: Any, config: Config, env: Any, env_params: Any
) -> tuple[State, Metrics]:
    """Collect, step the multiplier, then PPO's update (scan body)."""
    bc = config.base
    # COLLECT (the same key splits as jaxrl.agents.ppo's iteration)
    state, rollout, info = collect(state, config, env, env_params)
    lr = learning_rate_at(
        state.base.num_updates,
        bc.lr,
        decay_steps=bc.total_updates,
        end_fraction=bc.lr_end_fraction,
    )
    # MULTIPLIER, then LEARN
    state, lagrange_metrics = multiplier_step(state, rollout, env_params, config)
    state, metrics = update(state, rollout, config)
    return state, {
        **metrics,
        **lagrange_metrics,
        **ppo.episode_metrics(info, with_cost=True),
        "train/lr": lr,
        "train/env_steps": state.base.step * bc.batch_size,
        "train/num_updates": state.base.num_updates,
    }


def _evaluate(
    params: Params, key: PRNGKey, config: Config, env: Any, env_params: Any
) -> Metrics:
    def policy(k: PRNGKey, obs: ArrayTree) -> Array:
        del k
        return jax.vmap(lambda o: act(params, o, None, config, greedy=True))(obs)

    out = rollout_lib.evaluate(
        key,
        env,
        env_params,
        policy,
        config.base.num_eval_episodes,
        config.base.eval_max_steps,
        extras_keys=("cost",),
    )
    return {
        "eval/return": jnp.mean(out["return"].astype(jnp.float32)),
        "eval/length": jnp.mean(out["length"].astype(jnp.float32)),
        "eval/cost": jnp.mean(out["cost"]),
    }


def _run_chunk(
    state: State, config: Config, env: Any, env_params: Any
) -> tuple[State, Metrics]:
    body = functools.partial(
        _iteration, config=config, env=_log_env(env), env_params=env_params
    )
    state, metrics = jax.lax.scan(body, state, None, length=config.iters_per_chunk)
    # EVALUATE (greedy, at the end of the chunk; NaN on the chunk's other rows)
    nan_row = jnp.full((config.iters_per_chunk,), jnp.nan, jnp.float32)
    names = ("eval/return", "eval/length", "eval/cost")
    if config.base.num_eval_episodes > 0:
        key, k_eval = jax.random.split(state.base.key)
        state = state.replace(base=state.base.replace(key=key))
        out = _evaluate(state.params, k_eval, config, env, env_params)
        for name in names:
            metrics[name] = nan_row.at[-1].set(out[name])
    else:
        for name in names:
            metrics[name] = nan_row
    return state, metrics


def make_run(
    config: Config, env: Any, env_params: Any
) -> Callable[[State], tuple[State, Metrics]]:
    """Return ``run(state) -> (state, metrics)`` advancing one chunk.

    Raises:
      ConfigError: on an invalid config or params without a budget.
    """
    config_lib.validate(config)
    budget_from_params(env_params, _USER)
    inner = _inner_env(env)

    def run(state: State) -> tuple[State, Metrics]:
        return _run_chunk(state, config, inner, env_params)

    return run


def make_train(
    config: Config, env: Any, env_params: Any
) -> Callable[[PRNGKey], tuple[State, Metrics]]:
    """Return ``train(key) -> (state, metrics)``: :func:`init`, then the chunks.

    Metrics have a leading ``[num_chunks * iters_per_chunk]`` axis; seeds are a
    ``jax.vmap`` over keys, multiplier step sizes (stacked configs) and budgets
    (stacked ``env_params``) further ``vmap`` axes.
    """
    run = make_run(config, env, env_params)
    inner = _inner_env(env)
    return chunked_train(
        lambda key: init(key, inner, env_params, config), run, config.num_chunks
    )
