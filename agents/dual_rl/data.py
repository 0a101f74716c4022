"""Offline datasets of the dual-RL agents: checks and the default random data."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl import config as config_lib
from jaxrl import rollout
from jaxrl import transition as transition_lib
from jaxrl.agents.dual_rl.config import Config
from jaxrl.errors import ConfigError
from jaxrl.transition import Transition
from jaxrl.types import Array, ArrayTree, PRNGKey

# ----------------------------------------------------------------------- data


def _action_space(env: Any, env_params: Any) -> tuple[bool, Any]:
    """Return ``(discrete, space)`` of the env's action space."""
    space = env.action_space(env_params)
    if hasattr(space, "n"):
        return True, space
    if hasattr(space, "low") and hasattr(space, "high"):
        return False, space
    raise ConfigError(
        f"dual_rl needs a Discrete or Box action space, got {type(space).__name__}"
    )


def _bounds(space: Any) -> tuple[Array, Array]:
    shape = tuple(space.shape)
    if len(shape) != 1:
        raise ConfigError(f"continuous actions must be vectors [d], got shape {shape}")
    low = jnp.broadcast_to(jnp.asarray(space.low, jnp.float32), shape)
    high = jnp.broadcast_to(jnp.asarray(space.high, jnp.float32), shape)
    if config_lib.is_concrete(low) and config_lib.is_concrete(high):
        lo, hi = np.asarray(low), np.asarray(high)
        if not (
            np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)) and np.all(lo < hi)
        ):
            raise ConfigError(
                f"continuous action bounds must be finite with low < high, "
                f"got low={lo.tolist()}, high={hi.tolist()}"
            )
    return low, high


def check_data(data: Any, env: Any, env_params: Any, name: str = "data") -> Transition:
    """Check an offline dataset against the environment; return it with float32 rewards.

    Args:
      data: a :class:`~jaxrl.transition.Transition` with leading axis ``[N]``,
        ``N >= 1``.
      env: the environment (its observation and action spaces).
      env_params: its parameters.
      name: the dataset's name in error messages.

    Returns:
      The dataset (``reward`` cast to float32).

    Raises:
      ConfigError: not a Transition, empty, leaves disagreeing on ``N``,
        observation / action shapes or dtypes not matching the spaces, or
        ``reward`` / ``terminated`` / ``truncated`` not ``[N]`` (the flags bool).
    """
    if not isinstance(data, Transition):
        raise ConfigError(
            f"{name} must be a jaxrl.transition.Transition, got {type(data).__name__}"
        )
    sizes = {jnp.shape(x)[0] if jnp.ndim(x) else None for x in jax.tree.leaves(data)}
    if len(sizes) != 1 or None in sizes or 0 in sizes:
        raise ConfigError(
            f"{name}: every leaf needs the same leading axis N >= 1, got {sizes}"
        )
    n = sizes.pop()
    obs_shape = tuple(env.observation_space(env_params).shape)
    for field in ("obs", "next_obs"):
        got = jnp.shape(getattr(data, field))
        if got != (n, *obs_shape):
            raise ConfigError(
                f"{name}.{field} must have shape [N, *obs_shape] = "
                f"{[n, *obs_shape]}, got {list(got)}"
            )
    for field in ("reward", "terminated", "truncated"):
        got = jnp.shape(getattr(data, field))
        if got != (n,):
            raise ConfigError(f"{name}.{field} must have shape [{n}], got {list(got)}")
    for field in ("terminated", "truncated"):
        if jnp.result_type(getattr(data, field)) != jnp.bool_:
            raise ConfigError(f"{name}.{field} must be bool")
    discrete, space = _action_space(env, env_params)
    action = data.action
    if discrete:
        if jnp.shape(action) != (n,) or not jnp.issubdtype(
            jnp.result_type(action), jnp.integer
        ):
            raise ConfigError(
                f"{name}.action must be integer [{n}] for a discrete action space, "
                f"got {jnp.result_type(action)} {list(jnp.shape(action))}"
            )
        if config_lib.is_concrete(action) and config_lib.is_concrete(space.n):
            a = np.asarray(action)
            if a.min() < 0 or a.max() >= int(space.n):
                raise ConfigError(
                    f"{name}.action must lie in [0, {int(space.n)}), "
                    f"got [{a.min()}, {a.max()}]"
                )
    else:
        want = (n, *tuple(space.shape))
        if jnp.shape(action) != want or not jnp.issubdtype(
            jnp.result_type(action), jnp.floating
        ):
            raise ConfigError(
                f"{name}.action must be float {list(want)} for a continuous action "
                f"space, got {jnp.result_type(action)} {list(jnp.shape(action))}"
            )
    return data.replace(reward=jnp.asarray(data.reward, jnp.float32))


def default_data(key: PRNGKey, env: Any, env_params: Any, config: Config) -> Transition:
    """Return the default dataset: the uniformly random policy's transitions.

    ``data_steps`` steps of ``data_num_envs`` environments (auto-reset; each
    transition keeps its pre-reset ``next_obs`` and both episode flags),
    flattened to ``Transition[data_num_envs * data_steps]``.

    Args:
      key: typed key (reset and rollout).
      env: the environment.
      env_params: its parameters.
      config: the config (``data_num_envs``, ``data_steps``).

    Returns:
      ``Transition[N]``.
    """
    _, space = _action_space(env, env_params)
    k_reset, k_run = jax.random.split(key)
    obs, env_state = rollout.reset(k_reset, env, env_params, config.data_num_envs)

    def policy(k: PRNGKey, o: ArrayTree) -> Array:
        del o
        return jax.vmap(space.sample)(jax.random.split(k, config.data_num_envs))

    data, *_ = rollout.collect(
        k_run, env, env_params, env_state, obs, policy, config.data_steps
    )
    return transition_lib.flatten_batch(data)
