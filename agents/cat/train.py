"""CaT agent API, soft-termination advantages and training loop (see :mod:`jaxrl.agents.cat`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jaxrl import config as config_lib
from jaxrl import transition as transition_lib
from jaxrl.agents import _onpolicy_loop, ppo
from jaxrl.agents.cat.config import Config, State
from jaxrl.envs.wrappers import log_unwrap
from jaxrl.errors import ConfigError
from jaxrl.loop import EVAL_NAMES, base_cost_evaluation
from jaxrl.ops.terminations import soft_termination_returns, termination_probabilities
from jaxrl.transition import Transition
from jaxrl.types import Array, ArrayTree, Metrics, Params, PRNGKey

__all__ = [
    "init",
    "act",
    "collect",
    "advantages",
    "loss",
    "update",
    "make_run",
    "make_train",
]

_USER = "jaxrl.agents.cat"


# ------------------------------------------------------------------------- agent API


def _check_cost(key: PRNGKey, env: Any, env_params: Any) -> None:
    """Raise :class:`ConfigError` unless ``env.step``'s info has ``"cost"`` (abstractly)."""
    inner = log_unwrap(env)

    def step_info(k: PRNGKey) -> dict[str, Any]:
        k_reset, k_step = jax.random.split(k)
        _, s = inner.reset(k_reset, env_params)
        return inner.step(k_step, s, jnp.zeros((), jnp.int32), env_params)[-1]

    info = jax.eval_shape(step_info, jax.ShapeDtypeStruct(key.shape, key.dtype))
    if "cost" not in info:
        raise ConfigError(
            f"{_USER} needs a cost-emitting environment (info['cost'], e.g. "
            f"jaxrl.envs.constrained); {getattr(inner, 'name', type(inner).__name__)} "
            "has none"
        )


def init(key: PRNGKey, env: Any, env_params: Any, config: Config) -> State:
    """Initialise PPO (:func:`jaxrl.agents.ppo.init`, same key splits) and the scale.

    Args:
      key: typed PRNG key.
      env: a cost-emitting discrete-action gymnax environment (``info["cost"]``).
      env_params: its params (a budget, if any, is not used).
      config: the config.

    Raises:
      ConfigError: on an invalid config or an environment without costs.
    """
    config_lib.validate(config)
    _check_cost(key, env, env_params)
    base = ppo.init_state(key, env, env_params, config.base)
    return State(base=base, cost_scale=jnp.asarray(config.scale_floor, jnp.float32))


def act(
    params: Params,
    obs: ArrayTree,
    key: PRNGKey,
    config: Config,
    *,
    greedy: bool = False,
) -> Array:
    """Sample (or, ``greedy``, take the mode of) the policy's action for ONE obs.

    See :func:`jaxrl.agents.ppo.act`.
    """
    return ppo.act(params, obs, key, config.base, greedy=greedy)


def collect(
    state: State, config: Config, env: Any, env_params: Any
) -> tuple[State, Transition, dict[str, Array]]:
    """Roll the policy (:func:`jaxrl.agents.ppo.collect`) keeping ``extras["cost"]``.

    Returns:
      ``(state, rollout [T, E], info [T, E])``.
    """
    base, rollout, info = ppo.collect(
        state.base, config.base, env, env_params, extras_keys=("cost",)
    )
    return state.replace(base=base), rollout, info


def advantages(
    rollout: Transition, cost_scale: Array, config: Config
) -> tuple[dict[str, Array], Array]:
    r"""Return the soft-termination GAE of a rollout and the updated violation scale.

    :func:`jaxrl.ops.terminations.termination_probabilities` of the rollout's
    costs (one constraint, :math:`c_t` = ``extras["cost"]``) from
    ``cost_scale``, then :func:`jaxrl.ops.terminations.soft_termination_returns`
    per environment, with ``discount_t = gamma * (1 - terminated)`` and episode
    ends ``terminated | truncated`` as in :func:`jaxrl.agents.ppo.compute_gae`.

    Args:
      rollout: ``Transition[T, E]`` from :func:`collect`.
      cost_scale: ``[]`` the running scale :math:`c^{max}` before the rollout.
      config: the config.

    Returns:
      ``(extras, cost_scale)``: ``[T, E]`` arrays ``"advantage"``,
      ``"target"`` and ``"termination_prob"`` (:math:`\delta_t`), and the
      scale after the rollout.
    """
    base = config.base
    cost = rollout.extras["cost"][..., None]  # [T, E, K = 1]
    delta, scale = termination_probabilities(
        cost_scale[None], cost, config.p_max, config.scale_decay, config.scale_floor
    )
    discount_t = transition_lib.discount(rollout, base.gamma)
    end_t = transition_lib.episode_end(rollout)
    fn = jax.vmap(soft_termination_returns, (1, 1, 1, 1, 1, None, 1), out_axes=1)
    ex = rollout.extras
    adv, target = fn(
        rollout.reward,
        discount_t,
        delta,
        ex["value"],
        ex["next_value"],
        base.gae_lambda,
        end_t,
    )
    return {"advantage": adv, "target": target, "termination_prob": delta}, scale[0]


def loss(
    params: Params, target_params: Any, batch: Transition, config: Config
) -> tuple[Array, Metrics]:
    """Return PPO's loss (:func:`jaxrl.agents.ppo.loss` with ``config.base``).

    CaT changes only the advantages and value targets in ``batch.extras``.
    """
    return ppo.loss(params, target_params, batch, config.base)


def update(state: State, data: Transition, config: Config) -> tuple[State, Metrics]:
    """Do PPO's epochs on a rollout with CaT's soft-termination advantages.

    Args:
      state: the current state.
      data: ``Transition[T, E]`` from :func:`collect` (extras ``"cost"``,
        ``"log_prob"``, ``"value"``, ``"next_value"``).
      config: the config.

    Returns:
      ``(state, metrics)``: :func:`jaxrl.agents.ppo.learn`'s metrics plus
      ``"cat/termination_prob"`` (mean :math:`\\delta_t` of the rollout),
      ``"cat/terminating_fraction"`` (fraction of its steps with
      :math:`\\delta_t > 0`) and ``"cat/cost_scale"`` (after the rollout).
    """
    new, scale = advantages(data, state.cost_scale, config)
    base, metrics = ppo.learn(
        state.base, data, config.base, advantage_fn=lambda tr, c: new
    )
    delta = new["termination_prob"]
    metrics = {
        **metrics,
        "cat/termination_prob": jnp.mean(delta),
        "cat/terminating_fraction": jnp.mean((delta > 0).astype(jnp.float32)),
        "cat/cost_scale": scale,
    }
    return state.replace(base=base, cost_scale=scale), metrics


# ----------------------------------------------------------------------- training loop


_EVAL_NAMES = (*EVAL_NAMES, "eval/cost")


# Greedy evaluation of the agent's policy, with the episodes' cost.
_evaluate = base_cost_evaluation(act)


def _no_step(state: State, rollout: Transition) -> tuple[State, Metrics]:
    """CaT has no dual variable: nothing happens between COLLECT and LEARN."""
    del rollout
    return state, {}


_RUN_KW = {
    "collect_fn": collect,
    "update_fn": update,
    "eval_fn": _evaluate,
    "eval_names": _EVAL_NAMES,
    # the extension only nests the state and adds "episode/cost"
    "extension": _onpolicy_loop.Extension(before_update=_no_step, with_cost=True),
}


def make_run(
    config: Config, env: Any, env_params: Any
) -> Callable[[State], tuple[State, Metrics]]:
    """Return ``run(state) -> (state, metrics)`` advancing one chunk.

    Raises:
      ConfigError: on an invalid config.
    """
    config_lib.validate(config)
    return _onpolicy_loop.make_run(config, env, env_params, **_RUN_KW)


def make_train(
    config: Config, env: Any, env_params: Any
) -> Callable[[PRNGKey], tuple[State, Metrics]]:
    """Return ``train(key) -> (state, metrics)``: :func:`init`, then the chunks.

    Metrics have a leading ``[num_chunks * iters_per_chunk]`` axis; seeds are a
    ``jax.vmap`` over keys, ``p_max`` and the other traced fields (stacked
    configs) further ``vmap`` axes.

    Raises:
      ConfigError: on an invalid config.
    """
    config_lib.validate(config)
    return _onpolicy_loop.make_train(config, env, env_params, init_fn=init, **_RUN_KW)
