"""Vectorised environment interaction: reset, step, scan-collect, greedy evaluation.

All functions take a gymnax 1.0 environment (``env.reset(key, params)``,
``env.step(key, state, action, params) -> (obs, state, reward, terminated,
truncated, info)`` with auto-reset and ``info["final_observation"]``) and vmap it
over ``E`` parallel copies. Nothing here jits by itself: wrap the caller in
``jax.jit`` (the environment object is closed over, not passed as an argument).

Shapes use ``E`` for environments, ``T`` for time steps and ``N`` for evaluation
episodes. Rollouts are time-major ``[T, E, ...]``.

A policy is ``policy(key, obs[E]) -> action[E]``: one key for the whole batch of
observations (split it inside the policy if each environment needs its own).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp

from jaxrl.errors import ConfigError
from jaxrl.transition import Transition, from_gymnax_step
from jaxrl.types import Array, ArrayLike, ArrayTree, PRNGKey

__all__ = ["Policy", "reset", "step", "collect", "evaluate"]

Policy = Callable[[PRNGKey, ArrayTree], Array]
"""``policy(key, obs[E]) -> action[E]``."""


def _check_count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(
            f"{name} must be a positive Python int (static), got {value!r}"
        )
    return value


def _batch_size(tree: ArrayTree) -> int:
    leaves = jax.tree.leaves(tree)
    if not leaves or jnp.ndim(leaves[0]) == 0:
        raise ConfigError(
            "batched observations need a leading environment axis [E, ...]"
        )
    return int(jnp.shape(leaves[0])[0])


def reset(
    key: PRNGKey, env: Any, env_params: Any, num_envs: int
) -> tuple[ArrayTree, Any]:
    """Reset ``num_envs`` independent copies of ``env``.

    Args:
      key: typed PRNG key; split into one key per environment.
      env: a gymnax environment.
      env_params: its parameters (shared by all copies).
      num_envs: ``E``, a positive Python int.

    Returns:
      ``(obs[E, ...], env_state[E])``.

    Raises:
      ConfigError: if ``num_envs`` is not a positive int.

    Examples:
      >>> import gymnax, jax
      >>> env, params = gymnax.make("CartPole-v1")
      >>> obs, state = reset(jax.random.key(0), env, params, num_envs=3)
      >>> obs.shape
      (3, 4)
    """
    num_envs = _check_count("num_envs", num_envs)
    keys = jax.random.split(key, num_envs)
    return jax.vmap(env.reset, in_axes=(0, None))(keys, env_params)


def step(
    key: PRNGKey,
    env: Any,
    env_params: Any,
    env_state: Any,
    obs: ArrayTree,
    action: Array,
    extras_keys: tuple[str, ...] = (),
) -> tuple[Transition, Any, ArrayTree, dict[str, Any]]:
    """Step ``E`` environments once and package the result as a Transition.

    Args:
      key: typed PRNG key; split into one key per environment.
      env: a gymnax environment.
      env_params: its parameters.
      env_state: ``[E]`` batched environment state.
      obs: ``[E, ...]`` observations the actions were chosen on.
      action: ``[E, ...]`` actions.
      extras_keys: ``info`` keys copied (as float32) into ``Transition.extras``,
        e.g. ``("cost",)``; a missing key raises ``KeyError`` at trace time.

    Returns:
      ``(transition[E], env_state[E], obs[E], info[E])`` where ``obs`` is the
      post-auto-reset observation (what the policy sees next) and
      ``transition.next_obs`` is the pre-reset one (``info["final_observation"]``).
      ``transition.reward`` is float32 and the flags are bool.

    Examples:
      >>> import gymnax, jax, jax.numpy as jnp
      >>> env, params = gymnax.make("CartPole-v1")
      >>> k_reset, k_step = jax.random.split(jax.random.key(0))
      >>> obs, state = reset(k_reset, env, params, 2)
      >>> action = jnp.array([0, 1])
      >>> tr, state, obs, info = step(k_step, env, params, state, obs, action)
      >>> tr.reward.dtype, tr.terminated.shape
      (dtype('float32'), (2,))
    """
    num_envs = _batch_size(obs)
    keys = jax.random.split(key, num_envs)
    out = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
        keys, env_state, action, env_params
    )
    transition = from_gymnax_step(obs, action, out, tuple(extras_keys))
    next_obs, next_state, _, _, _, info = out
    return transition, next_state, next_obs, info


def _collect_body(
    carry: tuple[PRNGKey, Any, ArrayTree],
    _: None,
    env: Any,
    env_params: Any,
    policy: Policy,
    extras_keys: tuple[str, ...],
) -> tuple[tuple[PRNGKey, Any, ArrayTree], tuple[Transition, dict[str, Any]]]:
    """One ``lax.scan`` step of :func:`collect`: act, then step all environments.

    The key travels in the carry and is split every step (rather than scanning
    over pre-split keys, which ``vmap`` over seeds turns into a key transpose that
    the key-reuse checker misreports).
    """
    key, env_state, obs = carry
    key, k_act, k_step = jax.random.split(key, 3)
    action = policy(k_act, obs)
    transition, env_state, obs, info = step(
        k_step, env, env_params, env_state, obs, action, extras_keys
    )
    return (key, env_state, obs), (transition, info)


def collect(
    key: PRNGKey,
    env: Any,
    env_params: Any,
    env_state: Any,
    obs: ArrayTree,
    policy: Policy,
    num_steps: int,
    extras_keys: tuple[str, ...] = (),
) -> tuple[Transition, Any, ArrayTree, dict[str, Any]]:
    """Roll ``policy`` for ``num_steps`` steps in ``E`` environments with ``lax.scan``.

    Episodes auto-reset inside the rollout. Each stored transition pairs ``obs``
    with its own pre-reset ``next_obs``, so no ``(s, s')`` pair straddles a reset;
    the observation at ``t + 1`` after an episode end is the new episode's first.

    Args:
      key: typed PRNG key; carried through the scan and split every step into
        the next carry key, an action key (passed to ``policy``) and a step key.
      env: a gymnax environment.
      env_params: its parameters.
      env_state: ``[E]`` batched state to start from (e.g. from :func:`reset`).
      obs: ``[E, ...]`` current observations.
      policy: ``policy(key, obs[E]) -> action[E]``.
      num_steps: ``T``, a positive Python int (static).
      extras_keys: ``info`` keys copied into ``Transition.extras`` (see :func:`step`).

    Returns:
      ``(transitions[T, E], env_state[E], obs[E], info[T, E])``: time-major
      transitions and infos, and the final state and observations to continue from.

    Raises:
      ConfigError: if ``num_steps`` is not a positive int.

    Examples:
      >>> import gymnax, jax
      >>> env, params = gymnax.make("CartPole-v1")
      >>> k_reset, k_run = jax.random.split(jax.random.key(0))
      >>> obs, state = reset(k_reset, env, params, 4)
      >>> policy = lambda key, obs: jax.random.randint(key, obs.shape[:1], 0, 2)
      >>> tr, state, obs, info = collect(k_run, env, params, state, obs, policy, 5)
      >>> tr.obs.shape, tr.action.shape
      ((5, 4, 4), (5, 4))
    """
    num_steps = _check_count("num_steps", num_steps)
    body = partial(
        _collect_body,
        env=env,
        env_params=env_params,
        policy=policy,
        extras_keys=tuple(extras_keys),
    )
    carry = (key, env_state, obs)
    (_, env_state, obs), (transitions, infos) = jax.lax.scan(
        body, carry, None, length=num_steps
    )
    return transitions, env_state, obs, infos


def _evaluate_body(
    carry: dict[str, Any],
    env: Any,
    env_params: Any,
    policy: Policy,
    extras_keys: tuple[str, ...],
    gamma: Any = None,
) -> dict[str, Any]:
    """One ``lax.while_loop`` step of :func:`evaluate`, masked by ``done``."""
    key, k_act, k_step = jax.random.split(carry["key"], 3)
    action = policy(k_act, carry["obs"])
    tr, env_state, obs, info = step(
        k_step, env, env_params, carry["env_state"], carry["obs"], action
    )
    active = jnp.logical_not(carry["done"])
    ended = jnp.logical_or(tr.terminated, tr.truncated)
    sums = {
        k: carry["sums"][k] + jnp.where(active, jnp.asarray(info[k], jnp.float32), 0.0)
        for k in extras_keys
    }
    reward = jnp.where(active, tr.reward, 0.0)
    out = {
        "key": key,
        "t": carry["t"] + 1,
        "env_state": env_state,
        "obs": obs,
        "return": carry["return"] + reward,
        "length": carry["length"] + active.astype(jnp.int32),
        "done": jnp.logical_or(carry["done"], jnp.logical_and(active, ended)),
        "sums": sums,
    }
    if gamma is not None:
        out["discounted_return"] = (
            carry["discounted_return"] + carry["discount_weight"] * reward
        )
        out["discount_weight"] = carry["discount_weight"] * jnp.where(
            active, gamma, 1.0
        )
    return out


def evaluate(
    key: PRNGKey,
    env: Any,
    env_params: Any,
    policy: Policy,
    num_episodes: int,
    max_steps: int,
    extras_keys: tuple[str, ...] = (),
    gamma: ArrayLike | None = None,
) -> dict[str, Array]:
    """Run ``N = num_episodes`` environments until each finishes its first episode.

    ``policy`` is used as given: pass the greedy policy (e.g. an agent's ``act``
    with ``greedy=True``, vmapped over observations). Episode ``i`` is the first
    episode of environment ``i``; later episodes after auto-reset are ignored. The
    loop stops when every episode has ended (``terminated`` or ``truncated`` by the
    environment's time limit) or after ``max_steps`` steps, whichever comes first.

    If ``max_steps`` is reached first, an unfinished episode is reported with its
    partial return and ``length == max_steps`` and ``completed`` False: treat it as
    truncated, and use ``completed`` as the mask when averaging only finished
    episodes. Episodes ended by the environment's own time limit count as
    completed.

    Args:
      key: typed PRNG key; split into a reset key and then one key per step.
      env: a gymnax environment.
      env_params: its parameters.
      policy: ``policy(key, obs[N]) -> action[N]``.
      num_episodes: ``N``, a positive Python int (static).
      max_steps: upper bound on steps per episode, a positive Python int (static).
      extras_keys: ``info`` keys (e.g. ``("cost",)``) summed over each episode and
        returned under the same names.
      gamma: optional ``[]`` discount (may be traced); when given, the output
        also has ``"discounted_return"`` (float32 ``[N]``,
        ``sum_t gamma^t r_t`` over the episode).

    Returns:
      A dict with ``"return"`` (float32 ``[N]``, undiscounted), ``"length"`` (int32
      ``[N]``), ``"completed"`` (bool ``[N]``) and one float32 ``[N]`` entry per
      ``extras_keys`` item.

    Raises:
      ConfigError: if ``num_episodes`` or ``max_steps`` is not a positive int.

    Examples:
      >>> import gymnax, jax, jax.numpy as jnp
      >>> env, params = gymnax.make("CartPole-v1")
      >>> always_right = lambda key, obs: jnp.ones(obs.shape[:1], jnp.int32)
      >>> out = evaluate(jax.random.key(0), env, params, always_right, 4, 500)
      >>> out["return"].shape, bool(out["completed"].all())
      ((4,), True)
      >>> bool((out["return"] == out["length"]).all())  # CartPole pays 1 per step
      True
    """
    num_episodes = _check_count("num_episodes", num_episodes)
    max_steps = _check_count("max_steps", max_steps)
    extras_keys = tuple(extras_keys)
    k_reset, k_loop = jax.random.split(key)
    obs, env_state = reset(k_reset, env, env_params, num_episodes)
    carry = {
        "key": k_loop,
        "t": jnp.zeros((), jnp.int32),
        "env_state": env_state,
        "obs": obs,
        "return": jnp.zeros((num_episodes,), jnp.float32),
        "length": jnp.zeros((num_episodes,), jnp.int32),
        "done": jnp.zeros((num_episodes,), bool),
        "sums": {k: jnp.zeros((num_episodes,), jnp.float32) for k in extras_keys},
    }
    if gamma is not None:
        gamma = jnp.asarray(gamma, jnp.float32)
        carry["discounted_return"] = jnp.zeros((num_episodes,), jnp.float32)
        carry["discount_weight"] = jnp.ones((num_episodes,), jnp.float32)

    def cond(c: dict[str, Any]) -> Array:
        return jnp.logical_and(c["t"] < max_steps, jnp.logical_not(jnp.all(c["done"])))

    body = partial(
        _evaluate_body,
        env=env,
        env_params=env_params,
        policy=policy,
        extras_keys=extras_keys,
        gamma=gamma,
    )
    final = jax.lax.while_loop(cond, body, carry)
    out = {
        "return": final["return"],
        "length": final["length"],
        "completed": final["done"],
        **final["sums"],
    }
    if gamma is not None:
        out["discounted_return"] = final["discounted_return"]
    return out
