"""Offline (D4RL-style) datasets on our on-accelerator environments.

A :class:`Dataset` is one device-resident :class:`~jaxrl.transition.Transition`
with a leading axis ``[N]`` (``data``) plus host-side, frozen :class:`Metadata`:
the environment id and keyword arguments, the dataset kind, the number of
transitions and complete episodes, the reference returns ``R_random`` and
``R_expert`` used for normalised scores, a description of the behaviour policy,
the generator seed and a SHA-256 checksum of the content. Offline agents sample
it with :func:`jaxrl.buffer.sample_dataset` (``randint`` indices), so the
offline loss sees exactly the ``Transition`` batches of the online agents.

Layout of ``data`` (every leaf ``[N, ...]``):

* ``obs``, ``action`` (int32 for ``Discrete`` spaces, float32 ``[N, act_dim]``
  for ``Box`` spaces), ``reward`` (float32), ``next_obs`` (the observation
  *before* any auto-reset, so no ``(s, s')`` pair straddles two episodes),
  ``terminated`` and ``truncated`` (bool, kept separate: D4RL's ``terminals``
  and ``timeouts``; bootstrap with ``gamma * (1 - terminated)``).
* ``extras["episode_id"]`` (int32): the episode a transition belongs to; the
  transitions of an episode are contiguous and in time order.
  ``extras["timestep"]`` (int32): its index inside the episode (0 at a reset).
  Mixed imitation sets add ``extras["is_expert"]`` (bool, for logging only).

Episode boundaries are explicit: an episode is *complete* if its last
transition has ``terminated`` or ``truncated`` set. Each collection stream ends
with one unfinished episode per environment copy; its transitions are valid
``(s, a, r, s')`` samples (they bootstrap from ``next_obs``), but they are
excluded from :func:`episode_returns` and from the episode counts.

Kinds (:data:`KINDS`): ``random``, ``medium`` (a policy snapshot whose return
is about a third to a half of the expert's, measured by the normalised score),
``expert``, ``medium-replay`` (every transition the agent stored in its replay
buffer from the start of training up to the medium snapshot, recovered chunk by
chunk with :func:`buffer_tail` and flattened with :func:`from_rollout`; this is
the data the agent actually saw, exploration included, which re-collecting with
the sequence of training-time policies would only approximate),
``medium-expert`` (medium and expert
concatenated, :func:`concat`), and the imitation splits for ReCOIL:
``expert-1traj`` (:func:`expert_trajectories`) and ``random-plus-expert`` /
``medium-plus-expert`` (:func:`mix`). Data produced by a hand-written
controller instead of a trained agent (``scripts/make_datasets.py`` falls back
to one when the trained agent is no better than uniform actions) is labelled
``scripted-...``.

Normalised score (D4RL): ``100 * (R - R_random) / (R_expert - R_random)`` with
both references measured once when the data is generated and frozen in the
metadata (:func:`normalized_score`).

Storage (:func:`save_dataset`, :func:`load_dataset`): a directory holding
``dataset.json`` (the metadata and the array spec, human readable) and
``arrays/0/``, a :mod:`jaxrl.checkpoint` of ``data`` (orbax; per-array CRC-32
and a copy of the metadata). A dataset is written into a temporary directory
next to its destination and renamed into place only when complete, and an
existing dataset is never removed before its replacement is in place. Loading
checks the metadata, the shapes and dtypes, the per-array checksums and the
content checksum, and raises one :class:`~jaxrl.errors.ConfigError` naming the
problem (missing or garbled metadata, truncated or bit-flipped arrays, a
different environment, kind or shape than expected).

Examples:
  >>> import jax
  >>> from jaxrl import envs
  >>> env, params = envs.make("CartPole-v1")
  >>> data = collect_dataset(jax.random.key(0), env, params,
  ...                        uniform_policy(env, params), num_steps=300, num_envs=2)
  >>> data.obs.shape, data.action.dtype, sorted(data.extras)
  ((600, 4), dtype('int32'), ['episode_id', 'timestep'])
  >>> ds = make_dataset(data, env="CartPole-v1", kind="random",
  ...                   return_random=22.0, return_expert=500.0, policy="uniform")
  >>> ds.meta.num_transitions, ds.meta.num_episodes > 0
  (600, True)
  >>> float(normalized_score(261.0, ds.meta))
  50.0
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from etils import epath
from flax import struct
from gymnax.environments import spaces

from jaxrl import checkpoint, rollout
from jaxrl.buffer import BufferState
from jaxrl.errors import ConfigError
from jaxrl.rollout import Policy
from jaxrl.transition import Transition, episode_end
from jaxrl.types import Array, ArrayLike, PRNGKey

__all__ = [
    "EPISODE_ID",
    "TIMESTEP",
    "IS_EXPERT",
    "KINDS",
    "FORMAT",
    "Metadata",
    "Dataset",
    "uniform_policy",
    "collect_dataset",
    "from_rollout",
    "buffer_tail",
    "episode_returns",
    "normalized_score",
    "content_checksum",
    "make_dataset",
    "concat",
    "expert_trajectories",
    "mix",
    "example_item",
    "save_dataset",
    "load_dataset",
]

EPISODE_ID = "episode_id"
"""``extras`` key of the int32 episode index of each transition."""
TIMESTEP = "timestep"
"""``extras`` key of the int32 step index inside the episode (0 right after a reset)."""
IS_EXPERT = "is_expert"
"""``extras`` key of the bool flag marking expert transitions in :func:`mix` output."""

FORMAT = "jaxrl-dataset-v1"
"""The ``format`` tag written in ``dataset.json``."""

KINDS: dict[str, str] = {
    "random": "uniformly random actions",
    "medium": "a trained-agent snapshot at about 1/3 to 1/2 of the expert's "
    "normalised return",
    "expert": "the best trained-agent snapshot",
    "medium-replay": "all transitions the agent stored in its replay buffer from "
    "the start of training up to the medium snapshot",
    "medium-expert": "medium and expert concatenated",
    "expert-1traj": "one complete expert episode (ReCOIL's expert set)",
    "random-plus-expert": "random data plus complete expert episodes (ReCOIL's "
    "suboptimal set; extras['is_expert'] marks them)",
    "medium-plus-expert": "medium data plus complete expert episodes",
    "scripted-expert": "a hand-written controller (no trained agent)",
    "scripted-medium": "the hand-written controller mixed with uniform actions, "
    "at about 1/3 to 1/2 of its normalised return",
    "scripted-medium-expert": "scripted-medium and scripted-expert concatenated",
    "scripted-expert-1traj": "one complete scripted-expert episode",
    "random-plus-scripted-expert": "random data plus complete scripted-expert episodes",
}
"""The kinds our generator writes, with their meaning (others are allowed)."""

_KIND_RE = re.compile(r"^[a-z0-9][a-z0-9.+-]*$")
_EPISODE_KEYS = (EPISODE_ID, TIMESTEP)
_FIELDS = ("obs", "action", "reward", "next_obs", "terminated", "truncated")


# ----------------------------------------------------------------------------- types


@dataclasses.dataclass(frozen=True)
class Metadata:
    """Frozen description of a dataset (hashable: a static pytree field).

    Attributes:
      env: environment id for ``jaxrl.envs.make``.
      kind: dataset kind, e.g. ``"medium-replay"`` (see :data:`KINDS`).
      return_random: ``R_random``, mean undiscounted return of the uniform
        random policy (frozen reference).
      return_expert: ``R_expert``, mean undiscounted return of the expert
        policy (frozen reference).
      policy: human-readable description of the behaviour policy.
      num_transitions: ``N``.
      num_episodes: number of complete episodes in ``data``.
      env_kwargs: ``jaxrl.envs.make`` keyword arguments as sorted ``(name, value)``
        pairs (JSON scalars).
      seed: the generator's root seed (``None`` if unknown).
      checksum: ``"sha256:<hex>"`` of the content (:func:`content_checksum`).
      sources: ``(kind, num_transitions)`` of each part of a concatenation.
      info: further ``(name, value)`` pairs (JSON scalars), e.g. the training
        step of the snapshot or the measured normalised score.
    """

    env: str
    kind: str
    return_random: float
    return_expert: float
    policy: str
    num_transitions: int
    num_episodes: int
    env_kwargs: tuple[tuple[str, Any], ...] = ()
    seed: int | None = None
    checksum: str = ""
    sources: tuple[tuple[str, int], ...] = ()
    info: tuple[tuple[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return the metadata as a JSON-serialisable dict."""
        return {
            "env": self.env,
            "env_kwargs": dict(self.env_kwargs),
            "kind": self.kind,
            "return_random": self.return_random,
            "return_expert": self.return_expert,
            "policy": self.policy,
            "num_transitions": self.num_transitions,
            "num_episodes": self.num_episodes,
            "seed": self.seed,
            "checksum": self.checksum,
            "sources": [list(s) for s in self.sources],
            "info": dict(self.info),
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Metadata:
        """Rebuild metadata from :meth:`to_dict` output.

        Raises:
          ConfigError: naming the first missing or ill-typed field.
        """
        if not isinstance(doc, Mapping):
            raise ConfigError(f"dataset metadata must be a dict, got {type(doc)}")
        want = {
            "env": str,
            "env_kwargs": dict,
            "kind": str,
            "return_random": (int, float),
            "return_expert": (int, float),
            "policy": str,
            "num_transitions": int,
            "num_episodes": int,
            "checksum": str,
            "sources": list,
            "info": dict,
        }
        for name, types in want.items():
            if name not in doc:
                raise ConfigError(f"dataset metadata has no field {name!r}")
            value = doc[name]
            if isinstance(value, bool) or not isinstance(value, types):
                raise ConfigError(
                    f"dataset metadata field {name!r} has the wrong type "
                    f"({type(value).__name__})"
                )
        seed = doc.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ConfigError("dataset metadata field 'seed' must be an int or null")
        try:
            sources = tuple((str(k), int(n)) for k, n in doc["sources"])
        except (TypeError, ValueError):
            raise ConfigError(
                "dataset metadata field 'sources' must be [kind, count] pairs"
            ) from None
        return cls(
            env=doc["env"],
            kind=doc["kind"],
            return_random=float(doc["return_random"]),
            return_expert=float(doc["return_expert"]),
            policy=doc["policy"],
            num_transitions=doc["num_transitions"],
            num_episodes=doc["num_episodes"],
            env_kwargs=_pairs("env_kwargs", doc["env_kwargs"]),
            seed=seed,
            checksum=doc["checksum"],
            sources=sources,
            info=_pairs("info", doc["info"]),
        )


@struct.dataclass
class Dataset:
    """An offline dataset: device-resident ``data`` plus static ``meta``.

    A pytree whose only children are the arrays of ``data``, so a
    ``Dataset`` can be passed to ``jax.jit`` (``meta`` is static and hashable).

    Attributes:
      data: ``Transition[N]`` (see the module docstring for the layout).
      meta: the :class:`Metadata`.
    """

    data: Transition
    meta: Metadata = struct.field(pytree_node=False)


def _pairs(name: str, mapping: Any) -> tuple[tuple[str, Any], ...]:
    """Return sorted ``(key, value)`` pairs of a dict of JSON scalars."""
    if mapping is None:
        return ()
    if not isinstance(mapping, Mapping):
        raise ConfigError(f"{name} must be a dict, got {type(mapping).__name__}")
    out = []
    for key, value in mapping.items():
        if isinstance(value, np.generic):
            value = value.item()
        if not isinstance(key, str) or not (
            value is None or isinstance(value, bool | int | float | str)
        ):
            raise ConfigError(
                f"{name} must map names to JSON scalars (None, bool, int, float, "
                f"str); got {key!r}: {type(value).__name__}"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{name}[{key!r}] must be finite, got {value}")
        out.append((key, value))
    return tuple(sorted(out))


# ------------------------------------------------------------------------ collection


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


# ----------------------------------------------------------------------------- episodes


def _host(data: Transition, name: str) -> np.ndarray:
    try:
        return np.asarray(data.extras[name])
    except KeyError:
        raise ConfigError(
            f"dataset has no extras[{name!r}] (build it with collect_dataset or "
            "from_rollout)"
        ) from None


def _episode_table(data: Transition) -> dict[str, np.ndarray]:
    """Host-side per-episode table in row order; checks the episode layout.

    Returns ``id, start, stop (exclusive), complete`` per episode.
    """
    ep = _host(data, EPISODE_ID)
    ts = _host(data, TIMESTEP)
    done = np.asarray(data.terminated, bool) | np.asarray(data.truncated, bool)
    n = ep.shape[0]
    if ep.shape != (n,) or ts.shape != (n,) or done.shape != (n,):
        raise ConfigError(
            f"dataset episode fields must be [N]; got episode_id {ep.shape}, "
            f"timestep {ts.shape}, terminated/truncated {done.shape}"
        )
    if n == 0:
        raise ConfigError("dataset is empty (N == 0)")
    change = np.flatnonzero(ep[1:] != ep[:-1]) + 1
    start = np.concatenate([[0], change])
    stop = np.concatenate([change, [n]])
    ids = ep[start]
    if np.unique(ids).size != ids.size:
        raise ConfigError(
            "dataset episodes are not contiguous: an episode_id appears in "
            "several separate runs of rows"
        )
    # An end flag may only sit on the last row of an episode.
    ends = np.flatnonzero(done)
    last_rows = stop - 1
    if not np.isin(ends, last_rows).all():
        bad = int(ends[~np.isin(ends, last_rows)][0])
        raise ConfigError(
            f"dataset row {bad} ends an episode (terminated or truncated) but "
            f"row {bad + 1} continues episode_id {int(ep[bad])}"
        )
    steps = np.diff(ts)
    inside = np.ones(n - 1, bool)
    inside[change - 1] = False
    if n > 1 and not (steps[inside] == 1).all():
        bad = int(np.flatnonzero(inside & (steps != 1))[0])
        raise ConfigError(
            f"dataset timestep does not increase by one inside episode "
            f"{int(ep[bad])} (row {bad + 1})"
        )
    return {"id": ids, "start": start, "stop": stop, "complete": done[last_rows]}


def episode_returns(data: Transition | Dataset) -> dict[str, np.ndarray]:
    """Return the undiscounted return and length of every complete episode (host side).

    Args:
      data: a ``Transition[N]`` with ``extras["episode_id"]`` and
        ``extras["timestep"]``, or a :class:`Dataset`.

    Returns:
      ``{"return": float64[K], "length": int64[K], "episode_id": [K]}`` for the
      ``K`` complete episodes, in row order (unfinished stream tails are left out).

    Raises:
      ConfigError: if the episode extras are missing or inconsistent.

    Examples:
      >>> import jax
      >>> from jaxrl import envs
      >>> env, params = envs.make("CartPole-v1")
      >>> always_left = lambda key, obs: jax.numpy.zeros(obs.shape[:1], "int32")
      >>> data = collect_dataset(jax.random.key(0), env, params, always_left, 40, 2)
      >>> out = episode_returns(data)
      >>> bool((out["return"] == out["length"]).all())  # CartPole pays 1 per step
      True
    """
    if isinstance(data, Dataset):
        data = data.data
    table = _episode_table(data)
    reward = np.asarray(data.reward, np.float64)
    sums = np.add.reduceat(reward, table["start"])
    keep = table["complete"]
    return {
        "return": sums[keep],
        "length": (table["stop"] - table["start"])[keep].astype(np.int64),
        "episode_id": table["id"][keep],
    }


def normalized_score(returns: ArrayLike, meta: Metadata | Dataset) -> Any:
    """Return the D4RL score ``100 * (R - R_random) / (R_expert - R_random)``.

    Args:
      returns: undiscounted episode returns, any shape (NumPy or JAX).
      meta: the dataset (or its metadata) holding the frozen references.

    Returns:
      The scores, same shape (0: random, 100: expert).

    Raises:
      ConfigError: if ``R_expert == R_random``.

    Examples:
      >>> m = Metadata(env="CartPole-v1", kind="random", return_random=20.0,
      ...              return_expert=500.0, policy="uniform", num_transitions=1,
      ...              num_episodes=0)
      >>> float(normalized_score(260.0, m))
      50.0
    """
    if isinstance(meta, Dataset):
        meta = meta.meta
    low, high = float(meta.return_random), float(meta.return_expert)
    if high == low:
        raise ConfigError(
            f"normalized_score: R_expert == R_random ({high}) in the metadata of "
            f"{meta.env}/{meta.kind}"
        )
    if isinstance(returns, jax.Array):
        return 100.0 * (returns - low) / (high - low)
    return 100.0 * (np.asarray(returns, np.float64) - low) / (high - low)


# ----------------------------------------------------------------------------- building


def content_checksum(data: Transition) -> str:
    """Return ``"sha256:<hex>"`` of every leaf's path, dtype, shape and bytes (host)."""
    digest = hashlib.sha256()
    flat, _ = jax.tree_util.tree_flatten_with_path(data)
    for path, leaf in flat:
        array = np.ascontiguousarray(np.asarray(leaf))
        header = f"{jax.tree_util.keystr(path)}|{array.dtype.str}|{array.shape}\n"
        digest.update(header.encode())
        digest.update(array.tobytes())
    return f"sha256:{digest.hexdigest()}"


def _check_kind(kind: Any) -> str:
    if not isinstance(kind, str) or not _KIND_RE.match(kind):
        raise ConfigError(
            f"dataset kind must be a lowercase name of letters, digits, '-', '.' "
            f"or '+', e.g. 'medium-replay'; got {kind!r}"
        )
    return kind


def _check_data(data: Any) -> int:
    """Check that ``data`` is a dataset ``Transition[N]``; return ``N``."""
    if not isinstance(data, Transition):
        raise ConfigError(
            f"dataset data must be a jaxrl Transition, got {type(data).__name__}"
        )
    for name in ("obs", "next_obs"):
        if not isinstance(getattr(data, name), jax.Array | np.ndarray):
            raise ConfigError(
                f"dataset {name} must be one array (flatten dict observations, "
                "e.g. with jaxrl.envs.FlattenObservation)"
            )
    n = int(np.shape(data.reward)[0]) if np.ndim(data.reward) == 1 else None
    if n is None:
        raise ConfigError(
            f"dataset reward must be [N], got shape {np.shape(data.reward)} "
            "(flatten [T, E] rollouts with from_rollout)"
        )
    for path, leaf in _leaves(data):
        if np.ndim(leaf) == 0 or np.shape(leaf)[0] != n:
            raise ConfigError(
                f"dataset leaf {path} has shape {np.shape(leaf)}; every leaf needs "
                f"the leading axis N={n}"
            )
    for name in ("terminated", "truncated"):
        if _dtype(getattr(data, name)) != np.bool_:
            raise ConfigError(f"dataset {name} must be bool")
    if _dtype(data.reward) != np.float32:
        raise ConfigError(f"dataset reward must be float32, got {_dtype(data.reward)}")
    return n


def _dtype(x: Any) -> np.dtype:
    """The dtype of an array leaf (jax, numpy or Python scalar)."""
    dtype = getattr(x, "dtype", None)
    return np.dtype(dtype) if dtype is not None else np.asarray(x).dtype


def _leaves(data: Any) -> list[tuple[str, Any]]:
    flat, _ = jax.tree_util.tree_flatten_with_path(data)
    return [(jax.tree_util.keystr(p), leaf) for p, leaf in flat]


def make_dataset(
    data: Transition,
    *,
    env: str,
    kind: str,
    return_random: float,
    return_expert: float,
    policy: str,
    env_kwargs: Mapping[str, Any] | None = None,
    seed: int | None = None,
    sources: Sequence[tuple[str, int]] = (),
    info: Mapping[str, Any] | None = None,
) -> Dataset:
    """Wrap ``data`` with checked metadata, episode counts and its content checksum.

    Host side (reads the arrays once). Checks the layout: one ``[N]`` axis on
    every leaf, bool flags, float32 rewards, contiguous episodes whose end flags
    sit on their last rows and whose timesteps count up by one.

    Args:
      data: ``Transition[N]`` with the episode extras (e.g. from
        :func:`collect_dataset`).
      env: environment id.
      kind: dataset kind (see :data:`KINDS`).
      return_random: frozen ``R_random``.
      return_expert: frozen ``R_expert`` (must differ from ``R_random``).
      policy: description of the behaviour policy.
      env_kwargs: ``jaxrl.envs.make`` keyword arguments (JSON scalars).
      seed: generator seed.
      sources: ``(kind, num_transitions)`` parts of a concatenation.
      info: further JSON-scalar facts.

    Returns:
      The :class:`Dataset`.

    Raises:
      ConfigError: naming the first problem.
    """
    n = _check_data(data)
    kind = _check_kind(kind)
    if not isinstance(env, str) or not env:
        raise ConfigError(f"dataset env must be a non-empty id, got {env!r}")
    refs = []
    for name, value in (
        ("return_random", return_random),
        ("return_expert", return_expert),
    ):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be a number, got {value!r}") from None
        if not math.isfinite(value):
            raise ConfigError(f"{name} must be finite, got {value}")
        refs.append(value)
    if refs[0] == refs[1]:
        raise ConfigError(
            f"return_expert must differ from return_random (both {refs[0]}): the "
            "normalised score would be undefined"
        )
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ConfigError(f"seed must be an int or None, got {seed!r}")
    table = _episode_table(data)
    meta = Metadata(
        env=env,
        kind=kind,
        return_random=refs[0],
        return_expert=refs[1],
        policy=str(policy),
        num_transitions=n,
        num_episodes=int(table["complete"].sum()),
        env_kwargs=_pairs("env_kwargs", dict(env_kwargs or {})),
        seed=seed,
        checksum=content_checksum(data),
        sources=tuple((str(k), int(c)) for k, c in sources),
        info=_pairs("info", dict(info or {})),
    )
    return Dataset(data=data, meta=meta)


def _same_source(datasets: Sequence[Dataset], what: str) -> None:
    first = datasets[0].meta
    for ds in datasets[1:]:
        m = ds.meta
        if (m.env, m.env_kwargs) != (first.env, first.env_kwargs):
            raise ConfigError(
                f"{what}: datasets come from different environments "
                f"({first.env} {dict(first.env_kwargs)} vs "
                f"{m.env} {dict(m.env_kwargs)})"
            )
        if (m.return_random, m.return_expert) != (
            first.return_random,
            first.return_expert,
        ):
            raise ConfigError(
                f"{what}: datasets have different reference returns "
                f"({first.return_random}, {first.return_expert}) vs "
                f"({m.return_random}, {m.return_expert})"
            )
        want = jax.tree.structure(datasets[0].data)
        got = jax.tree.structure(ds.data)
        if want != got:
            raise ConfigError(
                f"{what}: {first.kind} and {m.kind} have different structures "
                f"(extras {sorted(datasets[0].data.extras)} vs "
                f"{sorted(ds.data.extras)})"
            )
        for (path, a), (_, b) in zip(
            _leaves(datasets[0].data), _leaves(ds.data), strict=True
        ):
            spec_a = (_dtype(a), list(np.shape(a)[1:]))
            spec_b = (_dtype(b), list(np.shape(b)[1:]))
            if spec_a != spec_b:
                raise ConfigError(
                    f"{what}: leaf {path} is {spec_a[0]}{spec_a[1]} in {first.kind} "
                    f"but {spec_b[0]}{spec_b[1]} in {m.kind}"
                )


def concat(
    datasets: Sequence[Dataset],
    *,
    kind: str,
    policy: str | None = None,
    info: Mapping[str, Any] | None = None,
) -> Dataset:
    """Concatenate datasets of one environment (e.g. ``medium-expert``).

    Episode ids of later parts are shifted so that they stay unique; the
    reference returns must agree. Works on host copies (nothing is compiled)
    and places the result on the default device.

    Args:
      datasets: at least one :class:`Dataset`, same env, references and layout.
      kind: the kind of the result.
      policy: description (default: the parts' descriptions joined by ``" + "``).
      info: further facts for the metadata.

    Returns:
      The concatenation, ``sources`` listing each part's kind and size.

    Raises:
      ConfigError: if the parts differ in environment, references or layout.
    """
    datasets = list(datasets)
    if not datasets or not all(isinstance(d, Dataset) for d in datasets):
        raise ConfigError("concat needs a non-empty list of Dataset objects")
    _same_source(datasets, "concat")
    parts = []
    offset = 0
    for ds in datasets:
        host = jax.device_get(ds.data)
        ep = np.asarray(host.extras[EPISODE_ID])
        shift = offset - int(ep.min())
        ep = (ep + shift).astype(ep.dtype)
        parts.append(host.replace(extras={**host.extras, EPISODE_ID: ep}))
        offset = int(ep.max()) + 1
    data = jax.device_put(jax.tree.map(lambda *xs: np.concatenate(xs, axis=0), *parts))
    first = datasets[0].meta
    return make_dataset(
        data,
        env=first.env,
        kind=kind,
        return_random=first.return_random,
        return_expert=first.return_expert,
        policy=policy or " + ".join(d.meta.policy for d in datasets),
        env_kwargs=dict(first.env_kwargs),
        seed=first.seed,
        sources=[(d.meta.kind, d.meta.num_transitions) for d in datasets],
        info=info,
    )


def expert_trajectories(
    dataset: Dataset, k: int, *, skip: int = 0, kind: str | None = None
) -> Dataset:
    """Return ``k`` complete episodes of ``dataset`` (ReCOIL's small expert set).

    Takes the complete episodes number ``skip, ..., skip + k - 1`` in row order,
    so ``expert_trajectories(d, 1)`` and ``expert_trajectories(d, m, skip=1)``
    are disjoint.

    Args:
      dataset: the source (typically kind ``expert``).
      k: number of episodes, a positive int.
      skip: complete episodes to pass over first.
      kind: kind of the result (default ``f"{dataset.meta.kind}-{k}traj"``).

    Returns:
      A dataset with exactly ``k`` complete episodes and nothing else.

    Raises:
      ConfigError: if the dataset has fewer than ``skip + k`` complete episodes.
    """
    for name, value, low in (("k", k, 1), ("skip", skip, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{name} must be an int >= {low}, got {value!r}")
    table = _episode_table(dataset.data)
    complete = np.flatnonzero(table["complete"])
    if complete.size < skip + k:
        raise ConfigError(
            f"{dataset.meta.env}/{dataset.meta.kind} has {complete.size} complete "
            f"episodes; {skip} skipped + {k} requested"
        )
    chosen = complete[skip : skip + k]
    rows = np.concatenate(
        [np.arange(table["start"][i], table["stop"][i]) for i in chosen]
    )
    data = jax.device_put(jax.tree.map(lambda x: np.asarray(x)[rows], dataset.data))
    meta = dataset.meta
    return make_dataset(
        data,
        env=meta.env,
        kind=kind or f"{meta.kind}-{k}traj",
        return_random=meta.return_random,
        return_expert=meta.return_expert,
        policy=meta.policy,
        env_kwargs=dict(meta.env_kwargs),
        seed=meta.seed,
        sources=[(meta.kind, int(rows.size))],
        info={**dict(meta.info), "skipped_episodes": skip},
    )


def mix(
    suboptimal: Dataset,
    expert: Dataset,
    *,
    kind: str,
    info: Mapping[str, Any] | None = None,
) -> Dataset:
    """Return ``suboptimal`` followed by ``expert`` with ``extras["is_expert"]`` set.

    ReCOIL's suboptimal set: e.g. random or medium data plus a few hundred
    complete expert episodes (:func:`expert_trajectories` with ``skip=1`` keeps
    them disjoint from the one-episode expert set). The flag is only for
    logging; an agent must not use it for learning.

    Args:
      suboptimal: the non-expert part (an existing ``is_expert`` flag is kept).
      expert: the expert part (all its rows get ``is_expert = True``).
      kind: kind of the result, e.g. ``"random-plus-expert"``.
      info: further facts for the metadata.

    Returns:
      The concatenation (see :func:`concat`).
    """
    parts = []
    for ds, flag in ((suboptimal, False), (expert, True)):
        n = ds.meta.num_transitions
        old = ds.data.extras.get(IS_EXPERT)
        value = (
            np.ones((n,), bool)
            if flag
            else (np.zeros((n,), bool) if old is None else np.asarray(old, bool))
        )
        parts.append(
            ds.replace(
                data=ds.data.replace(extras={**ds.data.extras, IS_EXPERT: value})
            )
        )
    expert_eps = expert.meta.num_episodes
    return concat(
        parts,
        kind=kind,
        info={"expert_episodes": expert_eps, **dict(info or {})},
    )


# ----------------------------------------------------------------------------- storage


def example_item(env: Any, env_params: Any) -> Transition:
    """Return one unbatched zero ``Transition`` with ``env``'s obs and action spec.

    Pass it as ``example`` to :func:`load_dataset` to check a dataset's shapes and
    dtypes against an environment. Actions: int32 ``[]`` for ``Discrete``,
    float32 ``[*shape]`` for ``Box``.

    Examples:
      >>> from jaxrl import envs
      >>> env, params = envs.make("Pendulum-v1")
      >>> example_item(env, params).action.shape
      (1,)
    """
    obs = jax.eval_shape(lambda k: env.reset(k, env_params)[0], jax.random.key(0))
    space = env.action_space(env_params)
    if isinstance(space, spaces.Discrete):
        action = jnp.zeros((), jnp.int32)
    elif isinstance(space, spaces.Box):
        action = jnp.zeros(tuple(int(d) for d in space.shape), jnp.float32)
    else:
        raise ConfigError(
            f"{env.name} has a {type(space).__name__} action space; datasets "
            "support Discrete and Box actions"
        )
    zeros = jnp.zeros(obs.shape, obs.dtype)
    return Transition(
        obs=zeros,
        action=action,
        reward=jnp.zeros((), jnp.float32),
        next_obs=zeros,
        terminated=jnp.zeros((), bool),
        truncated=jnp.zeros((), bool),
    )


def _spec(data: Transition) -> dict[str, Any]:
    def one(x: Any) -> dict[str, Any]:
        return {"shape": list(np.shape(x)), "dtype": str(_dtype(x))}

    return {
        **{name: one(getattr(data, name)) for name in _FIELDS},
        "extras": {k: one(v) for k, v in sorted(data.extras.items())},
    }


def _target(spec: Any, where: str) -> Transition:
    """Abstract ``Transition`` (ShapeDtypeStructs) described by a spec."""

    def one(entry: Any, name: str) -> jax.ShapeDtypeStruct:
        try:
            return jax.ShapeDtypeStruct(
                tuple(int(d) for d in entry["shape"]), np.dtype(entry["dtype"])
            )
        except (TypeError, KeyError, ValueError):
            raise ConfigError(
                f"{where} is corrupt: the array spec of {name} is unreadable"
            ) from None

    if not isinstance(spec, Mapping) or not isinstance(spec.get("extras"), Mapping):
        raise ConfigError(f"{where} is corrupt: its array spec is missing")
    missing = [f for f in _FIELDS if f not in spec]
    if missing:
        raise ConfigError(f"{where} is corrupt: the array spec lacks {missing}")
    return Transition(
        **{name: one(spec[name], name) for name in _FIELDS},
        extras={k: one(v, f"extras[{k!r}]") for k, v in spec["extras"].items()},
    )


def _document(dataset: Dataset) -> dict[str, Any]:
    from jaxrl import __version__

    return {
        "format": FORMAT,
        "jaxrl_version": __version__,
        "meta": dataset.meta.to_dict(),
        "spec": _spec(dataset.data),
    }


def _check_consistent(dataset: Dataset, where: str, hint: str = "") -> None:
    """The metadata's checksum and counts describe the data."""
    meta = dataset.meta
    got = content_checksum(dataset.data)
    if got != meta.checksum:
        raise ConfigError(
            f"{where}: the data fails the content checksum in its metadata "
            f"({meta.checksum or 'none'} vs {got}){hint}"
        )
    n = _check_data(dataset.data)
    if n != meta.num_transitions:
        raise ConfigError(
            f"{where}: metadata says {meta.num_transitions} transitions, data has {n}"
        )
    episodes = int(_episode_table(dataset.data)["complete"].sum())
    if episodes != meta.num_episodes:
        raise ConfigError(
            f"{where}: metadata says {meta.num_episodes} complete episodes, data "
            f"has {episodes}"
        )


def _resolve(path: str | epath.PathLike) -> epath.Path:
    """``path`` as an ``epath.Path``; local paths made absolute (orbax needs that)."""
    text = os.fspath(path)
    return epath.Path(text if "://" in text else os.path.abspath(text))


def save_dataset(
    path: str | epath.PathLike, dataset: Dataset, *, overwrite: bool = False
) -> epath.Path:
    """Write ``dataset`` to the directory ``path`` atomically.

    The dataset is written into a temporary sibling directory
    (``.<name>.tmp-<id>``) and renamed to ``path`` once complete. With
    ``overwrite=True`` an existing dataset is first renamed aside and deleted
    only after the new one is in place.

    Args:
      path: destination directory (its parent is created if missing).
      dataset: a :class:`Dataset` whose metadata matches its data (counts and
        checksum, as made by :func:`make_dataset`).
      overwrite: replace an existing dataset at ``path``.

    Returns:
      ``path`` as an ``epath.Path``.

    Raises:
      ConfigError: if ``path`` exists (without ``overwrite``, or is not a
        dataset) or the metadata does not describe the data. Nothing is
        written then.
    """
    if not isinstance(dataset, Dataset):
        raise ConfigError(f"save_dataset needs a Dataset, got {type(dataset).__name__}")
    target = _resolve(path)
    _check_consistent(
        dataset,
        f"cannot save dataset {target}",
        "; rebuild the metadata with make_dataset after changing the data",
    )
    if target.exists():
        if not overwrite:
            raise ConfigError(
                f"dataset {target} already exists; pass overwrite=True to replace it"
            )
        if not (target / "dataset.json").exists() and not (target / "arrays").exists():
            raise ConfigError(
                f"{target} exists and is not a jaxrl dataset; refusing to replace it"
            )
    doc = _document(dataset)
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = parent / f".{target.name}.tmp-{uuid.uuid4().hex}"
    try:
        checkpoint.save(tmp / "arrays", 0, dataset.data, doc)
        (tmp / "dataset.json").write_text(json.dumps(doc, indent=2, sort_keys=True))
        if target.exists():
            old = parent / f".{target.name}.old-{uuid.uuid4().hex}"
            target.rename(old)
            try:
                tmp.rename(target)
            except BaseException:
                old.rename(target)  # put the previous dataset back
                raise
            old.rmtree()
        else:
            tmp.rename(target)
    finally:
        if tmp.exists():
            tmp.rmtree()
    return target


def _compare_example(where: str, spec: Transition, example: Transition) -> None:
    for name in ("obs", "action", "next_obs"):
        stored = getattr(spec, name)
        want = getattr(example, name)
        want_shape = tuple(np.shape(want))
        want_dtype = _dtype(want)
        if tuple(stored.shape[1:]) != want_shape or stored.dtype != want_dtype:
            raise ConfigError(
                f"{where} does not match the expected layout: {name} is "
                f"{stored.dtype}[N, {', '.join(map(str, stored.shape[1:]))}] in the "
                f"dataset, expected {want_dtype}[N, {', '.join(map(str, want_shape))}]"
            )


def load_dataset(
    path: str | epath.PathLike,
    *,
    expected_env: str | None = None,
    expected_kind: str | None = None,
    expected_env_kwargs: Mapping[str, Any] | None = None,
    example: Transition | None = None,
) -> Dataset:
    """Read a dataset written by :func:`save_dataset` onto the default device.

    Args:
      path: the dataset directory.
      expected_env: if given, the dataset must be for this environment id.
      expected_kind: if given, the dataset must be of this kind.
      expected_env_kwargs: if given, the ``jaxrl.envs.make`` keyword arguments must
        be exactly these.
      example: if given, an unbatched ``Transition`` (e.g. :func:`example_item`)
        whose ``obs``, ``action`` and ``next_obs`` shapes and dtypes the data
        must have.

    Returns:
      The :class:`Dataset`, bitwise equal to what was saved.

    Raises:
      ConfigError: naming the dataset path and the problem: not found; metadata
        missing, garbled or not matching the arrays; truncated or garbled array
        files (per-array CRC-32, then the SHA-256 content checksum); a different
        environment, kind, keyword arguments or layout than expected.
    """
    root = _resolve(path)
    where = f"dataset {root}"
    if not root.is_dir():
        raise ConfigError(f"{where} not found")
    meta_file = root / "dataset.json"
    if not meta_file.exists():
        raise ConfigError(
            f"{where} is corrupt: its metadata file dataset.json is missing"
        )
    try:
        doc = json.loads(meta_file.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ConfigError(
            f"{where} is corrupt: dataset.json is unreadable "
            f"({type(err).__name__}: {' '.join(str(err).split())[:120]})"
        ) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ConfigError(f"{where} is corrupt or not a jaxrl dataset ({FORMAT})")
    try:
        meta = Metadata.from_dict(doc.get("meta"))
    except ConfigError as err:
        raise ConfigError(f"{where} is corrupt: {err}") from None
    target = _target(doc.get("spec"), where)

    # EXPECTATIONS (cheap, before reading any array)
    if expected_env is not None and meta.env != expected_env:
        raise ConfigError(
            f"{where} is for environment {meta.env!r}, expected {expected_env!r}"
        )
    if expected_env_kwargs is not None:
        want = _pairs("expected_env_kwargs", dict(expected_env_kwargs))
        if want != meta.env_kwargs:
            raise ConfigError(
                f"{where} was made with env kwargs {dict(meta.env_kwargs)}, "
                f"expected {dict(want)}"
            )
    if expected_kind is not None and meta.kind != expected_kind:
        raise ConfigError(
            f"{where} is of kind {meta.kind!r}, expected {expected_kind!r}"
        )
    if example is not None:
        _compare_example(where, target, example)

    # ARRAYS
    try:
        data, stored = checkpoint.restore(root / "arrays", target, step=0)
    except ConfigError as err:
        raise ConfigError(f"{where} is corrupt or inconsistent: {err}") from None
    if stored != doc:
        raise ConfigError(
            f"{where} is corrupt: dataset.json differs from the metadata stored "
            "with the arrays"
        )
    dataset = Dataset(data=data, meta=meta)
    _check_consistent(dataset, f"{where} is corrupt")
    return dataset
