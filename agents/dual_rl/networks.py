"""Networks, state and policy of the deep offline dual-RL agents."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import struct
from jax.scipy.stats import norm

from jaxrl.agents.dual_rl.config import Config
from jaxrl.nets import MLP, QNetwork
from jaxrl.ops.policy_gradient import categorical_log_prob
from jaxrl.types import Array, ArrayTree

# ------------------------------------------------------------------- networks


class StateActionCritic(nn.Module):
    """Continuous-action critic ``Q(s, a)``: MLP on ``[flatten(s), a]``, scalar head.

    Attributes:
      hidden_sizes: MLP widths.
      activation: activation name.
      obs_ndim: trailing observation axes (flattened).
    """

    hidden_sizes: Sequence[int] = (256, 256)
    activation: str = "relu"
    obs_ndim: int = 1

    @nn.compact
    def __call__(self, obs: Array, action: Array) -> Array:
        """Return ``[...]`` values of ``[..., *obs_shape]`` and ``[..., d]`` actions."""
        x = jnp.asarray(obs, jnp.float32)
        x = jnp.reshape(x, (*x.shape[: x.ndim - self.obs_ndim], -1))
        x = jnp.concatenate([x, jnp.asarray(action, jnp.float32)], axis=-1)
        x = MLP(self.hidden_sizes, self.activation, name="torso")(x)
        return nn.Dense(1, name="head")(x)[..., 0]


class GaussianPolicy(nn.Module):
    """Gaussian policy on ``[-1, 1]``-scaled actions: ``tanh`` mean, free log-std.

    Attributes:
      action_dim: d.
      hidden_sizes: MLP widths.
      activation: activation name.
      obs_ndim: trailing observation axes (flattened).
    """

    action_dim: int
    hidden_sizes: Sequence[int] = (256, 256)
    activation: str = "relu"
    obs_ndim: int = 1

    @nn.compact
    def __call__(self, obs: Array) -> tuple[Array, Array]:
        """Return the mean ``[..., d]`` and the unclipped log-std ``[d]``."""
        x = jnp.asarray(obs, jnp.float32)
        x = jnp.reshape(x, (*x.shape[: x.ndim - self.obs_ndim], -1))
        x = MLP(self.hidden_sizes, self.activation, name="torso")(x)
        mean = jnp.tanh(nn.Dense(self.action_dim, name="mean")(x))
        log_std = self.param("log_std", nn.initializers.zeros, (self.action_dim,))
        return mean, log_std


@struct.dataclass
class Networks:
    """The learned networks (the agent's ``params``).

    Attributes:
      critic: ``K`` critics' parameters stacked on a leading axis (K = 2 with
        ``double_q``).
      value: parameters of ``V(s)``.
      policy: parameters of the policy.
      action_low: ``[d]`` lower action bounds (continuous; ``None`` if discrete).
        Constants, never trained.
      action_high: ``[d]`` upper action bounds (continuous; ``None`` if discrete).
    """

    critic: ArrayTree
    value: ArrayTree
    policy: ArrayTree
    action_low: Array | None = None
    action_high: Array | None = None

    @property
    def discrete(self) -> bool:
        """Whether the action space is discrete (static)."""
        return self.action_low is None


def _head_size(params: ArrayTree, name: str) -> int:
    return int(params["params"][name]["kernel"].shape[-1])


def _mlp_kw(config: Config) -> dict[str, Any]:
    return {"hidden_sizes": tuple(config.hidden_sizes), "activation": config.activation}


def critic_values(
    critic: ArrayTree, obs: Array, action: Array, config: Config, discrete: bool
) -> Array:
    """Return ``[K, B]`` values ``Q_k(s_b, a_b)`` of stacked critics.

    Args:
      critic: ``K`` stacked critic parameters.
      obs: ``[B, *obs_shape]`` observations.
      action: ``[B]`` int actions (discrete) or ``[B, d]`` scaled actions.
      config: the config (network fields).
      discrete: the action-space kind (static).

    Returns:
      ``[K, B]`` action values.
    """
    obs_ndim = jnp.ndim(obs) - 1
    if discrete:
        num_actions = _head_size(critic, "head")
        net = QNetwork(num_actions=num_actions, obs_ndim=obs_ndim, **_mlp_kw(config))
        q = jax.vmap(lambda p: net.apply(p, obs))(critic)  # [K, B, A]
        idx = jnp.asarray(action, jnp.int32)[:, None]  # [B, 1]
        return jax.vmap(lambda q_k: jnp.take_along_axis(q_k, idx, -1)[:, 0])(q)
    net = StateActionCritic(obs_ndim=obs_ndim, **_mlp_kw(config))
    return jax.vmap(lambda p: net.apply(p, obs, action))(critic)


def state_values(value: ArrayTree, obs: Array, config: Config) -> Array:
    """Return ``[...]`` state values ``V(s)`` of ``[..., *obs_shape]`` observations.

    Args:
      value: value-network parameters.
      obs: observations (``obs_ndim`` = their rank minus one: batched).
      config: the config.

    Returns:
      ``[B]`` values.
    """
    net = QNetwork(
        num_actions=1,
        obs_ndim=jnp.ndim(obs) - 1,
        layer_norm=config.value_layer_norm,
        **_mlp_kw(config),
    )
    return net.apply(value, obs)[..., 0]


def _policy_out(
    params: Networks, obs: Array, config: Config, obs_ndim: int
) -> Array | tuple[Array, Array]:
    """Logits ``[..., A]``, or ``(mean [..., d], std [d])`` on scaled actions."""
    if params.discrete:
        net = QNetwork(
            num_actions=_head_size(params.policy, "head"),
            obs_ndim=obs_ndim,
            **_mlp_kw(config),
        )
        return net.apply(params.policy, obs)
    net = GaussianPolicy(
        action_dim=_head_size(params.policy, "mean"),
        obs_ndim=obs_ndim,
        **_mlp_kw(config),
    )
    mean, log_std = net.apply(params.policy, obs)
    log_std = jnp.clip(log_std, config.log_std_min, config.log_std_max)
    return mean, jnp.exp(log_std)


def policy_log_prob(
    params: Networks, obs: Array, action: Array, config: Config
) -> Array:
    """Return ``[B]`` log-probabilities ``log pi(a_b | s_b)`` of a batch.

    Continuous actions are in the networks' ``[-1, 1]`` scale (the density of
    the scaled action; it differs from the unscaled one by a constant).

    Args:
      params: the networks.
      obs: ``[B, *obs_shape]`` observations.
      action: ``[B]`` int or ``[B, d]`` scaled actions.
      config: the config.

    Returns:
      ``[B]`` log-probabilities.
    """
    out = _policy_out(params, obs, config, jnp.ndim(obs) - 1)
    if params.discrete:
        return jax.vmap(categorical_log_prob)(out, jnp.asarray(action, jnp.int32))
    mean, std = out
    return jnp.sum(norm.logpdf(action, mean, std), axis=-1)


def _scale_action(params: Networks, action: Array) -> Array:
    """Environment action -> network input (int, or affine map to [-1, 1])."""
    if params.discrete:
        return jnp.asarray(action, jnp.int32)
    low = jax.lax.stop_gradient(params.action_low)
    high = jax.lax.stop_gradient(params.action_high)
    action = jnp.asarray(action, jnp.float32)
    return (2.0 * action - (high + low)) / (high - low)


def _unscale_action(params: Networks, u: Array) -> Array:
    low, high = params.action_low, params.action_high
    return jnp.clip(
        low + 0.5 * (jnp.clip(u, -1.0, 1.0) + 1.0) * (high - low), low, high
    )
