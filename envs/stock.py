r"""Stock augmentation: append the stock :math:`c_t` to any environment's observation.

The *stock* of stock-augmented distributional RL (Pires et al., JMLR 2025, arXiv
2501.13028) is the statistic of the rewards received so far

.. math:: c_{t+1} = (c_t + r_t)/\gamma, \qquad c_0 \sim U[\text{stock0\_low},
          \text{stock0\_high}],

so that :math:`c_0 + G_0 = \gamma^t (c_t + G_t)` for every ``t``: an objective
:math:`\mathbb{E} f(c_0 + G_0)` of the whole return is, from time ``t`` on, an
objective of :math:`c_t + G_t` (up to the positive factor :math:`\gamma^t`), so a
policy of the augmented state :math:`(s_t, c_t)` can optimise it.

:class:`StockWrapper` keeps the gymnax 1.0 step contract of
:mod:`jaxrl.envs.wrappers` and changes only the observation: every observation
(``obs`` and ``info["final_observation"]``) is the wrapped observation flattened
to one axis, cast to float32, with the stock appended as the last entry,
``[D + 1]``. The wrapped environment's auto-reset is kept; at an episode end the
stock restarts with a fresh :math:`c_0` draw (the returned ``obs`` carries it)
while ``info["final_observation"]`` carries the pre-reset
:math:`c_{T} = (c_{T-1} + r_{T-1})/\gamma`, so a transition never pairs stocks
across a reset. ``info["stock"]`` is that pre-reset stock too.

Parameters are :class:`StockParams`, which nest the wrapped environment's
parameters: ``gamma`` and the :math:`c_0` range are traced, so they can be swept
with ``vmap``; ``stock0_low == stock0_high`` gives a fixed initial stock.

Examples:
  >>> import gymnax, jax
  >>> env, params = gymnax.make("CartPole-v1")
  >>> env = StockWrapper(env)
  >>> sparams = StockParams(params, gamma=0.5, stock0_low=-1.0, stock0_high=-1.0)
  >>> obs, state = env.reset(jax.random.key(0), sparams)
  >>> obs.shape, float(obs[-1])
  ((5,), -1.0)
  >>> obs, state, r, term, trunc, info = env.step(jax.random.key(1), state, 0, sparams)
  >>> float(obs[-1])  # (c + r) / gamma = (-1 + 1) / 0.5
  0.0
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import spaces

from jaxrl.envs.wrappers import Wrapper
from jaxrl.errors import ConfigError
from jaxrl.types import Array, ArrayLike, PRNGKey

__all__ = ["StockParams", "StockState", "StockWrapper", "split_stock", "with_stock"]


@struct.dataclass
class StockParams:
    """Parameters of :class:`StockWrapper` (every field a pytree leaf).

    Attributes:
      env_params: the wrapped environment's parameters.
      gamma: :math:`\\gamma \\in (0, 1]` of the stock update (use the agent's
        discount).
      stock0_low: lower end of the initial-stock range.
      stock0_high: upper end of the initial-stock range (``>= stock0_low``).
    """

    env_params: Any
    gamma: Any = 1.0
    stock0_low: Any = 0.0
    stock0_high: Any = 0.0

    @property
    def max_steps_in_episode(self) -> Any:
        """The wrapped environment's time limit."""
        return self.env_params.max_steps_in_episode


@struct.dataclass
class StockState:
    """State of :class:`StockWrapper`.

    Attributes:
      env_state: the wrapped environment's state.
      stock: ``[]`` float32, the current stock :math:`c_t`.
    """

    env_state: Any
    stock: Array


def split_stock(obs: ArrayLike) -> tuple[Array, Array]:
    """Split stock-augmented observations ``[..., D + 1]`` into ``([..., D], [...])``.

    Examples:
      >>> x, c = split_stock(jnp.array([1.0, 2.0, -3.0]))
      >>> x.tolist(), float(c)
      ([1.0, 2.0], -3.0)
    """
    obs = jnp.asarray(obs)
    return obs[..., :-1], obs[..., -1]


def with_stock(obs: ArrayLike, stock: ArrayLike) -> Array:
    """Return stock-augmented observations ``[..., D + 1]`` with the stock replaced.

    Examples:
      >>> with_stock(jnp.array([1.0, 2.0, -3.0]), 5.0).tolist()
      [1.0, 2.0, 5.0]
    """
    obs = jnp.asarray(obs)
    stock = jnp.broadcast_to(jnp.asarray(stock, obs.dtype), obs.shape[:-1])
    return obs.at[..., -1].set(stock)


def _check_params(params: StockParams) -> None:
    for name in ("gamma", "stock0_low", "stock0_high"):
        value = getattr(params, name)
        if isinstance(value, jax.core.Tracer):
            continue
        if not np.all(np.isfinite(np.asarray(value, np.float64))):
            raise ConfigError(f"StockParams.{name} must be finite, got {value!r}")
    gamma = params.gamma
    if not isinstance(gamma, jax.core.Tracer):
        g = np.asarray(gamma, np.float64)
        if np.any(g <= 0.0) or np.any(g > 1.0):
            raise ConfigError(f"StockParams.gamma must lie in (0, 1], got {gamma!r}")
    low, high = params.stock0_low, params.stock0_high
    if not isinstance(low, jax.core.Tracer) and not isinstance(high, jax.core.Tracer):
        if np.any(np.asarray(low, np.float64) > np.asarray(high, np.float64)):
            raise ConfigError(
                f"StockParams.stock0_low ({low!r}) must not exceed "
                f"stock0_high ({high!r})"
            )


class StockWrapper(Wrapper):
    """Append the stock :math:`c_t` to the observation (see the module docstring).

    Args:
      env: the environment to wrap; its observation space must be a ``Box``.

    Raises:
      ConfigError: if the observation space (under default params) is not a Box,
        or (when concrete) ``gamma`` is outside ``(0, 1]`` or the initial-stock
        range is empty or not finite.
    """

    def __init__(self, env: Any):
        super().__init__(env)
        space = env.observation_space(env.default_params)
        if not isinstance(space, spaces.Box):
            raise ConfigError(
                f"StockWrapper needs a Box observation space, {env.name} has "
                f"{type(space).__name__}"
            )

    @property
    def default_params(self) -> StockParams:
        """The wrapped default params, ``gamma = 1`` and ``c_0 = 0``."""
        return StockParams(self._env.default_params)

    def observation_space(self, params: StockParams) -> spaces.Box:
        """Return a float32 ``Box`` of shape ``[D + 1]`` (the stock is unbounded)."""
        space = self._env.observation_space(params.env_params)
        size = int(np.prod(space.shape))

        def bound(value: Any, fill: float) -> Array:
            flat = jnp.broadcast_to(jnp.asarray(value, jnp.float32), space.shape)
            return jnp.concatenate(
                [jnp.reshape(flat, (-1,)), jnp.full((1,), fill, jnp.float32)]
            )

        return spaces.Box(
            bound(space.low, -jnp.inf),
            bound(space.high, jnp.inf),
            (size + 1,),
            jnp.float32,
        )

    @staticmethod
    def _augment(obs: Any, stock: Array) -> Array:
        flat = jnp.reshape(jnp.asarray(obs), (-1,)).astype(jnp.float32)
        return jnp.concatenate([flat, jnp.reshape(stock, (1,)).astype(jnp.float32)])

    @staticmethod
    def _draw(key: PRNGKey, params: StockParams) -> Array:
        low = jnp.asarray(params.stock0_low, jnp.float32)
        high = jnp.asarray(params.stock0_high, jnp.float32)
        return low + (high - low) * jax.random.uniform(key, (), jnp.float32)

    def reset(
        self, key: PRNGKey, params: StockParams | None = None
    ) -> tuple[Array, StockState]:
        """Reset the wrapped env and draw the initial stock uniformly from its range."""
        params = self.default_params if params is None else params
        _check_params(params)
        return self._reset(key, params)

    @partial(jax.jit, static_argnames=("self",))
    def _reset(self, key: PRNGKey, params: StockParams) -> tuple[Array, StockState]:
        k_env, k_stock = jax.random.split(key)
        obs, env_state = self._env.reset(k_env, params.env_params)
        stock = self._draw(k_stock, params)
        return self._augment(obs, stock), StockState(env_state=env_state, stock=stock)

    def step(
        self,
        key: PRNGKey,
        state: StockState,
        action: ArrayLike,
        params: StockParams | None = None,
    ) -> tuple[Array, StockState, Array, Array, Array, dict[str, Any]]:
        """Step, update the stock, and restart it with a new draw at episode ends."""
        params = self.default_params if params is None else params
        _check_params(params)
        return self._step(key, state, action, params)

    @partial(jax.jit, static_argnames=("self",))
    def _step(
        self, key: PRNGKey, state: StockState, action: ArrayLike, params: StockParams
    ) -> tuple[Array, StockState, Array, Array, Array, dict[str, Any]]:
        k_env, k_stock = jax.random.split(key)
        obs, env_state, reward, terminated, truncated, info = self._env.step(
            k_env, state.env_state, action, params.env_params
        )
        gamma = jnp.asarray(params.gamma, jnp.float32)
        next_stock = (state.stock + jnp.asarray(reward, jnp.float32)) / gamma
        done = jnp.logical_or(terminated, truncated)
        stock = jnp.where(done, self._draw(k_stock, params), next_stock)
        info = {
            **info,
            "final_observation": self._augment(info["final_observation"], next_stock),
            "stock": next_stock,
        }
        new_state = StockState(env_state=env_state, stock=stock)
        return self._augment(obs, stock), new_state, reward, terminated, truncated, info
