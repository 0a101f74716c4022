"""PPO-Lagrangian networks, optimiser and operators (see jaxrl.agents.ppo_lagrangian)."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxrl.agents import ppo
from jaxrl.agents.ppo_lagrangian.config import Config
from jaxrl.errors import ConfigError
from jaxrl.nets import MLP, ConvTorso
from jaxrl.types import Array, ArrayLike, ArrayTree

__all__ = [
    "ActorCostCritic",
    "network",
    "cost_value",
    "optimizer",
    "lagrangian_advantage",
    "episode_costs",
    "policy_multiplier",
]


# ----------------------------------------------------------------------------- network


class ActorCostCritic(ppo.ActorCritic):
    """PPO's actor and reward critic plus a separate cost critic network.

    The cost critic (``cost_conv`` when ``conv_features``, ``cost_torso``,
    ``cost_head``) has the reward critic's architecture; the submodules shared
    with :class:`jaxrl.agents.ppo.ActorCritic` keep their names, hence their
    initialisation from a given key.
    """

    def setup(self) -> None:
        super().setup()
        if self.conv_features:
            self.cost_conv = ConvTorso(self.conv_features, self.activation)
        self.cost_torso = MLP(self.hidden_sizes, self.activation)
        self.cost_head = nn.Dense(1, kernel_init=nn.initializers.orthogonal(1.0))

    def cost_value(self, obs: Any) -> Array:
        """Return ``[...]`` cost values of ``[..., *obs_shape]`` observations."""
        conv = self.cost_conv if self.conv_features else None
        return self.cost_head(self.cost_torso(self._features(obs, conv)))[..., 0]

    def __call__(self, obs: Any) -> tuple[Array, Array, Array]:
        """Return ``(logits [..., A], value [...], cost value [...])``."""
        return self.policy(obs), self.value(obs), self.cost_value(obs)


def network(config: ppo.Config, num_actions: int, obs_ndim: int) -> ActorCostCritic:
    """Return the :class:`ActorCostCritic` of the base config's static fields."""
    return ActorCostCritic(
        num_actions=int(num_actions),
        hidden_sizes=tuple(config.hidden_sizes),
        activation=config.activation,
        obs_ndim=int(obs_ndim),
        conv_features=tuple(config.conv_features),
    )


def cost_value(
    net_params: ArrayTree, obs: ArrayTree, config: Config, obs_ndim: int
) -> Array:
    """Return the cost critic's ``[...]`` values of ``[..., *obs_shape]`` observations.

    Args:
      net_params: :class:`ActorCostCritic` parameters.
      obs: observations with any leading batch axes.
      config: the config (network fields of ``config.base``).
      obs_ndim: trailing observation axes (static; 1 for vectors).
    """
    num_actions = net_params["params"]["actor_head"]["kernel"].shape[-1]
    module = network(config.base, num_actions, obs_ndim)
    return module.apply(net_params, obs, method=ActorCostCritic.cost_value)


def _partition(net_params: ArrayTree) -> ArrayTree:
    return {
        col: {
            name: jax.tree.map(
                lambda _, n=name: "cost" if n.startswith("cost_") else "policy", sub
            )
            for name, sub in tree.items()
        }
        for col, tree in net_params.items()
    }


def optimizer(config: Config) -> optax.GradientTransformation:
    """Return PPO's optimiser applied separately to the policy and the cost critic.

    ``optax.multi_transform`` with :func:`jaxrl.agents.ppo.optimizer` on each part:
    each has its own Adam moments and its own global-norm clipping, so the
    cost critic never rescales the actor-critic's step.
    """
    base = ppo.optimizer(config.base)
    return optax.multi_transform({"policy": base, "cost": base}, _partition)


# ----------------------------------------------------------------------------- math


def lagrangian_advantage(adv_r: ArrayLike, adv_c: ArrayLike, lam: ArrayLike) -> Array:
    r"""Return the Lagrangian advantage :math:`(A_r - \lambda A_c) / (1 + \lambda)`.

    The advantage of the penalised reward :math:`r - \lambda c` (advantages are
    linear in the reward), scaled by :math:`1/(1 + \lambda)` so that the
    surrogate's magnitude stays bounded as :math:`\lambda` grows.

    Args:
      adv_r: ``[...]`` reward advantages :math:`A_r`.
      adv_c: ``[...]`` cost advantages :math:`A_c`, same shape.
      lam: ``[]`` multiplier :math:`\lambda \ge 0` (gradient stopped).

    Returns:
      ``[...]`` the combined advantage; ``lam = 0`` returns ``adv_r`` exactly.

    References:
      Ray, Achiam and Amodei, "Benchmarking safe exploration in deep
      reinforcement learning", 2019 (PPO-Lagrangian objective); Stooke, Achiam
      and Abbeel, "Responsive safety in RL by PID Lagrangian methods", ICML 2020.

    Examples:
      >>> import jax.numpy as jnp
      >>> lagrangian_advantage(jnp.array([3.0, 1.0]), jnp.array([1.0, -1.0]), 1.0)
      Array([1., 1.], dtype=float32)
    """
    adv_r, adv_c = jnp.asarray(adv_r), jnp.asarray(adv_c)
    if adv_r.shape != adv_c.shape:
        raise ConfigError(
            f"reward and cost advantages differ in shape: {adv_r.shape} vs "
            f"{adv_c.shape}"
        )
    lam = jax.lax.stop_gradient(jnp.asarray(lam, adv_r.dtype))
    return (adv_r - lam * adv_c) / (1.0 + lam)


def episode_costs(
    running: ArrayLike, cost_t: ArrayLike, end_t: ArrayLike
) -> tuple[Array, Array]:
    """Accumulate per-step costs into per-episode totals along a ``[T, E]`` rollout.

    Args:
      running: ``[E]`` cost of each environment's episode before the rollout.
      cost_t: ``[T, E]`` per-step (e.g. discounted) costs.
      end_t: ``[T, E]`` bool, ``terminated | truncated``.

    Returns:
      ``(total [T, E], running [E])``: the episode's cost up to and including
      step ``t`` (the finished episode's cost where ``end_t``) and the running
      costs after the rollout (0 for environments whose episode just ended).
    """

    def body(carry: Array, xs: tuple[Array, Array]) -> tuple[Array, Array]:
        c, end = xs
        total = carry + c
        return jnp.where(end, 0.0, total), total

    running = jnp.asarray(running, jnp.float32)
    xs = (jnp.asarray(cost_t, jnp.float32), jnp.asarray(end_t, bool))
    running, total = jax.lax.scan(body, running, xs)
    return total, running


def policy_multiplier(lam_new: ArrayLike, lam_old: ArrayLike, config: Config) -> Array:
    """Return the multiplier the policy steps on (extrapolated for ReLOAD).

    ``lam_new`` for ``"lagrangian"`` (or ``optimistic_policy=False``);
    ``clip(2 lam_new - lam_old, 0, lambda_max)`` for ``"reload"``.
    """
    lam_new = jnp.asarray(lam_new, jnp.float32)
    if config.method == "reload" and config.optimistic_policy:
        return jnp.clip(2.0 * lam_new - lam_old, 0.0, config.lambda_max)
    return lam_new
