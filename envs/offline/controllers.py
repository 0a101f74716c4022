"""Hand-written controllers for the ``scripted-*`` datasets, and noisy policy mixing.

When no trained agent beats uniform actions on a continuous-control task,
``scripts/make_datasets.py`` builds the data from one of these controllers
instead (:data:`CONTROLLERS`, by name): :func:`pendulum_swingup_pd` for
``Pendulum-v1`` and :func:`mountaincar_push_with_velocity` for
``MountainCarContinuous-v0``. Every controller, like every behaviour policy of
:mod:`jaxrl.envs.offline`, is a batched ``policy(key, obs[E]) -> action[E, 1]``.

:func:`noisy_policy` replaces each action of a policy by a uniform one with a
(traced) probability ``p``: ``p = 0`` is the policy, ``p = 1`` uniform actions,
and the ``p`` whose return is closest to a target makes a ``medium`` policy.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from jaxrl.rollout import Policy
from jaxrl.types import Array, ArrayLike, ArrayTree, PRNGKey

__all__ = [
    "CONTROLLERS",
    "pendulum_swingup_pd",
    "mountaincar_push_with_velocity",
    "noisy_policy",
]


def pendulum_swingup_pd(key: PRNGKey, obs: Array) -> Array:
    """Energy-pumping swing-up plus PD balance for gymnax ``Pendulum-v1``.

    Observation ``[cos θ, sin θ, θ̇]`` (θ = 0 upright); the dynamics are
    ``θ̈ = 15 sin θ + 3 u`` (g = 10, l = m = 1), so ``E = θ̇²/2 + 15 cos θ``
    equals 15 upright at rest. Away from the top (cos θ <= 0.85) push with the
    full torque 2 in the direction that moves ``E`` towards 15; near the top
    apply ``u = -(10 θ + 2 θ̇)`` (closed loop ``θ̈ ≈ -15 θ - 6 θ̇``).

    Args:
      key: unused (the controller is deterministic).
      obs: ``[E, 3]``.

    Returns:
      ``[E, 1]`` torques in ``[-2, 2]``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> obs = jnp.array([[1.0, 0.0, 0.5], [-1.0, 0.0, 0.5]])  # upright; hanging
      >>> pendulum_swingup_pd(jax.random.key(0), obs).tolist()
      [[-1.0], [2.0]]
    """
    del key
    cos, sin, vel = obs[:, 0], obs[:, 1], obs[:, 2]
    theta = jnp.arctan2(sin, cos)
    energy = 0.5 * vel**2 + 15.0 * cos
    pump = 2.0 * jnp.sign((15.0 - energy) * vel + 1e-6)
    balance = -(10.0 * theta + 2.0 * vel)
    return jnp.clip(jnp.where(cos > 0.85, balance, pump), -2.0, 2.0)[:, None]


def mountaincar_push_with_velocity(key: PRNGKey, obs: Array) -> Array:
    """Full force in the direction of motion (gymnax ``MountainCarContinuous-v0``).

    Args:
      key: unused (the controller is deterministic).
      obs: ``[E, 2]`` (position, velocity).

    Returns:
      ``[E, 1]`` float32 forces, ``+1`` for velocity ``>= 0``, else ``-1``.
    """
    del key
    return jnp.where(obs[:, 1] >= 0.0, 1.0, -1.0)[:, None].astype(jnp.float32)


CONTROLLERS: dict[str, Callable[[PRNGKey, Array], Array]] = {
    "pendulum-swingup-pd": pendulum_swingup_pd,
    "mountaincar-push-with-velocity": mountaincar_push_with_velocity,
}
"""Hand-written controllers ``policy(key, obs[E]) -> action[E]`` (``scripted-*``)."""


def noisy_policy(policy: Policy, uniform: Policy, p: ArrayLike) -> Policy:
    """``policy`` with each action replaced by a ``uniform`` one with probability ``p``.

    Each call splits its key three ways (policy, uniform action, coin); ``p``
    may be traced, so one compiled rollout serves every probability.

    Args:
      policy: ``policy(key, obs[E]) -> action[E, ...]``.
      uniform: the replacement, same signature (e.g.
        :func:`jaxrl.envs.offline.uniform_policy`).
      p: replacement probability in ``[0, 1]``.

    Returns:
      The mixed policy, same signature.
    """

    def act(key: PRNGKey, obs: ArrayTree) -> Array:
        k_pol, k_uni, k_coin = jax.random.split(key, 3)
        a = policy(k_pol, obs)
        u = uniform(k_uni, obs)
        coin = jax.random.uniform(k_coin, (a.shape[0],)) < p
        return jnp.where(coin.reshape((-1,) + (1,) * (a.ndim - 1)), u, a)

    return act
