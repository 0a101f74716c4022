"""PPO networks, forward passes and optimiser (see :mod:`jaxrl.agents.ppo`)."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxrl.agents.ppo.config import Config
from jaxrl.nets import MLP, ConvTorso
from jaxrl.ops.policy_gradient import categorical_entropy, categorical_log_prob
from jaxrl.optim import make_optimizer
from jaxrl.types import Array, ArrayTree, Params

__all__ = ["ActorCritic", "network", "policy_and_value", "optimizer"]

_log_prob = jnp.vectorize(categorical_log_prob, signature="(a),()->()")
_entropy = jnp.vectorize(categorical_entropy, signature="(a)->()")


# ----------------------------------------------------------------------------- network


class ActorCritic(nn.Module):
    """Separate actor (policy logits) and critic (state value) networks.

    Each is a torso (optional :class:`~jaxrl.nets.ConvTorso`, then
    :class:`~jaxrl.nets.MLP`) with a linear head, orthogonally initialised
    with gain 0.01 for the logits (a near-uniform initial policy) and 1 for
    the value. The observation's ``obs_ndim`` trailing axes are flattened for
    the MLP; any leading axes are batch axes.

    Attributes:
      num_actions: ``A``.
      hidden_sizes: MLP widths of both torsos (static tuple).
      activation: activation name.
      obs_ndim: trailing observation axes (1 vectors, 3 images).
      conv_features: conv channels; ``()`` means no conv torso.
    """

    num_actions: int
    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    obs_ndim: int = 1
    conv_features: tuple[int, ...] = ()

    def setup(self) -> None:
        if self.conv_features:
            if self.obs_ndim != 3:
                raise ValueError("conv_features needs image observations (obs_ndim=3)")
            self.actor_conv = ConvTorso(self.conv_features, self.activation)
            self.critic_conv = ConvTorso(self.conv_features, self.activation)
        self.actor_torso = MLP(self.hidden_sizes, self.activation)
        self.critic_torso = MLP(self.hidden_sizes, self.activation)
        self.actor_head = nn.Dense(
            self.num_actions, kernel_init=nn.initializers.orthogonal(0.01)
        )
        self.critic_head = nn.Dense(1, kernel_init=nn.initializers.orthogonal(1.0))

    def _features(self, obs: Any, conv: Any) -> Array:
        x = jnp.asarray(obs, jnp.float32)
        if x.ndim < self.obs_ndim:
            raise ValueError(
                f"observation has {x.ndim} axes, fewer than obs_ndim={self.obs_ndim}"
            )
        if self.conv_features:
            return conv(x)
        return jnp.reshape(x, (*x.shape[: x.ndim - self.obs_ndim], -1))

    def policy(self, obs: Any) -> Array:
        """Return ``[..., A]`` logits of ``[..., *obs_shape]`` observations."""
        conv = self.actor_conv if self.conv_features else None
        return self.actor_head(self.actor_torso(self._features(obs, conv)))

    def value(self, obs: Any) -> Array:
        """Return ``[...]`` state values of ``[..., *obs_shape]`` observations."""
        conv = self.critic_conv if self.conv_features else None
        return self.critic_head(self.critic_torso(self._features(obs, conv)))[..., 0]

    def __call__(self, obs: Any) -> tuple[Array, Array]:
        """Return ``(logits [..., A], value [...])``."""
        return self.policy(obs), self.value(obs)


def network(config: Config, num_actions: int, obs_ndim: int) -> ActorCritic:
    """Return the :class:`ActorCritic` described by the config's static fields."""
    return ActorCritic(
        num_actions=int(num_actions),
        hidden_sizes=tuple(config.hidden_sizes),
        activation=config.activation,
        obs_ndim=int(obs_ndim),
        conv_features=tuple(config.conv_features),
    )


def _num_actions(params: Params) -> int:
    return params["params"]["actor_head"]["kernel"].shape[-1]


def policy_and_value(
    params: Params,
    obs: ArrayTree,
    config: Config,
    obs_ndim: int,
    *,
    value_only: bool = False,
) -> Any:
    """Return ``(logits [..., A], value [...])`` of observations with any batch axes.

    Args:
      params: :class:`ActorCritic` parameters (``A`` is read from them).
      obs: ``[..., *obs_shape]`` observations.
      config: the config (network fields).
      obs_ndim: number of trailing observation axes (static; 1 for vectors).
      value_only: static switch: return only ``value [...]``.
    """
    net = network(config, _num_actions(params), obs_ndim)
    if value_only:
        return net.apply(params, obs, method=ActorCritic.value)
    return net.apply(params, obs)


def optimizer(config: Config) -> Any:
    """Return ``clip_by_global_norm -> adam -> -lr_k`` with ``lr`` decayed linearly.

    The decay runs over :attr:`Config.total_updates` gradient steps from
    ``lr`` to ``lr * lr_end_fraction``; every number may be traced.
    """
    return make_optimizer(
        config.lr,
        max_grad_norm=config.max_grad_norm,
        eps=config.adam_eps,
        decay_steps=config.total_updates,
        end_fraction=config.lr_end_fraction,
    )
