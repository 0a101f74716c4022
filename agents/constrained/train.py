"""Agent API and training loop of :mod:`jaxrl.agents.constrained`.

The iteration is :mod:`jaxrl.agents._value_loop`'s, extended (``Extension``) with the
multiplier state and its step after every iteration
(:mod:`jaxrl.agents.constrained.multiplier`).
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from jaxrl import config as config_lib
from jaxrl.agents import _value_loop, mvi
from jaxrl.agents.constrained.config import Config, Params, State
from jaxrl.agents.constrained.losses import loss, update
from jaxrl.agents.constrained.multiplier import _after_iteration
from jaxrl.agents.constrained.networks import _critics, _outputs_per_action
from jaxrl.envs.constrained import budget_from_params
from jaxrl.loop import base_cost_evaluation
from jaxrl.ops import lagrangian
from jaxrl.ops.regularized import softmax_policy
from jaxrl.types import Array, ArrayTree, PRNGKey

__all__ = ["init", "act", "update", "make_run", "make_train"]

_INFO_KEYS = ("cost", "discounted_cost")


def act(
    params: Params,
    obs: ArrayTree,
    key: PRNGKey,
    config: Config,
    *,
    greedy: bool = False,
    epsilon: Array | float | None = None,
) -> Array:
    r"""Choose an action for ONE observation with the base agent's policy.

    The policy acts on the Lagrangian values :math:`q_\lambda`: the penalised
    critic's output (then this is exactly :func:`jaxrl.agents.mvi.act`; the
    multiplier is in the critic), or :math:`q_r - \lambda q_c` of the separate
    critics, with ``argmax`` (greedy), ε-greedy or ``softmax(q_lambda / tau)``
    sampling as the base config's ``interact`` says.

    Args:
      params: :class:`Params` (``lam`` is used by the separate critics only).
      obs: ``[*obs_shape]`` one observation.
      key: PRNG key (unused when ``greedy``).
      config: the config.
      greedy: static, take ``argmax_a q_lambda(obs, a)``.
      epsilon: ε for ε-greedy acting (``None``: ``config.base.eps_end``).

    Returns:
      ``[]`` int32 action.
    """
    if config.critic == "penalised":
        return mvi.act(params.q, obs, key, config.base, greedy=greedy, epsilon=epsilon)
    q_r, q_c = _critics(params.q, obs, config, jnp.ndim(obs))
    q_lam = lagrangian.lagrangian_reward(q_r, q_c, params.lam)
    policy = lambda q: softmax_policy(q, config.base.tau)
    return mvi.act_on_q(q_lam, key, config.base, policy, greedy=greedy, epsilon=epsilon)


def init(key: PRNGKey, env: Any, env_params: Any, config: Config) -> State:
    """Initialise the base agent (with a cost-carrying buffer) and the multiplier.

    Args:
      key: typed PRNG key (split exactly as the base agent's ``init`` splits it).
      env: a cost-emitting gymnax environment (``info["cost"]``,
        ``info["discounted_cost"]``), e.g. ``jaxrl.envs.make("CartPole-Constrained-v0")``.
      env_params: its params, carrying ``cost_limit`` (and ``cost_gamma``).
      config: the config.

    Returns:
      The initial :class:`State` (``lambda = lambda0``).

    Raises:
      ConfigError: on an invalid config or params without a budget.
    """
    config_lib.validate(config)
    budget_from_params(env_params, "jaxrl.agents.constrained")
    return _value_loop.init(
        key,
        env,
        env_params,
        config.base,
        outputs_per_action=_outputs_per_action(config),
        extension=_extension(config, env_params),
    )


def _extension(config: Config, env_params: Any) -> _value_loop.Extension:
    """The multiplier as an extension of the base agent's iteration."""

    def init_state(base: _value_loop.State) -> State:
        return State(
            base=base,
            lam=jnp.asarray(config.lambda0, jnp.float32),
            prev_violation=jnp.zeros((), jnp.float32),
            num_violations=jnp.zeros((), jnp.int32),
            episode_cost=jnp.zeros((config.base.num_envs,), jnp.float32),
        )

    def after_iteration(state, tr, info):
        return _after_iteration(state, tr, info, config, env_params)

    return _value_loop.Extension(
        init=init_state,
        params=lambda q, state: Params(q=q, lam=state.lam),
        after_iteration=after_iteration,
        info_keys=_INFO_KEYS,
        buffer_keys=("cost",),
    )


# Greedy evaluation of the agent's policy, with the episodes' cost.
_evaluate = base_cost_evaluation(act)


def _loop_fns(config: Config) -> dict[str, Any]:
    """``loss_fn``, ``act_fn`` and ``eval_fn`` for the shared loop.

    The loop passes the base config (``config.base``, or a variant of it, e.g.
    the loop's one-episode probe of the evaluation's metric names), which is
    put back into the constrained config.
    """

    def loss_fn(params, target_params, batch, base_config):
        return loss(params, target_params, batch, config.replace(base=base_config))

    def act_fn(params, obs, key, base_config, *, greedy=False, epsilon=None):
        cfg = config.replace(base=base_config)
        return act(params, obs, key, cfg, greedy=greedy, epsilon=epsilon)

    def eval_fn(params, key, base_config, env, env_params):
        cfg = config.replace(base=base_config)
        return _evaluate(params, key, cfg, env, env_params)

    return {"loss_fn": loss_fn, "act_fn": act_fn, "eval_fn": eval_fn}


def make_run(config: Config, env: Any, env_params: Any):
    """Return ``run(state) -> (state, metrics)`` advancing one chunk.

    Args:
      config: the config (validated here).
      env: the cost-emitting environment.
      env_params: its params (with the budget).

    Returns:
      ``run``; metrics have a leading ``[iters_per_chunk]`` axis.

    Raises:
      ConfigError: on an invalid config or params without a budget.
    """
    config_lib.validate(config)
    budget_from_params(env_params, "jaxrl.agents.constrained")
    return _value_loop.make_run(
        config.base,
        env,
        env_params,
        extension=_extension(config, env_params),
        **_loop_fns(config),
    )


def make_train(config: Config, env: Any, env_params: Any):
    """Return ``train(key) -> (state, metrics)``: ``init`` then ``num_chunks`` chunks.

    Metrics have a leading ``[num_chunks * iters_per_chunk]`` axis. Seeds are a
    ``jax.vmap`` over keys; multiplier step sizes, budgets (in ``env_params``)
    and the base agent's traced fields are further ``vmap`` axes.
    """
    config_lib.validate(config)
    budget_from_params(env_params, "jaxrl.agents.constrained")
    return _value_loop.make_train(
        config.base,
        env,
        env_params,
        outputs_per_action=_outputs_per_action(config),
        extension=_extension(config, env_params),
        **_loop_fns(config),
    )
