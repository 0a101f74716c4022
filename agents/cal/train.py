"""CAL set-up, acting and training: SAC's loop with CAL's update (see :mod:`jaxrl.agents.cal`)."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from jaxrl import config as config_lib
from jaxrl.agents.cal.config import Config, OptState, Params, State, Targets
from jaxrl.agents.cal.losses import _cost_critic, update
from jaxrl.agents.sac import train as sac_train
from jaxrl.agents.sac.networks import _bounds, _optimizers
from jaxrl.envs.constrained import budget_from_params
from jaxrl.envs.wrappers import log_unwrap
from jaxrl.loop import chunked_train
from jaxrl.ops import cal as cal_ops
from jaxrl.ops import lagrangian
from jaxrl.types import Array, ArrayTree, PRNGKey

__all__ = ["init", "act", "make_run", "make_train"]

_USER = "jaxrl.agents.cal"
_EXTRAS = ("cost",)


def _fields(x: Any) -> dict[str, Any]:
    return {f.name: getattr(x, f.name) for f in dataclasses.fields(x)}


def _check_env(env: Any, env_params: Any) -> tuple[Array, Array]:
    _bounds(env, env_params)
    limit, gamma_c = budget_from_params(env_params, _USER)
    config_lib.check_range("cost_limit", limit, 0.0, allow_inf=True)
    return limit, gamma_c


def init(key: PRNGKey, env: Any, env_params: Any, config: Config) -> State:
    """Initialise SAC's state, the ``E`` cost critics, their targets and the multiplier.

    The cost critics are one :class:`jaxrl.agents.sac.Critic` with ``E`` heads,
    each an MLP of its own drawn from its own part of the key, so the members
    differ from the start (the ensemble's only source of diversity: they see
    the same batches). The budget :math:`\\xi` is
    :func:`jaxrl.ops.cal.q_budget` of the env's ``cost_limit``, the agent's
    ``gamma``, the env's time limit and its ``cost_gamma``.

    Args:
      key: typed PRNG key.
      env: a constrained gymnax env (``info["cost"]``) with a ``Box`` action
        space, e.g. ``jaxrl.envs.make("Pendulum-Constrained-v0")``.
      env_params: its params (carrying ``cost_limit``).
      config: the config (validated here).

    Returns:
      The initial :class:`~jaxrl.agents.cal.State`.

    Raises:
      ConfigError: invalid config, a non-Box action space, params without a
        budget or a negative ``cost_limit``.
    """
    config.validate()
    limit, gamma_c = _check_env(env, env_params)
    key, k_base, k_cost = jax.random.split(key, 3)
    base = sac_train._init(k_base, env, env_params, config.base, _EXTRAS)
    obs_0 = jax.tree.map(lambda x: x[0], base.obs)
    y_0 = jnp.zeros(base.params.action_low.shape, jnp.float32)
    cost_params = _cost_critic(config, jnp.ndim(obs_0)).init(k_cost, obs_0, y_0)
    horizon = jnp.asarray(env_params.max_steps_in_episode, jnp.float32)
    budget = cal_ops.q_budget(limit, config.base.gamma, horizon, gamma_c)
    params = Params(
        **_fields(base.params),
        cost_critic=cost_params,
        lam=jnp.asarray(config.lambda0, jnp.float32),
        budget=lagrangian.saturate(budget),
    )
    net_opt, _ = _optimizers(config.base)
    opt_state = OptState(
        **_fields(base.opt_state), cost_critic=net_opt.init(cost_params)
    )
    targets = Targets(
        critic=base.target_params,
        cost_critic=jax.tree.map(jnp.copy, cost_params),
    )
    return State(
        **{
            **_fields(base),
            "params": params,
            "target_params": targets,
            "opt_state": opt_state,
        }
    )


def act(
    params: Params,
    obs: ArrayTree,
    key: PRNGKey | None,
    config: Config,
    *,
    greedy: bool = False,
) -> Array:
    """Return SAC's action for ONE observation (see :func:`jaxrl.agents.sac.act`)."""
    return sac_train.act(params, obs, key, config.base, greedy=greedy)


def make_run(config: Config, env: Any, env_params: Any):
    """Return ``run(state) -> (state, metrics)`` advancing one chunk.

    SAC's chunk (:func:`jaxrl.agents.sac.make_run`) with CAL's :func:`update`,
    the cost stored in the replay, ``"episode/cost"`` and ``"eval/cost"``.

    Raises:
      ConfigError: as :func:`init`.
    """
    config.validate()
    _check_env(env, env_params)
    return sac_train._make_run(
        config.base,
        env,
        env_params,
        act_fn=act,
        update_fn=update,
        agent_config=config,
        extras_keys=_EXTRAS,
    )


def make_train(config: Config, env: Any, env_params: Any):
    """Return ``train(key) -> (state, metrics)``: :func:`init`, then the chunks.

    Use ``jax.jit(jax.vmap(train))(keys)`` for several seeds; the env params
    (budget, speed limit) and every traced config field may be traced too.
    """
    run = make_run(config, env, env_params)
    inner = log_unwrap(env)
    return chunked_train(
        lambda key: init(key, inner, env_params, config), run, config.num_chunks
    )
