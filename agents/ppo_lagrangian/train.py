"""PPO-Lagrangian agent API and training loop (see :mod:`jaxrl.agents.ppo_lagrangian`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax.numpy as jnp

from jaxrl import config as config_lib
from jaxrl.agents import _onpolicy_loop, ppo
from jaxrl.agents.ppo_lagrangian.config import _EXTRAS, _USER, Config, Params, State
from jaxrl.agents.ppo_lagrangian.losses import multiplier_step, update
from jaxrl.agents.ppo_lagrangian.networks import (
    cost_value,
    network,
    optimizer,
)
from jaxrl.envs.constrained import budget_from_params
from jaxrl.loop import EVAL_NAMES, base_cost_evaluation
from jaxrl.transition import Transition
from jaxrl.types import Array, ArrayTree, Metrics, PRNGKey

__all__ = ["init", "act", "collect", "make_run", "make_train"]


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


# ----------------------------------------------------------------------- training loop


_EVAL_NAMES = (*EVAL_NAMES, "eval/cost")


# Greedy evaluation of the agent's policy, with the episodes' cost.
_evaluate = base_cost_evaluation(act)


def _run_kw(config: Config, env_params: Any) -> dict[str, Any]:
    """The on-policy loop's pieces: collect, multiplier step, update, evaluation."""
    return {
        "collect_fn": collect,
        "update_fn": update,
        "eval_fn": _evaluate,
        "eval_names": _EVAL_NAMES,
        "extension": _onpolicy_loop.Extension(
            before_update=lambda s, tr: multiplier_step(s, tr, env_params, config),
            with_cost=True,
        ),
    }


def make_run(
    config: Config, env: Any, env_params: Any
) -> Callable[[State], tuple[State, Metrics]]:
    """Return ``run(state) -> (state, metrics)`` advancing one chunk.

    Raises:
      ConfigError: on an invalid config or params without a budget.
    """
    config_lib.validate(config)
    budget_from_params(env_params, _USER)
    return _onpolicy_loop.make_run(
        config, env, env_params, **_run_kw(config, env_params)
    )


def make_train(
    config: Config, env: Any, env_params: Any
) -> Callable[[PRNGKey], tuple[State, Metrics]]:
    """Return ``train(key) -> (state, metrics)``: :func:`init`, then the chunks.

    Metrics have a leading ``[num_chunks * iters_per_chunk]`` axis; seeds are a
    ``jax.vmap`` over keys, multiplier step sizes (stacked configs) and budgets
    (stacked ``env_params``) further ``vmap`` axes.
    """
    config_lib.validate(config)
    budget_from_params(env_params, _USER)
    return _onpolicy_loop.make_train(
        config, env, env_params, init_fn=init, **_run_kw(config, env_params)
    )
