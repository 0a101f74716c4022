"""Environment wrappers that keep the gymnax 1.0 step contract.

Every wrapper here is a subclass of gymnax's ``Environment`` and returns, from
``step(key, state, action, params)``, the gymnax 1.0 tuple
``(obs, state, reward, terminated, truncated, info)``: ``obs`` is the observation
after any auto-reset, ``terminated`` and ``truncated`` stay separate, and
``info["final_observation"]`` is the observation *before* the reset.

How auto-reset is preserved:

* :class:`LogWrapper` and :class:`FlattenObservation` compose through the wrapped
  environment's own ``step``/``reset`` (which already auto-resets; gymnax's
  ``DeepSea`` and other wrappers override ``step``, so ``step_env`` would skip
  their logic). They only post-process the outputs, so they stack in any order.
  Their ``step_env``/``reset_env`` deliberately raise ``NotImplementedError``.
* :class:`StickyActions` (MinAtar's sticky actions) composes through the
  wrapped ``step`` as well; it only replaces the action going in and clears the
  remembered action where the wrapped ``step`` auto-reset.
* :class:`GymnaxV0StepAdapter` wraps an environment written for the gymnax 0.0.9
  ``step_env`` contract and implements ``step_env``/``reset_env``/``is_truncated``
  in the 1.0 form, so the base class's ``step`` does the auto-reset.

Attributes not defined by a wrapper (``num_actions``, ``action_space``, custom
fields, ...) are forwarded to the wrapped environment.
"""

from __future__ import annotations

import dataclasses
import functools
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

from jaxrl.errors import ConfigError
from jaxrl.types import Array, ArrayLike, Metrics, PRNGKey

__all__ = [
    "Wrapper",
    "LogState",
    "LogWrapper",
    "log_wrap",
    "log_unwrap",
    "episode_metrics",
    "FlattenObservation",
    "V0AdapterState",
    "GymnaxV0StepAdapter",
    "StickyState",
    "StickyActions",
    "with_sticky_actions",
]

StepOut = tuple[Any, Any, Array, Array, Array, dict[str, Any]]


class _Forwarding(environment.Environment):
    """An ``Environment`` that forwards its description to a wrapped environment."""

    def __init__(self, env: Any):
        super().__init__()
        self._env = env

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails: forward to the wrapped env. Guard the
        # private slot and dunders so copy/pickle never recurse.
        if name == "_env" or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._env, name)

    @property
    def env(self) -> Any:
        """The directly wrapped environment."""
        return self._env

    @property
    def unwrapped(self) -> Any:
        """The innermost (non-wrapper) environment."""
        inner = self._env
        while isinstance(inner, _Forwarding):
            inner = inner.env
        return inner

    @property
    def default_params(self) -> Any:
        return self._env.default_params

    @property
    def name(self) -> str:
        return f"{type(self).__name__}<{self._env.name}>"

    @property
    def num_actions(self) -> int:
        return self._env.num_actions

    def action_space(self, params: Any) -> Any:
        return self._env.action_space(params)

    def observation_space(self, params: Any) -> Any:
        return self._env.observation_space(params)

    def state_space(self, params: Any) -> Any:
        return self._env.state_space(params)


class Wrapper(_Forwarding):
    """Base wrapper: ``reset``/``step`` call the wrapped ``reset``/``step``.

    Subclasses post-process what the wrapped ``step`` returns, so the wrapped
    environment's auto-reset (and any ``step`` override it has) is kept.

    Examples:
      >>> import gymnax, jax
      >>> env, params = gymnax.make("CartPole-v1")
      >>> wrapped = Wrapper(env)
      >>> wrapped.num_actions
      2
      >>> obs, state = wrapped.reset(jax.random.key(0), params)
      >>> obs.shape
      (4,)
    """

    @partial(jax.jit, static_argnames=("self",))
    def reset(self, key: PRNGKey, params: Any = None) -> tuple[Any, Any]:
        """Reset the wrapped environment. See gymnax ``Environment.reset``."""
        return self._env.reset(key, params)

    @partial(jax.jit, static_argnames=("self",))
    def step(
        self, key: PRNGKey, state: Any, action: ArrayLike, params: Any = None
    ) -> StepOut:
        """Step the wrapped environment. See gymnax ``Environment.step``."""
        return self._env.step(key, state, action, params)

    def step_env(self, key: PRNGKey, state: Any, action: ArrayLike, params: Any) -> Any:
        """Not available: wrappers compose through ``step`` (which auto-resets)."""
        del key, state, action, params
        raise NotImplementedError(
            f"{type(self).__name__} composes through step(), not step_env()"
        )

    def reset_env(self, key: PRNGKey, params: Any) -> Any:
        """Not available: wrappers compose through ``reset``."""
        del key, params
        raise NotImplementedError(
            f"{type(self).__name__} composes through reset(), not reset_env()"
        )


# ------------------------------------------------------------------------ LogWrapper


@struct.dataclass
class LogState:
    """State of :class:`LogWrapper`: the wrapped state plus the running episode sums.

    Attributes:
      env_state: the wrapped environment's state.
      episode_return: float32, undiscounted return of the current episode so far.
      episode_length: int32, steps taken in the current episode so far.
      episode_cost: float32, summed ``info["cost"]`` of the current episode so far.
    """

    env_state: Any
    episode_return: Array
    episode_length: Array
    episode_cost: Array


class LogWrapper(Wrapper):
    """Track episode return, length and cost; report them in ``info``.

    After each ``step`` the info dict gains (all scalars per environment):

    * ``returned_episode`` (bool): this step ended an episode
      (``terminated | truncated``).
    * ``episode_return`` (float32), ``episode_length`` (int32), ``episode_cost``
      (float32): when ``returned_episode`` is True, the totals of the episode that
      ended at this step (this step's reward included); otherwise the running
      totals of the episode in progress.

    The cost of a step is ``info["cost"]`` when the wrapped environment provides it,
    else 0. The running totals restart at zero together with the wrapped
    environment's auto-reset, so no episode's sums leak into the next one. Report
    metrics with ``info["returned_episode"]`` as the mask (completed episodes only).

    Examples:
      >>> import gymnax, jax
      >>> env, params = gymnax.make("CartPole-v1")
      >>> env = LogWrapper(env)
      >>> k_reset, k_step = jax.random.split(jax.random.key(0))
      >>> obs, state = env.reset(k_reset, params)
      >>> obs, state, reward, term, trunc, info = env.step(k_step, state, 1, params)
      >>> int(info["episode_length"]), float(info["episode_return"])
      (1, 1.0)
    """

    @partial(jax.jit, static_argnames=("self",))
    def reset(self, key: PRNGKey, params: Any = None) -> tuple[Any, LogState]:
        """Reset the wrapped environment and zero the episode sums."""
        obs, env_state = self._env.reset(key, params)
        state = LogState(
            env_state=env_state,
            episode_return=jnp.zeros((), jnp.float32),
            episode_length=jnp.zeros((), jnp.int32),
            episode_cost=jnp.zeros((), jnp.float32),
        )
        return obs, state

    @partial(jax.jit, static_argnames=("self",))
    def step(
        self, key: PRNGKey, state: LogState, action: ArrayLike, params: Any = None
    ) -> tuple[Any, LogState, Array, Array, Array, dict[str, Any]]:
        """Step the wrapped environment and update the episode sums (see class doc)."""
        obs, env_state, reward, terminated, truncated, info = self._env.step(
            key, state.env_state, action, params
        )
        done = jnp.logical_or(terminated, truncated)
        cost = (
            jnp.asarray(info["cost"], jnp.float32)
            if "cost" in info
            else jnp.float32(0.0)
        )
        ret = state.episode_return + jnp.asarray(reward, jnp.float32)
        length = state.episode_length + 1
        total_cost = state.episode_cost + cost
        new_state = LogState(
            env_state=env_state,
            episode_return=jnp.where(done, 0.0, ret),
            episode_length=jnp.where(done, 0, length),
            episode_cost=jnp.where(done, 0.0, total_cost),
        )
        info = {
            **info,
            "returned_episode": done,
            "episode_return": ret,
            "episode_length": length,
            "episode_cost": total_cost,
        }
        return obs, new_state, reward, terminated, truncated, info


def log_wrap(env: Any) -> LogWrapper:
    """Return ``env`` wrapped in :class:`LogWrapper` (unchanged if it already is one)."""
    return env if isinstance(env, LogWrapper) else LogWrapper(env)


def log_unwrap(env: Any) -> Any:
    """Return the environment inside a :class:`LogWrapper` (``env`` itself otherwise)."""
    return env.env if isinstance(env, LogWrapper) else env


def episode_metrics(info: dict[str, Array], *, with_cost: bool = False) -> Metrics:
    """Return mean return/length (and count) of the episodes that ended in ``info``.

    The agents' per-iteration ``"episode/..."`` metrics: the mean of
    :class:`LogWrapper`'s totals over the entries whose ``returned_episode`` is
    set.

    Args:
      info: :class:`LogWrapper` step info with any leading axes (``[E]`` for one
        step, ``[T, E]`` for a rollout).
      with_cost: static switch: also report ``"episode/cost"`` (the mean of
        ``info["episode_cost"]``, the summed ``info["cost"]``).

    Returns:
      ``"episode/return"``, ``"episode/length"`` (float32, ``NaN`` when no
      episode ended), ``"episode/count"`` (int32) and, with ``with_cost``,
      ``"episode/cost"``.

    Examples:
      >>> import jax.numpy as jnp
      >>> info = {"returned_episode": jnp.array([True, False, True]),
      ...         "episode_return": jnp.array([1.0, 5.0, 3.0]),
      ...         "episode_length": jnp.array([2, 9, 4])}
      >>> m = episode_metrics(info)
      >>> float(m["episode/return"]), float(m["episode/length"]), int(m["episode/count"])
      (2.0, 3.0, 2)
    """
    done = jnp.asarray(info["returned_episode"], bool)
    count = jnp.sum(done)
    safe = jnp.maximum(count, 1).astype(jnp.float32)

    def mean_of(x: Array) -> Array:
        total = jnp.sum(jnp.where(done, jnp.asarray(x, jnp.float32), 0.0))
        return jnp.where(count > 0, total / safe, jnp.nan)

    metrics = {
        "episode/return": mean_of(info["episode_return"]),
        "episode/length": mean_of(info["episode_length"]),
        "episode/count": count.astype(jnp.int32),
    }
    if with_cost:
        metrics["episode/cost"] = mean_of(info["episode_cost"])
    return metrics


# ----------------------------------------------------------------------------- flatten


class FlattenObservation(Wrapper):
    """Flatten array observations to one axis, e.g. MinAtar ``[10, 10, C] -> [100*C]``.

    Both the returned observation and ``info["final_observation"]`` are flattened.
    The wrapped observation space must be a ``Box``.

    Args:
      env: the environment to wrap.
      dtype: optional dtype to cast observations to (e.g. ``jnp.float32``); by
        default the dtype is kept.

    Raises:
      ConfigError: if the observation space (under default params) is not a Box.

    Examples:
      >>> import gymnax, jax
      >>> env, params = gymnax.make("Breakout-MinAtar")
      >>> env = FlattenObservation(env)
      >>> env.observation_space(params).shape
      (400,)
      >>> obs, state = env.reset(jax.random.key(0), params)
      >>> obs.shape
      (400,)
    """

    def __init__(self, env: Any, dtype: Any = None):
        super().__init__(env)
        space = env.observation_space(env.default_params)
        if not isinstance(space, spaces.Box):
            raise ConfigError(
                f"FlattenObservation needs a Box observation space, {env.name} has "
                f"{type(space).__name__}"
            )
        self._dtype = None if dtype is None else jnp.dtype(dtype)

    def _flat(self, obs: Array) -> Array:
        obs = jnp.reshape(obs, (-1,))
        return obs if self._dtype is None else obs.astype(self._dtype)

    def observation_space(self, params: Any) -> spaces.Box:
        """Return the wrapped ``Box`` with shape (and array bounds) flattened."""
        space = self._env.observation_space(params)
        size = int(np.prod(space.shape))

        def flat_bound(bound: Any) -> Any:
            return jnp.reshape(bound, (-1,)) if jnp.ndim(bound) > 0 else bound

        dtype = space.dtype if self._dtype is None else self._dtype
        return spaces.Box(flat_bound(space.low), flat_bound(space.high), (size,), dtype)

    @partial(jax.jit, static_argnames=("self",))
    def reset(self, key: PRNGKey, params: Any = None) -> tuple[Array, Any]:
        """Reset and flatten the first observation."""
        obs, state = self._env.reset(key, params)
        return self._flat(obs), state

    @partial(jax.jit, static_argnames=("self",))
    def step(
        self, key: PRNGKey, state: Any, action: ArrayLike, params: Any = None
    ) -> StepOut:
        """Step and flatten both ``obs`` and ``info["final_observation"]``."""
        obs, state, reward, terminated, truncated, info = self._env.step(
            key, state, action, params
        )
        info = {**info, "final_observation": self._flat(info["final_observation"])}
        return self._flat(obs), state, reward, terminated, truncated, info


# --------------------------------------------------------------------- 0.0.9 adapter


@struct.dataclass
class V0AdapterState:
    """State of :class:`GymnaxV0StepAdapter`.

    Attributes:
      env_state: the wrapped (gymnax 0.0.9 style) environment's state.
      truncated: bool, whether the step that produced this state hit a time limit.
    """

    env_state: Any
    truncated: Array

    @property
    def time(self) -> Any:
        """The wrapped state's ``time`` (step counter)."""
        return self.env_state.time


class GymnaxV0StepAdapter(_Forwarding):
    """Run an environment written for gymnax 0.0.9's ``step_env`` under gymnax 1.0.

    gymnax 0.0.9 environments implement
    ``step_env(key, state, action, params) -> (obs, state, reward, done, info)``
    where ``done`` mixes true terminations and time limits. This adapter calls the
    wrapped ``step_env``/``reset_env`` (never the wrapped ``step``, whose 0.0.9
    auto-reset would lose the pre-reset observation) and splits ``done``:

    1. if the step's ``info`` has a ``"truncated"`` entry:
       ``truncated = done & info["truncated"]``;
    2. else, if the new state has ``time`` and the params have
       ``max_steps_in_episode``: ``truncated = done & (time >= max_steps_in_episode)``;
    3. else: ``truncated = False``;

    and ``terminated = done & ~truncated``. Under rule 2 an episode that terminates
    naturally on exactly its last allowed step is reported as truncated (the 0.0.9
    contract cannot tell the two apart); provide ``info["truncated"]`` to avoid it.
    The rule is chosen from the info keys and state/params fields, which are fixed
    at trace time.

    The base class's ``step`` then performs the gymnax 1.0 auto-reset and sets
    ``info["final_observation"]``, ``info["terminated"]`` and ``info["truncated"]``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from flax import struct
      >>> from gymnax.environments import environment
      >>> @struct.dataclass
      ... class S:
      ...     time: int
      >>> class Old(environment.Environment):  # 0.0.9: done includes time limit
      ...     default_params = environment.EnvParams(max_steps_in_episode=2)
      ...     def reset_env(self, key, params):
      ...         return jnp.zeros(()), S(time=0)
      ...     def step_env(self, key, state, action, params):
      ...         s = S(time=state.time + 1)
      ...         done = s.time >= params.max_steps_in_episode
      ...         return jnp.float32(s.time), s, 1.0, done, {}
      >>> env = GymnaxV0StepAdapter(Old())
      >>> k0, k1, k2 = jax.random.split(jax.random.key(0), 3)
      >>> obs, state = env.reset(k0)
      >>> obs, state, r, term, trunc, info = env.step(k1, state, 0)
      >>> obs, state, r, term, trunc, info = env.step(k2, state, 0)
      >>> bool(term), bool(trunc), float(info["final_observation"]), float(obs)
      (False, True, 2.0, 0.0)
    """

    def reset_env(self, key: PRNGKey, params: Any) -> tuple[Any, V0AdapterState]:
        """Reset the wrapped environment (``reset_env``)."""
        obs, env_state = self._env.reset_env(key, params)
        return obs, V0AdapterState(env_state=env_state, truncated=jnp.zeros((), bool))

    def step_env(
        self, key: PRNGKey, state: V0AdapterState, action: ArrayLike, params: Any
    ) -> tuple[Any, V0AdapterState, Array, Array, dict[str, Any]]:
        """Call the wrapped 0.0.9 ``step_env`` and split ``done`` (see class doc)."""
        obs, env_state, reward, done, info = self._env.step_env(
            key, state.env_state, action, params
        )
        done = jnp.asarray(done, bool)
        if "truncated" in info:
            limit = jnp.asarray(info["truncated"], bool)
        elif hasattr(env_state, "time") and hasattr(params, "max_steps_in_episode"):
            limit = jnp.asarray(env_state.time >= params.max_steps_in_episode, bool)
        else:
            limit = jnp.zeros((), bool)
        truncated = jnp.logical_and(done, limit)
        terminated = jnp.logical_and(done, jnp.logical_not(truncated))
        new_state = V0AdapterState(env_state=env_state, truncated=truncated)
        return obs, new_state, reward, terminated, info

    def is_truncated(self, state: V0AdapterState, params: Any) -> Array:
        """Return the flag stored by :meth:`step_env` for the state it produced."""
        del params
        return state.truncated


# ----------------------------------------------------------------------------- sticky actions

# fold_in data of the sticky coin's key: the wrapped env gets the step key
# itself (so p = 0 is bitwise the plain env), the coin a key derived from it.
_STICKY_SALT = 0x571C4


@struct.dataclass
class StickyState:
    """State of :class:`StickyActions`.

    Attributes:
      env_state: the wrapped environment's state.
      last_action: int32, the action executed at the previous step; 0 (the
        no-op of every MinAtar game) after a reset or an auto-reset.
    """

    env_state: Any
    last_action: Array


@functools.cache
def _sticky_params_class(base: type) -> type:
    """``base`` (an ``EnvParams`` class) plus the field ``sticky_action_prob``."""
    cls = type(
        f"Sticky{base.__name__}",
        (base,),
        {
            "__annotations__": {"sticky_action_prob": Any},
            "sticky_action_prob": 0.0,
            "__module__": __name__,
            "__doc__": f"{base.__name__} plus ``sticky_action_prob`` "
            "(:class:`StickyActions`).",
        },
    )
    return struct.dataclass(cls)


def with_sticky_actions(params: Any, prob: ArrayLike) -> Any:
    """Return ``params`` with the field ``sticky_action_prob = prob`` added.

    The result is an instance of a subclass of ``type(params)`` (every field
    kept), so the wrapped environment reads it as its own params;
    ``sticky_action_prob`` is a pytree leaf (traced, vmappable).
    """
    if hasattr(params, "sticky_action_prob"):
        return params.replace(sticky_action_prob=prob)
    fields = {f.name: getattr(params, f.name) for f in dataclasses.fields(params)}
    return _sticky_params_class(type(params))(**fields, sticky_action_prob=prob)


class StickyActions(Wrapper):
    """Sticky actions (Machado et al. 2018), as in the original MinAtar.

    At every step, with probability ``p = params.sticky_action_prob`` the
    environment executes the previously executed action instead of the one
    passed in (MinAtar: ``sticky_action_prob = 0.1``). The remembered action is
    0 after ``reset`` and after every auto-reset inside ``step``, so no action
    sticks across episodes. The agent's transition keeps the action it chose.

    ``p`` lives in the params (:func:`with_sticky_actions`; ``jaxrl.envs.make``
    adds it for ``sticky_action_prob=...``), so it is traced: a sweep over it
    is a vmap. The coin is ``uniform(fold_in(key, salt)) < p`` and the wrapped
    ``step`` receives ``key`` unchanged, so with ``p = 0`` the trajectory is
    bitwise that of the plain environment and with ``p = 1`` the executed
    action is always the previous one (0 for a whole episode).

    Raises:
      ConfigError: if the action space (under default params) is not Discrete.

    Examples:
      >>> import gymnax, jax
      >>> env, params = gymnax.make("Breakout-MinAtar")
      >>> env, params = StickyActions(env), with_sticky_actions(params, 1.0)
      >>> k0, k1 = jax.random.split(jax.random.key(0))
      >>> obs, state = env.reset(k0, params)
      >>> obs, state, *_ = env.step(k1, state, 2, params)
      >>> int(state.last_action)  # p = 1: the no-op after the reset was repeated
      0
    """

    def __init__(self, env: Any):
        super().__init__(env)
        space = env.action_space(env.default_params)
        if not isinstance(space, spaces.Discrete):
            raise ConfigError(
                f"StickyActions needs a Discrete action space, {env.name} has "
                f"{type(space).__name__}"
            )

    @property
    def default_params(self) -> Any:
        return with_sticky_actions(self._env.default_params, 0.0)

    @partial(jax.jit, static_argnames=("self",))
    def reset(self, key: PRNGKey, params: Any = None) -> tuple[Any, StickyState]:
        """Reset the wrapped environment; the remembered action is 0."""
        obs, env_state = self._env.reset(key, params)
        return obs, StickyState(env_state=env_state, last_action=jnp.int32(0))

    @partial(jax.jit, static_argnames=("self",))
    def step(
        self, key: PRNGKey, state: StickyState, action: ArrayLike, params: Any = None
    ) -> tuple[Any, StickyState, Array, Array, Array, dict[str, Any]]:
        """Execute ``action``, or with probability ``p`` the previous one (class doc)."""
        if params is None:
            params = self.default_params
        coin = jax.random.uniform(jax.random.fold_in(key, _STICKY_SALT))
        chosen = jnp.asarray(action, jnp.int32)
        executed = jnp.where(
            coin < params.sticky_action_prob, state.last_action, chosen
        )
        obs, env_state, reward, terminated, truncated, info = self._env.step(
            key, state.env_state, executed, params
        )
        done = jnp.logical_or(terminated, truncated)
        last = jnp.where(done, jnp.int32(0), executed)
        new_state = StickyState(env_state=env_state, last_action=last)
        return obs, new_state, reward, terminated, truncated, info
