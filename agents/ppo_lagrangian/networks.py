"""PPO-Lagrangian networks and optimiser (see jaxrl.agents.ppo_lagrangian)."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import optax

from jaxrl.agents import ppo
from jaxrl.agents.ppo_lagrangian.config import Config
from jaxrl.nets import MLP, ConvTorso
from jaxrl.types import Array, ArrayTree

__all__ = [
    "ActorCostCritic",
    "network",
    "cost_value",
    "optimizer",
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
