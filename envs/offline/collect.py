"""Collecting offline data: from a policy, from a training run's replay stream, and picking its snapshots.

* **From a policy**: :func:`collect_dataset` rolls a policy
  ``policy(key, obs[E]) -> action[E]`` in fresh environments and flattens the
  time-major rollout with :func:`from_rollout` (env-major, explicit episode ids
  and timesteps); :func:`make_collector` compiles it once for a whole family of
  policies ``family(theta)``; :func:`uniform_policy` is the ``random`` kind's
  behaviour policy.
* **From a training run**: :func:`buffer_tail` recovers the items a replay
  buffer received during the last chunk of training; the chunks concatenated
  and flattened with :func:`from_rollout` are the ``medium-replay`` data, and
  :func:`last_steps` caps them.
* **Reference returns and snapshot picking** (host side): :func:`mean_return`
  (``R_random``, ``R_expert``), :func:`grid_returns` (the return of a noisy
  policy for a grid of action-replacement probabilities,
  :func:`jaxrl.envs.offline.controllers.noisy_policy`), and the choice of the
  *expert* and *medium* snapshots of a training run from their (noisy) returns:
  :func:`expert_candidates`, :func:`pick_expert`, :func:`medium_candidates`,
  :func:`pick_medium`, :func:`first_reaching` and :data:`MEDIUM_BAND`.

Nothing here trains an agent: a training run enters as its snapshots' returns
and its replay chunks (``scripts/make_datasets.py`` runs the agents).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from gymnax.environments import spaces

from jaxrl import rollout
from jaxrl.buffer import BufferState
from jaxrl.envs.offline.dataset import _EPISODE_KEYS, EPISODE_ID, TIMESTEP
from jaxrl.errors import ConfigError
from jaxrl.rollout import Policy
from jaxrl.transition import Transition, episode_end
from jaxrl.types import Array, ArrayLike, PRNGKey

__all__ = [
    "MEDIUM_BAND",
    "uniform_policy",
    "from_rollout",
    "collect_dataset",
    "make_collector",
    "buffer_tail",
    "last_steps",
    "max_episode_steps",
    "mean_return",
    "grid_returns",
    "pick_expert",
    "pick_medium",
    "expert_candidates",
    "medium_candidates",
    "first_reaching",
]


def uniform_policy(env: Any, env_params: Any) -> Policy:
    """Return ``policy(key, obs[E]) -> action[E]`` drawing uniform random actions.

    ``Discrete(n)``: int32 actions uniform on ``{0, ..., n-1}``. ``Box``: float32
    actions uniform on ``[low, high]`` with the space's shape, ``[E, *shape]``.

    Raises:
      ConfigError: for other action spaces or an unbounded ``Box``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxrl import envs
      >>> env, params = envs.make("Pendulum-v1")
      >>> a = uniform_policy(env, params)(jax.random.key(0), jnp.zeros((5, 3)))
      >>> a.shape, a.dtype, bool((jnp.abs(a) <= 2.0).all())
      ((5, 1), dtype('float32'), True)
    """
    space = env.action_space(env_params)
    if isinstance(space, spaces.Discrete):
        n = int(space.n)

        def discrete(key: PRNGKey, obs: Any) -> Array:
            num = jax.tree.leaves(obs)[0].shape[0]
            return jax.random.randint(key, (num,), 0, n, dtype=jnp.int32)

        return discrete
    if isinstance(space, spaces.Box):
        shape = tuple(int(d) for d in space.shape)
        low = np.broadcast_to(np.asarray(space.low, np.float32), shape)
        high = np.broadcast_to(np.asarray(space.high, np.float32), shape)
        if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
            raise ConfigError(
                f"{env.name}: uniform_policy needs a bounded Box action space"
            )

        def box(key: PRNGKey, obs: Any) -> Array:
            num = jax.tree.leaves(obs)[0].shape[0]
            return jax.random.uniform(
                key, (num, *shape), jnp.float32, minval=low, maxval=high
            )

        return box
    raise ConfigError(
        f"{env.name} has a {type(space).__name__} action space; datasets support "
        "Discrete and Box actions"
    )


def from_rollout(
    transitions: Transition, timestep0: ArrayLike | None = None
) -> Transition:
    """Flatten a time-major rollout ``[T, E]`` into an env-major dataset ``[E*T]``.

    Each environment's stream becomes one contiguous block (environment ``e``
    occupies rows ``e*T .. (e+1)*T - 1``), so every episode is a contiguous run
    of rows. Adds ``extras["episode_id"]``: episodes numbered ``0, 1, ...`` in
    row order (a new episode starts at the first step of each stream and after
    each step with ``terminated | truncated``), and ``extras["timestep"]``.

    Args:
      transitions: ``Transition[T, E]`` from :func:`jaxrl.rollout.collect` (or
        replay-buffer chunks reshaped to ``[T, E]``), without the two extras.
      timestep0: ``[E]`` int, the in-episode step of each stream's first
        transition (default 0: every stream starts right after a reset).

    Returns:
      ``Transition[E*T]``. Pure and jittable.

    Raises:
      ConfigError: if ``reward`` is not ``[T, E]`` or the extras already exist.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxrl.transition import Transition
      >>> done = jnp.array([[False, True], [True, False], [False, False]])
      >>> tr = Transition(obs=jnp.zeros((3, 2)), action=jnp.zeros((3, 2), jnp.int32),
      ...                 reward=jnp.ones((3, 2)), next_obs=jnp.zeros((3, 2)),
      ...                 terminated=done, truncated=jnp.zeros((3, 2), bool))
      >>> out = from_rollout(tr)
      >>> out.extras["episode_id"].tolist(), out.extras["timestep"].tolist()
      ([0, 0, 1, 2, 3, 3], [0, 1, 0, 0, 0, 1])
    """
    if jnp.ndim(transitions.reward) != 2:
        raise ConfigError(
            "from_rollout needs a time-major Transition[T, E] (reward of rank 2), "
            f"got reward shape {jnp.shape(transitions.reward)}"
        )
    clash = [k for k in _EPISODE_KEYS if k in transitions.extras]
    if clash:
        raise ConfigError(f"from_rollout: transitions already carry extras {clash}")
    num_steps, num_envs = jnp.shape(transitions.reward)
    done = jnp.swapaxes(episode_end(transitions), 0, 1)  # [E, T]
    start = jnp.concatenate(
        [jnp.ones((num_envs, 1), bool), done[:, :-1]], axis=1
    )  # [E, T]
    episode_id = jnp.cumsum(start.reshape(-1), dtype=jnp.int32) - 1
    idx = jnp.arange(num_steps, dtype=jnp.int32)
    last_start = jax.lax.cummax(jnp.where(start, idx[None, :], 0), axis=1)
    first_segment = jnp.cumsum(start, axis=1, dtype=jnp.int32) == 1
    if timestep0 is None:
        t0 = jnp.zeros((num_envs,), jnp.int32)
    else:
        t0 = jnp.broadcast_to(jnp.asarray(timestep0, jnp.int32), (num_envs,))
    timestep = idx[None, :] - last_start + jnp.where(first_segment, t0[:, None], 0)

    def env_major(x: Array) -> Array:
        x = jnp.asarray(x)
        return jnp.swapaxes(x, 0, 1).reshape((num_envs * num_steps, *x.shape[2:]))

    flat = jax.tree.map(env_major, transitions)
    extras = {
        **flat.extras,
        EPISODE_ID: episode_id,
        TIMESTEP: timestep.reshape(-1).astype(jnp.int32),
    }
    return flat.replace(extras=extras)


def collect_dataset(
    key: PRNGKey,
    env: Any,
    env_params: Any,
    policy: Policy,
    num_steps: int,
    num_envs: int,
    extras_keys: tuple[str, ...] = (),
) -> Transition:
    """Roll ``policy`` in ``num_envs`` fresh environments and return a dataset.

    Resets ``E = num_envs`` copies, runs :func:`jaxrl.rollout.collect` for
    ``T = num_steps`` steps (auto-reset inside) and flattens with
    :func:`from_rollout` (env-major, explicit episode ids and timesteps).

    Args:
      key: typed PRNG key (split into a reset key and a rollout key).
      env: a gymnax environment.
      env_params: its parameters.
      policy: ``policy(key, obs[E]) -> action[E]``; int32 actions for
        ``Discrete`` spaces, float32 ``[E, act_dim]`` for ``Box`` spaces.
      num_steps: ``T``, steps per environment (static).
      num_envs: ``E``, parallel environments (static).
      extras_keys: ``info`` keys copied into ``extras`` (e.g. ``("cost",)``).

    Returns:
      ``Transition[E*T]``. Pure and jittable (close over ``env`` and ``policy``).

    Raises:
      ConfigError: if ``num_steps`` or ``num_envs`` is not a positive int.
    """
    k_reset, k_run = jax.random.split(key)
    obs, env_state = rollout.reset(k_reset, env, env_params, num_envs)
    transitions, _, _, _ = rollout.collect(
        k_run, env, env_params, env_state, obs, policy, num_steps, extras_keys
    )
    return from_rollout(transitions)


def make_collector(
    env: Any,
    env_params: Any,
    family: Callable[[Any], Policy],
    size: int,
    num_envs: int,
) -> Callable[[PRNGKey, Any], Transition]:
    """Return jitted ``collect(key, theta) -> Transition[E*T]`` rolling ``family(theta)``.

    One compilation serves every member of the family (``theta`` is traced,
    e.g. a snapshot's parameters and an action-replacement probability).
    ``T = max(1, size // num_envs)`` steps in each of ``E = num_envs``
    environments (:func:`collect_dataset`).
    """
    steps = max(1, size // num_envs)
    return jax.jit(
        lambda k, theta: collect_dataset(
            k, env, env_params, family(theta), steps, num_envs
        )
    )


def buffer_tail(state: BufferState, num_items: int) -> Transition:
    """Return the ``num_items`` items added last to a replay buffer, oldest first.

    After an agent's chunk of ``I`` iterations that each added ``E`` items
    (one per environment), ``buffer_tail(state, I * E).reshape([I, E])`` is that
    chunk's time-major rollout. Concatenating the chunks from the start of
    training and flattening with :func:`from_rollout` rebuilds everything the
    agent stored, which is how ``medium-replay`` is made; it requires
    ``I * E <= capacity`` so that no item of the chunk was overwritten.

    Args:
      state: a :class:`jaxrl.buffer.BufferState`.
      num_items: a Python int, ``1 <= num_items <= capacity``.

    Returns:
      The items, leaves ``[num_items, ...]``. Jittable.

    Raises:
      ConfigError: if ``num_items`` exceeds the capacity, or (for a concrete
        state) the number of items ever stored in the buffer.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxrl import buffer
      >>> s = buffer.add(buffer.init(jnp.int32(0), 4), jnp.arange(6, dtype=jnp.int32))
      >>> buffer_tail(s, 3).tolist()
      [3, 4, 5]
    """
    leaves = jax.tree.leaves(state.data)
    if not leaves:
        raise ConfigError("buffer_tail: the buffer holds no arrays")
    cap = int(leaves[0].shape[0])
    if isinstance(num_items, bool) or not isinstance(num_items, int):
        raise ConfigError(f"num_items must be a Python int, got {num_items!r}")
    if not 1 <= num_items <= cap:
        raise ConfigError(
            f"buffer_tail: num_items ({num_items}) must be in [1, capacity={cap}]"
        )
    try:
        count = int(state.count)
    except jax.errors.ConcretizationTypeError:
        count = None
    if count is not None and num_items > count:
        raise ConfigError(
            f"buffer_tail: asked for {num_items} items, the buffer holds {count}"
        )
    idx = (state.insert - num_items + jnp.arange(num_items, dtype=jnp.int32)) % cap
    return jax.tree.map(lambda x: x[idx], state.data)


def last_steps(data: Transition, num_envs: int, cap: int) -> Transition:
    """Keep the last ``cap // num_envs`` rows of every env-major stream block.

    ``data`` is :func:`from_rollout` output (``num_envs`` blocks of ``T`` rows). The result keeps each stream's most recent transitions, so its
    first episodes may start mid-episode (their ``timestep`` is not 0).
    """
    steps = int(data.reward.shape[0]) // num_envs
    keep = max(1, min(steps, cap // num_envs))
    rows = np.concatenate(
        [e * steps + np.arange(steps - keep, steps) for e in range(num_envs)]
    )
    host = jax.device_get(data)
    return jax.device_put(jax.tree.map(lambda x: x[rows], host))


# ----------------------------------------------------------------------------- references


def max_episode_steps(env_params: Any) -> int:
    """Step limit for evaluation episodes: the env's time limit plus one (default 10,000)."""
    return int(getattr(env_params, "max_steps_in_episode", 10_000)) + 1


def mean_return(
    key: PRNGKey, env: Any, env_params: Any, policy: Policy, episodes: int
) -> float:
    """Mean undiscounted return of ``policy`` over ``episodes`` fresh episodes (host float).

    E.g. ``R_random`` with :func:`uniform_policy`. One jitted
    :func:`jaxrl.rollout.evaluate` call.
    """
    out = jax.jit(
        lambda k: rollout.evaluate(
            k, env, env_params, policy, episodes, max_episode_steps(env_params)
        )
    )(key)
    return float(np.mean(np.asarray(out["return"], np.float64)))


def grid_returns(
    env: Any,
    env_params: Any,
    family: Callable[[Any], Policy],
    params: Any,
    grid: np.ndarray,
    episodes: int,
    key: PRNGKey,
) -> np.ndarray:
    """Mean return of ``family((params, p))`` for every ``p`` of ``grid`` (one vmapped call).

    ``family((params, p))`` is typically a policy whose actions are replaced by
    uniform ones with probability ``p``
    (:func:`jaxrl.envs.offline.controllers.noisy_policy`), so the grid's ends
    are the policy itself and uniform actions.

    Returns:
      float64 ``[len(grid)]``: each ``p``'s mean over ``episodes`` episodes
      (keys split from ``key``, one per grid point).
    """
    max_steps = max_episode_steps(env_params)

    def one(theta: Any, p: Array, k: PRNGKey) -> Array:
        out = rollout.evaluate(
            k, env, env_params, family((theta, p)), episodes, max_steps
        )
        return jnp.mean(out["return"])

    batched = jax.jit(jax.vmap(one, in_axes=(None, 0, 0)))
    values = batched(
        params, jnp.asarray(grid, jnp.float32), jax.random.split(key, grid.size)
    )
    return np.asarray(values, np.float64)


# ----------------------------------------------------------------------------- snapshots


MEDIUM_BAND = (100.0 / 3.0, 50.0)
"""Normalised scores of a "medium" policy: about a third to a half of expert."""


def expert_candidates(returns: Sequence[float], n: int) -> list[int]:
    """The ``n`` snapshot indices with the highest (noisy) returns, in index order."""
    order = np.argsort(-np.asarray(returns, np.float64), kind="stable")
    return sorted(int(i) for i in order[:n])


def pick_expert(returns: Mapping[int, float]) -> int:
    """Return the snapshot index with the highest return (the latest on ties).

    Examples:
      >>> pick_expert({0: 10.0, 3: 500.0, 5: 500.0, 7: 480.0})
      5
    """
    if not returns:
        raise ConfigError("no training snapshots to pick an expert from")
    best = max(returns.values())
    return max(i for i, r in returns.items() if r == best)


def medium_candidates(
    returns: Sequence[float], expert: int, target: float, n: int
) -> list[int]:
    """The ``n`` snapshots before ``expert`` with returns closest to ``target``."""
    r = np.asarray(returns, np.float64)
    pool = np.arange(expert) if expert > 0 else np.delete(np.arange(r.size), expert)
    order = pool[np.argsort(np.abs(r[pool] - target), kind="stable")]
    return sorted(int(i) for i in order[:n])


def pick_medium(returns: Mapping[int, float], expert: int, target: float) -> int:
    """Return the snapshot before ``expert`` whose return is closest to ``target``.

    Only snapshots taken before the expert count (after it if the expert is
    the first one); on ties the earliest wins.

    Examples:
      >>> pick_medium({0: 10.0, 1: 150.0, 2: 260.0, 4: 500.0}, 4, 212.0)
      2
    """
    before = sorted(i for i in returns if i < expert)
    pool = before or sorted(i for i in returns if i != expert)
    if not pool:
        raise ConfigError("need at least two training snapshots to pick a medium one")
    return min(pool, key=lambda i: (abs(returns[i] - target), i))


def first_reaching(returns: Sequence[float], expert: int, target: float) -> int:
    """The first snapshot (up to ``expert``) whose return reaches ``target``.

    Examples:
      >>> first_reaching([10.0, 12.0, 300.0, 90.0, 480.0], 4, 200.0)
      2
    """
    reached = [i for i in range(expert + 1) if returns[i] >= target]
    return reached[0] if reached else expert
