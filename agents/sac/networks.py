"""SAC networks, action bounds, env wrapping and optimisers (see :mod:`jaxrl.agents.sac`)."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from jaxrl.agents.sac.config import Config, Params
from jaxrl.config import is_concrete
from jaxrl.errors import ConfigError
from jaxrl.nets import MLP
from jaxrl.optim import make_optimizer
from jaxrl.types import Array

__all__ = ["Actor", "Critic"]


# ----------------------------------------------------------------------------- networks


class Actor(nn.Module):
    """Gaussian head over an MLP torso: ``obs [..., *obs] -> (mean, log_std) [..., d]``.

    The log-std is unclipped here (:func:`~jaxrl.agents.sac.act` and
    :func:`~jaxrl.agents.sac.loss` clip it with the traced
    ``log_std_min``/``log_std_max``).
    """

    action_dim: int
    hidden_sizes: tuple[int, ...] = (256, 256)
    activation: str = "relu"
    obs_ndim: int = 1

    @nn.compact
    def __call__(self, obs: Array) -> tuple[Array, Array]:
        """Return ``(mean, log_std)``, each ``[..., d]``."""
        x = jnp.asarray(obs, jnp.float32)
        x = jnp.reshape(x, (*x.shape[: x.ndim - self.obs_ndim], -1))
        x = MLP(self.hidden_sizes, self.activation, name="torso")(x)
        mean = nn.Dense(self.action_dim, name="mean")(x)
        log_std = nn.Dense(self.action_dim, name="log_std")(x)
        return mean, log_std


class Critic(nn.Module):
    """``K`` Q-networks ``(obs, y) -> [..., K]`` (``y``: normalised action)."""

    num_critics: int = 2
    hidden_sizes: tuple[int, ...] = (256, 256)
    activation: str = "relu"
    obs_ndim: int = 1

    @nn.compact
    def __call__(self, obs: Array, action: Array) -> Array:
        """Return ``[..., K]`` action values of ``[..., *obs]`` and ``[..., d]``."""
        x = jnp.asarray(obs, jnp.float32)
        x = jnp.reshape(x, (*x.shape[: x.ndim - self.obs_ndim], -1))
        x = jnp.concatenate([x, jnp.asarray(action, jnp.float32)], axis=-1)
        qs = [
            nn.Dense(1, name=f"head_{k}")(
                MLP(self.hidden_sizes, self.activation, name=f"torso_{k}")(x)
            )[..., 0]
            for k in range(self.num_critics)
        ]
        return jnp.stack(qs, axis=-1)


# ----------------------------------------------------------------------------- helpers


def _actor(config: Config, d: int, obs_ndim: int) -> Actor:
    return Actor(d, tuple(config.hidden_sizes), config.activation, obs_ndim)


def _critic(config: Config, obs_ndim: int) -> Critic:
    return Critic(
        config.num_critics, tuple(config.hidden_sizes), config.activation, obs_ndim
    )


def _dist(params: Params, obs: Array, config: Config, obs_ndim: int):
    d = params.action_low.shape[-1]
    mean, log_std = _actor(config, d, obs_ndim).apply(params.actor, obs)
    return mean, jnp.clip(log_std, config.log_std_min, config.log_std_max)


def _bounds(env: Any, env_params: Any) -> tuple[Array, Array]:
    space = env.action_space(env_params)
    if not (hasattr(space, "low") and hasattr(space, "high")) or hasattr(space, "n"):
        raise ConfigError(
            f"sac needs a Box (continuous) action space, got {type(space).__name__}"
        )
    shape = tuple(space.shape)
    if len(shape) != 1:
        raise ConfigError(f"sac needs vector actions [d], got shape {shape}")
    low = jnp.broadcast_to(jnp.asarray(space.low, jnp.float32), shape)
    high = jnp.broadcast_to(jnp.asarray(space.high, jnp.float32), shape)
    if is_concrete(low) and is_concrete(high):
        lo, hi = np.asarray(low), np.asarray(high)
        if not (
            np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)) and np.all(lo < hi)
        ):
            raise ConfigError(
                "sac needs finite action bounds with low < high, "
                f"got low={lo.tolist()}, high={hi.tolist()}"
            )
    return low, high


def _optimizers(config: Config):
    net = make_optimizer(config.lr, eps=config.adam_eps)
    temp = make_optimizer(config.alpha_lr, eps=config.adam_eps)
    return net, temp
