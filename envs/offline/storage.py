"""Checksummed storage of offline datasets: :func:`save_dataset`, :func:`load_dataset`.

A saved dataset is a directory holding ``dataset.json`` (the metadata and the
array spec, human readable; format tag :data:`FORMAT`) and ``arrays/0/``, a
:mod:`jaxrl.checkpoint` of ``data`` (orbax; per-array CRC-32 and a copy of the
metadata). A dataset is written into a temporary directory next to its
destination and renamed into place only when complete, and an existing dataset
is never removed before its replacement is in place. Loading checks the
metadata, the shapes and dtypes (against an environment with
:func:`example_item`), the per-array checksums and the content checksum, and
raises one :class:`~jaxrl.errors.ConfigError` naming the problem (missing or
garbled metadata, truncated or bit-flipped arrays, a different environment,
kind or shape than expected). Local paths are made absolute (orbax needs that).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from etils import epath
from gymnax.environments import spaces

from jaxrl import checkpoint
from jaxrl.envs.offline.dataset import (
    _FIELDS,
    Dataset,
    Metadata,
    _check_data,
    _dtype,
    _episode_table,
    _pairs,
    content_checksum,
)
from jaxrl.errors import ConfigError
from jaxrl.transition import Transition

__all__ = ["FORMAT", "example_item", "save_dataset", "load_dataset"]

FORMAT = "jaxrl-dataset-v1"
"""The ``format`` tag written in ``dataset.json``."""


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
