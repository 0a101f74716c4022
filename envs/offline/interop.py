"""Offline data interoperability: D4RL-style ``.npz`` files (and Minari, if installed).

Our datasets are written by :func:`~jaxrl.envs.offline.save_dataset` as an orbax
checkpoint plus ``dataset.json``, which only jaxrl reads. This module converts
them to and from the flat layout of D4RL, readable with NumPy alone
(``np.load(path)``), and, when the optional ``minari`` package is installed
(``pip install 'jaxrl[minari]'``), to and from Minari datasets.

D4RL-style ``.npz`` layout (:func:`to_d4rl`, :func:`save_d4rl`; every array has
the leading axis ``N``, one row per transition, in our row order):

============================  ===================================================
key                           content (dtype as written)
============================  ===================================================
``observations``              ``obs`` (the environment's dtype, e.g. float32)
``actions``                   ``action``: int32 ``[N]`` (Discrete) or float32
                              ``[N, act_dim]`` (Box)
``rewards``                   float32 ``[N]``
``terminals``                 bool ``[N]``: ``terminated`` (a true end; never
                              bootstrap)
``timeouts``                  bool ``[N]``: ``truncated`` (a time limit;
                              bootstrap from ``next_observations``)
``next_observations``         ``next_obs``, the observation before any reset
``extras/<name>``             each ``extras`` entry: ``extras/episode_id`` and
                              ``extras/timestep`` (int32), ``extras/is_expert``
                              (bool) where present
``jaxrl/metadata``            0-d unicode string: JSON of the :class:`Metadata`
                              (format tag :data:`METADATA_FORMAT`)
============================  ===================================================

Reading (:func:`from_d4rl`, :func:`load_d4rl`) validates the file and raises
one :class:`~jaxrl.errors.ConfigError` naming the problem: a missing key, a
key whose rows differ from ``rewards``, a bad dtype or shape, a file that is
not an ``.npz`` archive. Accepted dtypes: ``rewards`` any integer or float
type (stored float32); ``terminals`` / ``timeouts`` bool, or numbers that are
all 0 or 1; ``actions`` integer (stored int32) or float (stored float32);
observations and extras bool, integer or float. 64-bit types are narrowed to
32 bits (JAX's default), integers only when every value fits. Other keys (e.g.
D4RL's ``infos/...``) are ignored.

Episode boundaries: with ``extras/episode_id`` (and ``extras/timestep``) the
episodes are taken from the file. Without them a new episode starts after a
row with ``terminals`` or ``timeouts`` set, and also after a row whose
``next_observations`` differs from the next row's ``observations`` (beyond a
rounding error, :data:`CUT_RTOL` and :data:`CUT_ATOL`, for float observations)
with neither flag set (a stream cut off, as at the end of each of our collection
streams): the episode before such a cut is *unfinished* and, like the
unfinished tails of our own datasets, is left out of episode returns.

A file written by :func:`save_d4rl` carries ``jaxrl/metadata``; reading it
back gives a dataset bitwise equal to the original, metadata included (its
checksum is verified). A foreign file needs the metadata from the caller:
``env``, ``return_random`` and ``return_expert`` (the D4RL reference returns
of the normalised score) at least.

Examples:
  >>> import jax, numpy as np
  >>> from jaxrl import envs
  >>> from jaxrl.envs import offline
  >>> arrays = {"observations": np.array([[0.0], [1.0], [0.0]], np.float32),
  ...           "actions": np.array([1, 0, 1]),
  ...           "rewards": np.array([1.0, 2.0, 4.0]),
  ...           "terminals": np.array([False, True, False]),
  ...           "timeouts": np.array([False, False, True]),
  ...           "next_observations": np.array([[1.0], [2.0], [3.0]], np.float32)}
  >>> ds = offline.from_d4rl(arrays, env="MyEnv-v0", return_random=0.0,
  ...                        return_expert=10.0)
  >>> ds.data.extras["episode_id"].tolist(), ds.meta.num_episodes
  ([0, 0, 1], 2)
  >>> offline.episode_returns(ds)["return"].tolist()
  [3.0, 4.0]
  >>> sorted(offline.to_d4rl(ds))[:3]
  ['actions', 'extras/episode_id', 'extras/timestep']
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
import zipfile
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

from jaxrl.envs.offline.dataset import (
    EPISODE_ID,
    TIMESTEP,
    Dataset,
    Metadata,
    _pairs,
    make_dataset,
)
from jaxrl.envs.offline.storage import _check_consistent
from jaxrl.errors import ConfigError
from jaxrl.transition import Transition

__all__ = [
    "D4RL_KEYS",
    "EXTRAS_PREFIX",
    "METADATA_KEY",
    "METADATA_FORMAT",
    "CUT_RTOL",
    "CUT_ATOL",
    "to_d4rl",
    "from_d4rl",
    "save_d4rl",
    "load_d4rl",
    "minari_available",
    "save_minari",
    "load_minari",
]

D4RL_KEYS = (
    "observations",
    "actions",
    "rewards",
    "terminals",
    "timeouts",
    "next_observations",
)
"""The six keys every D4RL-style file has (``terminals`` = terminated,
``timeouts`` = truncated)."""
EXTRAS_PREFIX = "extras/"
"""Prefix of the keys holding our ``extras`` entries (``extras/episode_id``, ...)."""
METADATA_KEY = "jaxrl/metadata"
"""Key of the JSON :class:`Metadata` written by :func:`to_d4rl`."""
METADATA_FORMAT = "jaxrl-interop-v1"
"""The ``format`` tag of the JSON metadata in ``.npz`` files and Minari datasets."""

CUT_RTOL, CUT_ATOL = 1e-5, 1e-6
"""Tolerances of the cut test of files without episode ids: float observations
``o`` and ``o'`` differ when ``|o' - o| > CUT_ATOL + CUT_RTOL * |o|`` in any entry
(the two copies of one observation may differ by a rounding error)."""

_FIELD_OF = {
    "observations": "obs",
    "actions": "action",
    "rewards": "reward",
    "terminals": "terminated",
    "timeouts": "truncated",
    "next_observations": "next_obs",
}
_MINARI_META_KEY = "jaxrl_metadata"  # Minari metadata.json entry (the same JSON)
_MINARI_EXTRAS = "jaxrl_extras"  # Minari infos group holding our extras
_MINARI_NEXT_OBS = "jaxrl_next_obs"  # Minari infos entry: next_obs, where it matters


# ----------------------------------------------------------------------------- D4RL


def _metadata_doc(dataset: Dataset) -> str:
    from jaxrl import __version__

    return json.dumps(
        {
            "format": METADATA_FORMAT,
            "jaxrl_version": __version__,
            "meta": dataset.meta.to_dict(),
        },
        sort_keys=True,
    )


def to_d4rl(dataset: Dataset) -> dict[str, np.ndarray]:
    """Return the D4RL-style arrays of ``dataset`` (host copies; see the module doc).

    Args:
      dataset: a :class:`Dataset` whose metadata describes its data.

    Returns:
      ``{key: array}``: the six :data:`D4RL_KEYS`, ``extras/<name>`` for every
      extras entry and ``jaxrl/metadata``; dtypes are the dataset's own.

    Raises:
      ConfigError: if ``dataset`` is not a :class:`Dataset` or its metadata
        does not describe its data.
    """
    if not isinstance(dataset, Dataset):
        raise ConfigError(f"to_d4rl needs a Dataset, got {type(dataset).__name__}")
    _check_consistent(dataset, "cannot export dataset")
    host = jax.device_get(dataset.data)
    out = {key: np.asarray(getattr(host, field)) for key, field in _FIELD_OF.items()}
    for name, value in sorted(host.extras.items()):
        out[EXTRAS_PREFIX + name] = np.asarray(value)
    out[METADATA_KEY] = np.array(_metadata_doc(dataset))
    return out


def _read(arrays: Mapping[str, Any], key: str, where: str) -> np.ndarray:
    try:
        return np.asarray(arrays[key])
    except Exception as err:  # noqa: BLE001  (zip, zlib, pickle and I/O errors)
        detail = " ".join(str(err).split())[:120]
        raise ConfigError(
            f"{where}: key {key!r} is unreadable ({type(err).__name__}: {detail})"
        ) from None


def _narrow(x: np.ndarray, key: str, where: str) -> np.ndarray:
    """64-bit types to 32 bits (integers only when every value fits)."""
    if x.dtype.itemsize != 8 or x.dtype.kind not in "iuf":
        return x
    target = {"i": np.int32, "u": np.uint32, "f": np.float32}[x.dtype.kind]
    if x.dtype.kind in "iu" and x.size:
        info = np.iinfo(target)
        if x.min() < info.min or x.max() > info.max:
            raise ConfigError(
                f"{where}: {key} has values outside {np.dtype(target).name} "
                f"([{x.min()}, {x.max()}])"
            )
    return x.astype(target)


def _rows(x: np.ndarray, key: str, n: int, where: str) -> None:
    if x.ndim == 0:
        raise ConfigError(
            f"{where}: {key} is a scalar; expected one row per transition"
        )
    if x.shape[0] != n:
        raise ConfigError(
            f"{where}: length mismatch: {key} has {x.shape[0]} rows, rewards has {n}"
        )


def _kind(x: np.ndarray, key: str, kinds: str, what: str, where: str) -> None:
    if x.dtype.kind not in kinds:
        raise ConfigError(f"{where}: {key} has dtype {x.dtype}; expected {what}")


def _flag(x: np.ndarray, key: str, where: str) -> np.ndarray:
    if x.dtype == np.bool_:
        return x
    _kind(x, key, "iuf", "bool (or numbers that are all 0 or 1)", where)
    if not np.isin(x, (0, 1)).all():
        raise ConfigError(
            f"{where}: {key} has dtype {x.dtype} with values other than 0 and 1; "
            "expected bool flags"
        )
    return x.astype(bool)


def _episodes(
    obs: np.ndarray, next_obs: np.ndarray, done: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Episode id and timestep per row from the flags and the observation cuts."""
    n = done.shape[0]
    cut = np.zeros(n, bool)
    if n > 1:
        a, b = next_obs[:-1], obs[1:]
        if a.dtype.kind == "f":
            same = np.isclose(a, b, rtol=CUT_RTOL, atol=CUT_ATOL, equal_nan=True)
        else:
            same = a == b
        cut[:-1] = ~same.reshape(n - 1, -1).all(axis=1)
    new_after = done | cut
    start = np.concatenate([[True], new_after[:-1]])
    episode_id = (np.cumsum(start) - 1).astype(np.int32)
    first_row = np.flatnonzero(start)
    timestep = (np.arange(n) - first_row[episode_id]).astype(np.int32)
    return episode_id, timestep


def _stored_metadata(arrays: Mapping[str, Any], key: str, where: str) -> Metadata:
    raw = _read(arrays, key, where)
    fmt = METADATA_FORMAT
    try:
        doc = json.loads(str(raw.item()))
    except (ValueError, TypeError):
        raise ConfigError(f"{where}: {key} is not JSON metadata") from None
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        raise ConfigError(f"{where}: {key} is not jaxrl metadata ({fmt})")
    try:
        return Metadata.from_dict(doc.get("meta"))
    except ConfigError as err:
        raise ConfigError(f"{where}: {key} is corrupt: {err}") from None


def _build(
    data: Transition,
    stored: Metadata | None,
    where: str,
    source: str,
    *,
    env: str | None,
    kind: str | None,
    return_random: float | None,
    return_expert: float | None,
    policy: str | None,
    env_kwargs: Mapping[str, Any] | None,
    seed: int | None,
) -> Dataset:
    """Wrap ``data`` with the stored metadata (checked) or the caller's."""
    given = {
        "env": env,
        "kind": kind,
        "return_random": None if return_random is None else float(return_random),
        "return_expert": None if return_expert is None else float(return_expert),
        "policy": policy,
        "env_kwargs": None if env_kwargs is None else _pairs("env_kwargs", env_kwargs),
        "seed": seed,
    }
    if stored is not None:
        for name, value in given.items():
            if value is not None and value != getattr(stored, name):
                have = getattr(stored, name)
                if name == "env_kwargs":
                    have, value = dict(have), dict(value)
                raise ConfigError(
                    f"{where} holds a dataset with {name} {have!r}, but {value!r} "
                    "was asked for"
                )
        dataset = Dataset(data=data, meta=stored)
        _check_consistent(dataset, f"{where} is corrupt")
        return dataset
    needed = [n for n in ("env", "return_random", "return_expert") if given[n] is None]
    if needed:
        raise ConfigError(
            f"{where} has no jaxrl metadata: pass {', '.join(needed)} (the "
            "jaxrl.envs.make id and the reference returns of the normalised score)"
        )
    return make_dataset(
        data,
        env=env,
        kind=kind or "imported",
        return_random=given["return_random"],
        return_expert=given["return_expert"],
        policy=policy or f"unknown (imported from {source})",
        env_kwargs=env_kwargs,
        seed=seed,
        info={"imported_from": source},
    )


def from_d4rl(
    arrays: Mapping[str, Any],
    *,
    env: str | None = None,
    kind: str | None = None,
    return_random: float | None = None,
    return_expert: float | None = None,
    policy: str | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    seed: int | None = None,
    where: str = "D4RL arrays",
) -> Dataset:
    """Build a :class:`Dataset` from D4RL-style arrays (see the module doc).

    Args:
      arrays: a mapping (a dict, or an opened ``np.load`` file) with the six
        :data:`D4RL_KEYS`, optionally ``extras/<name>`` and ``jaxrl/metadata``.
      env: ``jaxrl.envs.make`` id of the environment (required without stored
        metadata; with it, must agree).
      kind: dataset kind (default ``"imported"``).
      return_random: ``R_random`` (required without stored metadata).
      return_expert: ``R_expert`` (required without stored metadata).
      policy: description of the behaviour policy.
      env_kwargs: ``jaxrl.envs.make`` keyword arguments.
      seed: generator seed, if known.
      where: how error messages name the source.

    Returns:
      The dataset on the default device. With stored metadata every argument
      given must match it, and the content must match its checksum.

    Raises:
      ConfigError: one line naming the first problem (missing key, length
        mismatch, bad dtype or shape, inconsistent episode fields, metadata
        missing or contradicted).
    """
    return _from_arrays(
        arrays,
        "a D4RL-style npz",
        where,
        env=env,
        kind=kind,
        return_random=return_random,
        return_expert=return_expert,
        policy=policy,
        env_kwargs=env_kwargs,
        seed=seed,
    )


def _from_arrays(
    arrays: Mapping[str, Any], source: str, where: str, **given: Any
) -> Dataset:
    """:func:`from_d4rl` with the source named in the metadata (``source``)."""
    if not isinstance(arrays, Mapping):
        raise ConfigError(
            f"{where}: expected a mapping of arrays, got {type(arrays).__name__}"
        )
    missing = [k for k in D4RL_KEYS if k not in arrays]
    if missing:
        raise ConfigError(
            f"{where}: missing key(s) {', '.join(map(repr, missing))}; a D4RL-style "
            f"file needs {', '.join(D4RL_KEYS)}"
        )
    raw = {k: _read(arrays, k, where) for k in D4RL_KEYS}
    reward = raw["rewards"]
    if reward.ndim != 1:
        raise ConfigError(f"{where}: rewards must be [N], got shape {reward.shape}")
    n = reward.shape[0]
    if n == 0:
        raise ConfigError(f"{where}: the file holds no transitions (N == 0)")
    for key in D4RL_KEYS:
        _rows(raw[key], key, n, where)
    _kind(reward, "rewards", "iuf", "an integer or float type", where)
    reward = reward.astype(np.float32)
    flags = {}
    for key in ("terminals", "timeouts"):
        if raw[key].shape != (n,):
            raise ConfigError(f"{where}: {key} must be [N], got shape {raw[key].shape}")
        flags[key] = _flag(raw[key], key, where)
    obs, next_obs = raw["observations"], raw["next_observations"]
    for key, x in (("observations", obs), ("next_observations", next_obs)):
        _kind(x, key, "biuf", "bool, integer or float", where)
    if (obs.shape, obs.dtype) != (next_obs.shape, next_obs.dtype):
        raise ConfigError(
            f"{where}: next_observations is {next_obs.dtype}{list(next_obs.shape)} but "
            f"observations is {obs.dtype}{list(obs.shape)}; they must match"
        )
    action = raw["actions"]
    _kind(action, "actions", "iuf", "integer (Discrete) or float (Box)", where)
    action = (
        _narrow(action, "actions", where).astype(np.int32)
        if action.dtype.kind in "iu"
        else action.astype(np.float32)
    )
    extras = {}
    for key in sorted(k for k in arrays if k.startswith(EXTRAS_PREFIX)):
        name = key[len(EXTRAS_PREFIX) :]
        x = _read(arrays, key, where)
        _rows(x, key, n, where)
        _kind(x, key, "biuf", "bool, integer or float", where)
        extras[name] = _narrow(x, key, where)
    for name in (EPISODE_ID, TIMESTEP):
        if name in extras:
            _kind(extras[name], EXTRAS_PREFIX + name, "iu", "an integer type", where)
            extras[name] = extras[name].astype(np.int32)
    obs, next_obs = (
        _narrow(obs, "observations", where),
        _narrow(next_obs, "next_observations", where),
    )
    done = flags["terminals"] | flags["timeouts"]
    if EPISODE_ID not in extras:
        if TIMESTEP in extras:
            raise ConfigError(
                f"{where}: {EXTRAS_PREFIX}{TIMESTEP} without {EXTRAS_PREFIX}{EPISODE_ID}"
            )
        extras[EPISODE_ID], extras[TIMESTEP] = _episodes(obs, next_obs, done)
    elif TIMESTEP not in extras:
        ep = extras[EPISODE_ID]
        start = np.concatenate([[True], ep[1:] != ep[:-1]])
        first_row = np.flatnonzero(start)
        run = np.cumsum(start) - 1
        extras[TIMESTEP] = (np.arange(n) - first_row[run]).astype(np.int32)
    data = Transition(
        obs=obs,
        action=action,
        reward=reward,
        next_obs=next_obs,
        terminated=flags["terminals"],
        truncated=flags["timeouts"],
        extras=extras,
    )
    stored = (
        _stored_metadata(arrays, METADATA_KEY, where)
        if METADATA_KEY in arrays
        else None
    )
    try:
        dataset = _build(
            data,
            stored,
            where,
            source,
            **given,
        )
    except ConfigError as err:
        text = str(err)
        raise ConfigError(
            text if text.startswith(where) else f"{where}: {text}"
        ) from None
    return dataset.replace(data=jax.device_put(dataset.data))


def _check_target(path: str, overwrite: bool, what: str) -> str:
    target = os.path.abspath(os.fspath(path))
    if os.path.isdir(target) and what == "file":
        raise ConfigError(f"{target} is a directory; expected a file path")
    if os.path.lexists(target) and not overwrite:
        raise ConfigError(
            f"{target} already exists; pass overwrite=True (--overwrite) to replace it"
        )
    return target


def save_d4rl(
    path: str | os.PathLike,
    dataset: Dataset,
    *,
    overwrite: bool = False,
    compress: bool = True,
) -> str:
    """Write ``dataset`` as a D4RL-style ``.npz`` file (see the module doc).

    The file is written next to ``path`` under a temporary name and renamed
    into place when complete.

    Args:
      path: the file to write (used as given; no suffix is added).
      dataset: the :class:`Dataset`.
      overwrite: replace an existing file.
      compress: ``np.savez_compressed`` (default) instead of ``np.savez``.

    Returns:
      The absolute path written.

    Raises:
      ConfigError: if ``path`` exists (without ``overwrite``) or is a
        directory, or the dataset's metadata does not describe its data.
    """
    target = _check_target(path, overwrite, "file")
    arrays = to_d4rl(dataset)
    parent, name = os.path.split(target)
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".{name}.tmp-{uuid.uuid4().hex}")
    try:
        with open(tmp, "wb") as f:
            (np.savez_compressed if compress else np.savez)(f, **arrays)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return target


def load_d4rl(
    path: str | os.PathLike,
    *,
    env: str | None = None,
    kind: str | None = None,
    return_random: float | None = None,
    return_expert: float | None = None,
    policy: str | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    seed: int | None = None,
) -> Dataset:
    """Read a D4RL-style ``.npz`` file into a :class:`Dataset` (:func:`from_d4rl`).

    Arrays are loaded with ``allow_pickle=False``.

    Raises:
      ConfigError: naming the file and the problem: not found, not an ``.npz``
        archive, or any problem :func:`from_d4rl` reports.
    """
    target = os.path.abspath(os.fspath(path))
    where = f"D4RL file {target}"
    if not os.path.exists(target):
        raise ConfigError(f"{where} not found")
    if os.path.isdir(target):
        raise ConfigError(f"{where} is a directory, not an .npz file")
    if not zipfile.is_zipfile(target):
        raise ConfigError(f"{where} is not an .npz archive (not a zip file)")
    try:
        npz = np.load(target, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise ConfigError(
            f"{where} is not a readable .npz archive ({type(err).__name__})"
        ) from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise ConfigError(f"{where} is not an .npz archive")
    with npz:
        return from_d4rl(
            npz,
            env=env,
            kind=kind,
            return_random=return_random,
            return_expert=return_expert,
            policy=policy,
            env_kwargs=env_kwargs,
            seed=seed,
            where=where,
        )


# ----------------------------------------------------------------------------- Minari


def minari_available() -> bool:
    """Return True when the optional ``minari`` and ``h5py`` packages are installed."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("minari", "h5py"))


def _import_minari() -> Any:
    if not minari_available():
        raise ConfigError(
            "Minari datasets need the optional packages minari and h5py: "
            "pip install 'jaxrl[minari]'"
        )
    import minari

    return minari


def _default_spaces(obs: np.ndarray, action: np.ndarray) -> tuple[Any, Any]:
    """Gymnasium spaces guessed from the data: unbounded ``Box`` es, ``Discrete(max + 1)``."""
    import gymnasium

    def box(x: np.ndarray) -> Any:
        if x.dtype == np.bool_:
            return gymnasium.spaces.Box(False, True, x.shape[1:], np.bool_)
        if x.dtype.kind in "iu":
            info = np.iinfo(x.dtype)
            return gymnasium.spaces.Box(info.min, info.max, x.shape[1:], x.dtype)
        return gymnasium.spaces.Box(-np.inf, np.inf, x.shape[1:], x.dtype)

    if action.dtype.kind in "iu" and action.ndim == 1:
        return box(obs), gymnasium.spaces.Discrete(int(action.max()) + 1)
    return box(obs), box(action)


def _differing_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rows where ``a`` and ``b`` differ in any byte (so ``-0.0 != 0.0``, ``nan == nan``)."""
    if a.shape[0] == 0:
        return np.zeros(0, bool)
    ab = np.ascontiguousarray(a).view(np.uint8).reshape(a.shape[0], -1)
    bb = np.ascontiguousarray(b).view(np.uint8).reshape(b.shape[0], -1)
    return (ab != bb).any(axis=1)


def save_minari(
    path: str | os.PathLike,
    dataset: Dataset,
    *,
    observation_space: Any = None,
    action_space: Any = None,
    dataset_id: str | None = None,
    overwrite: bool = False,
) -> str:
    """Write ``dataset`` as a Minari dataset directory (optional ``minari`` package).

    Each of our episodes (a run of ``extras["episode_id"]``, unfinished ones
    included) becomes one Minari episode: ``observations`` ``[T + 1]`` (the
    rows' ``obs`` then the last row's ``next_obs``), ``actions``, ``rewards``,
    ``terminations`` (= terminated) and ``truncations`` (= truncated)
    ``[T]``; every ``extras`` entry goes to ``infos["jaxrl_extras"]``
    ``[T]``. If inside some episode a row's ``next_obs`` differs in any bit
    from the next row's ``obs`` (XLA may round the two copies of one
    observation differently, by an ulp), ``next_obs`` is also stored, in
    ``infos["jaxrl_next_obs"]``. ``ref_min_score`` / ``ref_max_score`` are ``R_random`` /
    ``R_expert``, and the :class:`Metadata` is kept as JSON under
    ``jaxrl_metadata``, so :func:`load_minari` gives back a bitwise-equal
    dataset. Stored uncompressed and without JPEG encoding (lossless).
    ``minari.MinariDataset(path)`` reads the directory; to list it under
    Minari's own root, write it to ``<root>/<dataset_id>/data``.

    Args:
      path: the directory to write (created; written under a temporary name
        and renamed into place).
      dataset: the :class:`Dataset`.
      observation_space: gymnasium space of one observation (default: an
        unbounded ``Box`` of the data's shape and dtype).
      action_space: gymnasium space of one action (default: ``Discrete(max + 1)``
        for integer actions, an unbounded ``Box`` otherwise).
      dataset_id: Minari id (default ``jaxrl/<env>/<kind>-v0``).
      overwrite: replace an existing Minari dataset at ``path``.

    Returns:
      The absolute path written.

    Raises:
      ConfigError: minari not installed, ``path`` in the way, or an invalid
        ``dataset_id``.
    """
    minari = _import_minari()
    from minari.data_collector import EpisodeBuffer
    from minari.dataset.minari_dataset import parse_dataset_id
    from minari.dataset.minari_storage import MinariStorage

    from jaxrl.envs.offline.dataset import _episode_table

    target = _check_target(path, overwrite, "directory")
    if os.path.lexists(target) and not os.path.exists(
        os.path.join(target, "metadata.json")
    ):
        raise ConfigError(
            f"{target} exists and is not a Minari dataset; refusing to replace it"
        )
    _check_consistent(dataset, "cannot export dataset")
    meta = dataset.meta
    dataset_id = dataset_id or f"jaxrl/{meta.env}/{meta.kind}-v0"
    try:
        parse_dataset_id(dataset_id)
    except ValueError:
        raise ConfigError(
            f"invalid Minari dataset id {dataset_id!r}; expected "
            "(namespace/)name-v<version>"
        ) from None
    host = jax.tree.map(np.asarray, jax.device_get(dataset.data))
    table = _episode_table(host)
    # Inside an episode next_obs[t] is obs[t + 1] up to rounding (XLA may
    # round the two copies of one observation differently); where any row
    # differs in any bit, next_obs is kept as well, so nothing is lost.
    inside = np.ones(host.reward.shape[0], bool)
    inside[table["stop"] - 1] = False
    differs = _differing_rows(host.next_obs[:-1], host.obs[1:]) & inside[:-1]
    keep_next = bool(differs.any())
    default_obs, default_action = _default_spaces(host.obs, host.action)
    buffers = [
        EpisodeBuffer(
            id=i,
            observations=np.concatenate(
                [host.obs[start:stop], host.next_obs[stop - 1 : stop]]
            ),
            actions=host.action[start:stop],
            rewards=host.reward[start:stop],
            terminations=host.terminated[start:stop],
            truncations=host.truncated[start:stop],
            infos={
                _MINARI_EXTRAS: {k: v[start:stop] for k, v in host.extras.items()},
                **({_MINARI_NEXT_OBS: host.next_obs[start:stop]} if keep_next else {}),
            },
        )
        for i, (start, stop) in enumerate(
            zip(table["start"], table["stop"], strict=True)
        )
    ]
    parent, name = os.path.split(target)
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".{name}.tmp-{uuid.uuid4().hex}")
    old = os.path.join(parent, f".{name}.old-{uuid.uuid4().hex}")
    try:
        storage = MinariStorage.new(
            tmp,
            observation_space=observation_space or default_obs,
            action_space=action_space or default_action,
            data_format="hdf5",
            jpeg_encoding=False,
        )
        storage.update_metadata(
            {
                "dataset_id": dataset_id,
                "minari_version": minari.__version__,
                "algorithm_name": meta.policy,
                "description": f"jaxrl offline dataset {meta.env}/{meta.kind}",
                "ref_min_score": meta.return_random,
                "ref_max_score": meta.return_expert,
                _MINARI_META_KEY: _metadata_doc(dataset),
            }
        )
        storage.update_episodes(buffers)
        if os.path.lexists(target):
            os.rename(target, old)
        os.rename(tmp, target)
    finally:
        for leftover in (tmp, old):
            if os.path.exists(leftover):
                shutil.rmtree(leftover)
    return target


def load_minari(
    path: str | os.PathLike,
    *,
    env: str | None = None,
    kind: str | None = None,
    return_random: float | None = None,
    return_expert: float | None = None,
    policy: str | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    seed: int | None = None,
) -> Dataset:
    """Read a Minari dataset directory into a :class:`Dataset` (optional ``minari``).

    Every Minari episode becomes a run of rows (``obs`` = its observations but
    the last, ``next_obs`` = all but the first); ``terminations`` and
    ``truncations`` become ``terminated`` and ``truncated``. A dataset written by
    :func:`save_minari` comes back bitwise equal, metadata included. For other
    Minari datasets ``episode_id`` is the Minari episode order, ``timestep``
    counts from 0, ``R_random`` / ``R_expert`` default to the dataset's
    ``ref_min_score`` / ``ref_max_score``, and ``env`` must be given (the
    ``jaxrl.envs.make`` id); other arguments as in :func:`from_d4rl`.

    Raises:
      ConfigError: minari not installed, not a Minari dataset, observations
        that are not one array (Dict/Tuple spaces), or any problem
        :func:`from_d4rl` reports.
    """
    minari = _import_minari()
    target = os.path.abspath(os.fspath(path))
    where = f"Minari dataset {target}"
    if not os.path.isdir(target):
        raise ConfigError(f"{where} not found (expected a directory)")
    if not os.path.exists(os.path.join(target, "metadata.json")):
        raise ConfigError(f"{where} is not a Minari dataset (no metadata.json)")
    try:
        source = minari.MinariDataset(target)
        episodes = list(source.iterate_episodes())
        stored = source.storage.metadata
    except Exception as err:  # noqa: BLE001  (Minari raises many types)
        detail = " ".join(str(err).split())[:120]
        raise ConfigError(
            f"{where} is unreadable ({type(err).__name__}: {detail})"
        ) from None
    if not episodes:
        raise ConfigError(f"{where} holds no episodes")
    columns: dict[str, list[np.ndarray]] = {k: [] for k in D4RL_KEYS}
    extras: dict[str, list[np.ndarray]] = {}
    ours = all(_MINARI_EXTRAS in (ep.infos or {}) for ep in episodes)
    for i, ep in enumerate(episodes):
        obs = ep.observations
        if not isinstance(obs, np.ndarray):
            raise ConfigError(
                f"{where}: episode {i} has {type(obs).__name__} observations; only "
                "one array per observation is supported"
            )
        steps = len(ep.rewards)
        if obs.shape[0] != steps + 1:
            raise ConfigError(
                f"{where}: episode {i} has {obs.shape[0]} observations for {steps} "
                "steps; expected one more observation than steps"
            )
        columns["observations"].append(obs[:-1])
        infos = ep.infos or {}
        columns["next_observations"].append(
            np.asarray(infos[_MINARI_NEXT_OBS])
            if ours and _MINARI_NEXT_OBS in infos
            else obs[1:]
        )
        columns["actions"].append(np.asarray(ep.actions))
        columns["rewards"].append(np.asarray(ep.rewards))
        columns["terminals"].append(np.asarray(ep.terminations))
        columns["timeouts"].append(np.asarray(ep.truncations))
        own = (
            ep.infos[_MINARI_EXTRAS]
            if ours
            else {
                EPISODE_ID: np.full(steps, i, np.int32),
                TIMESTEP: np.arange(steps, dtype=np.int32),
            }
        )
        if extras and set(own) != set(extras):
            raise ConfigError(
                f"{where}: episode {i} has extras {sorted(own)}, episode 0 has "
                f"{sorted(extras)}"
            )
        for k, v in own.items():
            extras.setdefault(k, []).append(np.asarray(v))
    try:
        arrays = {k: np.concatenate(v) for k, v in columns.items()}
        arrays.update({EXTRAS_PREFIX + k: np.concatenate(v) for k, v in extras.items()})
    except ValueError as err:
        raise ConfigError(
            f"{where}: episodes do not stack ({' '.join(str(err).split())[:120]})"
        ) from None
    if _MINARI_META_KEY in stored:
        arrays[METADATA_KEY] = np.array(str(stored[_MINARI_META_KEY]))
    else:
        if return_random is None:
            return_random = stored.get("ref_min_score")
        if return_expert is None:
            return_expert = stored.get("ref_max_score")
    return _from_arrays(
        arrays,
        "a Minari dataset",
        where,
        env=env,
        kind=kind,
        return_random=return_random,
        return_expert=return_expert,
        policy=policy,
        env_kwargs=env_kwargs,
        seed=seed,
    )
