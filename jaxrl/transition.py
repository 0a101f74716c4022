"""The one ``Transition`` pytree shared by every agent, buffer and dataset.

Semantics are stored and the discount is derived: a transition keeps the two
episode-boundary booleans separately, ``terminated`` (a true end: never bootstrap)
and ``truncated`` (a time limit: bootstrap from ``next_obs``). ``next_obs`` is the
observation *before* any auto-reset (gymnax 1.0's ``info["final_observation"]``),
so a stored ``(obs, next_obs)`` pair never straddles two episodes.

Axis conventions: rollouts are time-major ``[T, E, ...]``; buffer items are
``[...]`` per environment; sampled batches are ``[B, ...]``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from jaxrl.types import Array, ArrayLike, ArrayTree

__all__ = [
    "Transition",
    "from_gymnax_step",
    "discount",
    "episode_end",
    "flatten_batch",
    "example",
]


@struct.dataclass
class Transition:
    """One environment step ``(o_t, a_t, r_{t+1}, o_{t+1})`` with episode flags.

    Every leaf carries the same leading batch axes.

    Attributes:
      obs: ``o_t``, any pytree of arrays.
      action: ``a_t`` (int32 for discrete action spaces, float32 otherwise).
      reward: ``r_{t+1}``, float32.
      next_obs: ``o_{t+1}`` before auto-reset.
      terminated: bool, true end of episode: the loss must not bootstrap.
      truncated: bool, time limit: the loss bootstraps from ``next_obs``.
      extras: dict of agent- or env-specific arrays, e.g. ``{"cost": c_t}``.
    """

    obs: ArrayTree
    action: Array
    reward: Array
    next_obs: ArrayTree
    terminated: Array
    truncated: Array
    extras: dict[str, Any] = struct.field(default_factory=dict)


def from_gymnax_step(
    obs: ArrayTree,
    action: ArrayLike,
    step_out: tuple[Any, Any, Any, Any, Any, dict[str, Any]],
    extras_keys: tuple[str, ...] = (),
) -> Transition:
    """Build a Transition from ``obs`` and the output of a gymnax 1.0 ``env.step``.

    Args:
      obs: the observation the action was chosen on, ``[...]``.
      action: the action taken.
      step_out: ``(obs_after_reset, state, reward, terminated, truncated, info)``;
        ``info["final_observation"]`` is used as ``next_obs``.
      extras_keys: keys of ``info`` copied into ``extras`` (e.g. ``("cost",)``);
        a missing key raises ``KeyError`` at trace time.

    Returns:
      The transition, with ``reward`` cast to float32 and the flags to bool.
    """
    _, _, reward, terminated, truncated, info = step_out
    return Transition(
        obs=obs,
        action=jnp.asarray(action),
        reward=jnp.asarray(reward, jnp.float32),
        next_obs=info["final_observation"],
        terminated=jnp.asarray(terminated, bool),
        truncated=jnp.asarray(truncated, bool),
        extras={k: jnp.asarray(info[k], jnp.float32) for k in extras_keys},
    )


def discount(transition: Transition, gamma: ArrayLike) -> Array:
    """Return ``discount_t = gamma * (1 - terminated)``: bootstrap through truncation only."""
    return jnp.asarray(gamma, jnp.float32) * (1.0 - transition.terminated.astype(jnp.float32))


def episode_end(transition: Transition) -> Array:
    """Return ``terminated | truncated``: the step closes an episode (for returns and logs)."""
    return jnp.logical_or(transition.terminated, transition.truncated)


def flatten_batch(transition: Transition, num_axes: int = 2) -> Transition:
    """Merge the leading ``num_axes`` axes (e.g. time-major ``[T, E]``) into one ``[T*E]``."""

    def merge(x: Array) -> Array:
        return jnp.reshape(x, (-1, *x.shape[num_axes:]))

    return jax.tree.map(merge, transition)


def example(
    obs: ArrayTree, action: ArrayLike, extras: dict[str, ArrayLike] | None = None
) -> Transition:
    """Return one unbatched Transition of zeros shaped like ``obs``/``action`` (buffer template)."""
    zeros = lambda x: jnp.zeros_like(jnp.asarray(x))
    return Transition(
        obs=jax.tree.map(zeros, obs),
        action=zeros(action),
        reward=jnp.zeros((), jnp.float32),
        next_obs=jax.tree.map(zeros, obs),
        terminated=jnp.zeros((), bool),
        truncated=jnp.zeros((), bool),
        extras={k: jnp.zeros_like(jnp.asarray(v, jnp.float32)) for k, v in (extras or {}).items()},
    )
