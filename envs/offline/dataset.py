"""The offline :class:`Dataset` type: metadata, episode layout, statistics and splits.

A :class:`Dataset` is one device-resident :class:`~jaxrl.transition.Transition`
``data`` with a leading axis ``[N]`` plus host-side, frozen :class:`Metadata`
(see :mod:`jaxrl.envs.offline` for the layout of ``data`` and the kinds). This
module builds and checks datasets (:func:`make_dataset`: layout checks, episode
counts, the SHA-256 content checksum), reads their episodes
(:func:`episode_returns`, :func:`normalized_score`, :func:`return_stats`) and
derives new ones from them: :func:`concat` (``medium-expert``),
:func:`expert_trajectories` (ReCOIL's small expert set), :func:`mix` (expert
episodes added to suboptimal data, flagged in ``extras["is_expert"]``) and
:func:`imitation_splits` (both at once). Everything here is host side except
that ``data`` stays on the device.

Normalised score (D4RL): ``100 * (R - R_random) / (R_expert - R_random)`` with
both references frozen in the metadata.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np
from flax import struct

from jaxrl.errors import ConfigError
from jaxrl.transition import Transition
from jaxrl.types import ArrayLike

__all__ = [
    "EPISODE_ID",
    "TIMESTEP",
    "IS_EXPERT",
    "KINDS",
    "Metadata",
    "Dataset",
    "episode_returns",
    "normalized_score",
    "return_stats",
    "content_checksum",
    "make_dataset",
    "with_info",
    "with_return_stats",
    "concat",
    "expert_trajectories",
    "mix",
    "imitation_splits",
]

EPISODE_ID = "episode_id"
"""``extras`` key of the int32 episode index of each transition."""
TIMESTEP = "timestep"
"""``extras`` key of the int32 step index inside the episode (0 right after a reset)."""
IS_EXPERT = "is_expert"
"""``extras`` key of the bool flag marking expert transitions in :func:`mix` output."""

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
      >>> from jaxrl.envs.offline import collect_dataset
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


# ----------------------------------------------------------------------------- statistics


def return_stats(
    data: Transition, return_random: float, return_expert: float
) -> dict[str, float]:
    """Mean return and mean normalised score of the complete episodes (host side).

    Args:
      data: a ``Transition[N]`` with the episode extras.
      return_random: ``R_random``.
      return_expert: ``R_expert``.

    Returns:
      ``{"return_mean": mean R, "score_mean": 100 (mean R - R_random) /
      (R_expert - R_random)}`` over the complete episodes, or ``{}`` if there
      are none.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxrl.transition import Transition
      >>> done = jnp.array([False, True, True, False])
      >>> data = Transition(obs=jnp.zeros((4, 1)), action=jnp.zeros(4, jnp.int32),
      ...                   reward=jnp.array([1.0, 2.0, 5.0, 7.0]), next_obs=jnp.zeros((4, 1)),
      ...                   terminated=done, truncated=jnp.zeros(4, bool),
      ...                   extras={"episode_id": jnp.array([0, 0, 1, 2]),
      ...                           "timestep": jnp.array([0, 1, 0, 0])})
      >>> return_stats(data, 0.0, 8.0)  # episodes of return 3 and 5
      {'return_mean': 4.0, 'score_mean': 50.0}
    """
    returns = episode_returns(data)["return"]
    if not returns.size:
        return {}
    mean = float(returns.mean())
    score = 100.0 * (mean - return_random) / (return_expert - return_random)
    return {"return_mean": mean, "score_mean": score}


def with_info(dataset: Dataset, extra: Mapping[str, Any]) -> Dataset:
    """Return ``dataset`` with ``extra`` added to (or replacing) its ``info`` facts.

    The metadata is rebuilt by :func:`make_dataset` (same data, checksum and
    everything else).
    """
    meta = dataset.meta
    return make_dataset(
        dataset.data,
        env=meta.env,
        kind=meta.kind,
        return_random=meta.return_random,
        return_expert=meta.return_expert,
        policy=meta.policy,
        env_kwargs=dict(meta.env_kwargs),
        seed=meta.seed,
        sources=meta.sources,
        info={**dict(meta.info), **extra},
    )


def with_return_stats(dataset: Dataset) -> Dataset:
    """Return ``dataset`` with its :func:`return_stats` recorded in ``info``."""
    meta = dataset.meta
    return with_info(
        dataset, return_stats(dataset.data, meta.return_random, meta.return_expert)
    )


def imitation_splits(
    base: Mapping[str, Dataset],
    expert: Dataset,
    names: Mapping[str, str],
    k: int,
) -> list[Dataset]:
    """ReCOIL's imitation splits: one expert episode, and ``k`` added to each base set.

    Returns ``[expert_trajectories(expert, 1)]`` (kind ``names["one"]``)
    followed by ``mix(base[b], expert_trajectories(expert, k, skip=1))`` (kind
    ``names[b]``) for every ``b`` in ``base``, in its order; the ``k`` added
    episodes are the expert's complete episodes ``1 .. k``, disjoint from the
    one-episode set. Each carries its :func:`return_stats` in ``info``.

    Args:
      base: the suboptimal sets by name, e.g. ``{"random": ..., "medium": ...}``.
      expert: the expert data.
      names: the kind of each result: ``"one"`` and every key of ``base``.
      k: expert episodes added to each base set,
        ``1 <= k <= expert.meta.num_episodes - 1``.

    Raises:
      ConfigError: if the expert data has fewer than ``k + 1`` complete episodes.
    """
    one = expert_trajectories(expert, 1, kind=names["one"])
    out = [with_return_stats(one)]
    extra = expert_trajectories(expert, k, skip=1)
    for base_kind, ds in base.items():
        out.append(with_return_stats(mix(ds, extra, kind=names[base_kind])))
    return out
